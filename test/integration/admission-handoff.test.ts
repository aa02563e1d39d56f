import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { type KubectlResult, apply, deployment, digestOf, eventually, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { selfSigned } from '../support/tls.ts';
import { DENIED_BY_WEBHOOK, policyBinding, webhookRule, webhookTarget, workloadsWebhook } from '../support/webhook.ts';

/*
 * The admission hand-off on SIGTERM (issue 22, point 7), against the real kube-apiserver: while the operator stops it
 * keeps answering reviews for ADMISSION_SHUTDOWN_DELAY_SECONDS with /readyz failing (so a Service's endpoints move to
 * the other replicas), and only then closes the port. The webhook fails closed (failurePolicy Fail), so the two states
 * look different from kubectl: "denied the request" by the operator while it hands off, "failed calling webhook" once
 * the port is closed. Scoped by namespaceSelector to this suite's namespace, like the admission suite (on kind it needs
 * ADMISSION_TEST_HOST the same way; see test/e2e/README.md).
 */
const { host: webhookHost, listenEnv, tlsIps } = webhookTarget('admission-handoff');
const DELAY_S = 3;
const FAILING_IMAGE = 'envoyproxy/envoy:v1.31.0';

describe('admission hand-off on stop (real kube-apiserver)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  let stopping: Promise<void> | undefined;
  const ns = uniqueName('adm-handoff');
  const webhook = uniqueName('anchore-operator-handoff');
  const dir = mkdtempSync(join(tmpdir(), 'admission-handoff-tls-'));

  /** A server-side dry run of a Deployment running the failing image: judged by the webhook, never created. */
  const dryRun = (): Promise<KubectlResult> => kubectlRaw(['apply', '--dry-run=server', '-f', '-'], deployment(ns, 'probe', 1, [{ name: 'envoy', image: FAILING_IMAGE }]));
  const deniedByOperator = (r: KubectlResult): boolean => r.code !== 0 && r.stderr.includes(DENIED_BY_WEBHOOK) && r.stderr.includes('anchore-operator denied');
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${operator.op.healthPort}/readyz`);
    return { status: res.status, body: await res.text() };
  };

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 20, analyzing_ms: 50 }, policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }] } } });
    await apply(namespaceManifest(ns));
    const tls = selfSigned(dir, 'anchore-operator-admission', tlsIps);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm-handoff'),
        NAMESPACES_INCLUDE: ns,
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        ADMISSION_DEADLINE_MS: '2000',
        ADMISSION_SHUTDOWN_DELAY_SECONDS: String(DELAY_S),
        ...listenEnv,
      }),
    );
    // The image runs before the webhook exists, so the operator registers it and learns its digest; Anchore fails it.
    await apply(deployment(ns, 'seed', 1, [{ name: 'envoy', image: FAILING_IMAGE }]));
    const [pod] = await waitForRunningPods(ns, 'app=seed', 1);
    const digest = digestOf(pod?.containers[0]?.imageID ?? '') ?? '';
    expect(digest).toMatch(/^sha256:/);
    sim.setVerdict(digest, { status: 'fail', final_action: 'stop', findings: 2 });
    await eventually(() => sim.images('admin').some((i) => i.image_digest === digest && i.analysis_status === 'analyzed'), 30_000, 100);
    await apply(policyBinding(ns, 'gate', { enforcement: 'deny' }));
    await apply(
      workloadsWebhook({
        name: webhook,
        port: operator.op.admission!.port,
        caPem: tls.pem,
        namespaces: [ns],
        host: webhookHost,
        rules: [webhookRule([''], ['pods']), webhookRule(['apps'], ['deployments', 'replicasets'])],
      }),
    );
    // The apiserver reads webhook configurations through an informer: wait until it calls ours.
    await eventually(async () => deniedByOperator(await dryRun()), 30_000, 250);
  });
  afterAll(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', webhook, '--ignore-not-found']);
    await (stopping ?? operator?.stop());
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('when the operator stops, then it keeps denying failing images for ADMISSION_SHUTDOWN_DELAY_SECONDS with /readyz failing, and only then does the apiserver fail to call it', async () => {
    const before = await readyz();
    expect(before.status).toBe(200);

    const t0 = Date.now();
    let stoppedAt: number | undefined;
    stopping = operator.stop().then(() => {
      stoppedAt = Date.now();
    });

    // Not ready at once, and saying why: a Service drops this replica's endpoint while it still answers.
    const during = await readyz();
    expect(during.status).toBe(503);
    expect(during.body).toContain('shutting down');
    expect(operator.op.isReady()).toBe(false);

    // Reviews sent in the first half of the hand-off: every one is answered by the operator (a deny, from the binding's
    // verdict), none is a failed call, and all of them come back before stop() has finished.
    const answers: Array<{ at: number; denied: boolean; stopped: boolean; stderr: string }> = [];
    while (Date.now() - t0 < (DELAY_S * 1000) / 2) {
      const r = await dryRun();
      answers.push({ at: Date.now() - t0, denied: deniedByOperator(r), stopped: stoppedAt !== undefined, stderr: r.stderr.trim() });
    }
    expect(answers.length).toBeGreaterThanOrEqual(1);
    for (const a of answers) {
      expect(a.stderr).not.toContain('failed calling webhook');
      expect(a).toMatchObject({ denied: true, stopped: false });
    }
    expect(answers.at(-1)!.at).toBeGreaterThanOrEqual((DELAY_S * 1000) / 2);

    await stopping;
    // stop() waited out the delay (the timer may fire a millisecond early) before closing the port.
    expect(stoppedAt! - t0).toBeGreaterThanOrEqual(DELAY_S * 1000 - 5);
    expect(operator.logs.join('')).toContain('still answering admission reviews while the endpoints move');

    // Port closed: the apiserver cannot call the webhook and applies failurePolicy Fail. This is what a replica killed
    // outright (SIGKILL, OOM) looks like from the start, and what the hand-off spares a rollout.
    const after = await dryRun();
    expect(after.code).not.toBe(0);
    expect(after.stderr).toContain(`failed calling webhook "workloads.admission.anchore.io"`);
    expect(deniedByOperator(after)).toBe(false);
  });
});
