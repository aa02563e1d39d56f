import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent, request } from 'undici';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf, valueOf } from '../support/prometheus.ts';
import { selfSigned } from '../support/tls.ts';
import { DENIED_BY_WEBHOOK, policyBinding, webhookTarget, workloadsWebhook } from '../support/webhook.ts';

/*
 * The admission webhook against the real kube-apiserver: a ValidatingWebhookConfiguration with a URL clientConfig on
 * 127.0.0.1 (the operator in-process serves it), scoped by namespaceSelector to this suite's namespaces only, so no
 * other suite's pods ever reach it. The apiserver must be able to call 127.0.0.1 on this machine: true for the local
 * control plane; on kind the suite needs ADMISSION_TEST_HOST (see test/e2e/README.md).
 */
const { host: webhookHost, listenEnv, tlsIps } = webhookTarget('admission');
const apb = policyBinding;

const webhookConfig = (name: string, port: number, caPem: string, namespaces: string[]): string => workloadsWebhook({ name, port, caPem, namespaces, host: webhookHost });

describe('admission webhook (real kube-apiserver)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('adm');
  const webhook = uniqueName('anchore-operator-test');
  const dir = mkdtempSync(join(tmpdir(), 'admission-tls-'));
  const digests: Record<string, string> = {};
  const checks = (): number => sim.requests({ method: 'GET', path: /\/check$/ }).length;
  const adds = (): number => sim.requests({ method: 'POST', path: '/v2/images' }).length;

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 20, analyzing_ms: 50 }, policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }] } } });
    await apply(namespaceManifest(ns));
    const tls = selfSigned(dir, 'anchore-operator-admission', tlsIps);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm'),
        NAMESPACES_INCLUDE: ns,
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        ADMISSION_DEADLINE_MS: '2000',
        ...listenEnv,
      }),
    );
    // Seed: two images running before any binding, so the operator registers them and the bindings evaluate them.
    await apply(
      deployment(ns, 'seed', 1, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' },
      ]),
    );
    const [pod] = await waitForRunningPods(ns, 'app=seed', 1);
    for (const c of pod!.containers) digests[c.name] = digestOf(c.imageID) ?? '';
    sim.setVerdict(digests['nginx']!, { status: 'pass', final_action: 'go' });
    sim.setVerdict(digests['envoy']!, { status: 'fail', final_action: 'stop', findings: 3 });
    await eventually(() => sim.images('admin').filter((i) => i.analysis_status === 'analyzed').length >= 2, 30_000, 100);
    await apply(apb(ns, 'gate', { enforcement: 'deny', podSelector: { matchLabels: { tier: 'gated' } } }));
    await apply(apb(ns, 'advise', { enforcement: 'warn', podSelector: { matchLabels: { tier: 'advised' } } }));
    await apply(apb(ns, 'closed', { enforcement: 'deny', failurePolicy: 'closed', podSelector: { matchLabels: { tier: 'closed' } } }));
    await apply(webhookConfig(webhook, operator.op.admission!.port, tls.pem, [ns]));
    // The apiserver reads webhook configurations through an informer: wait until it calls ours.
    await eventually(
      async () => {
        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], labelled(deployment(ns, 'probe', 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]), 'gated'));
        return r.code !== 0 && r.stderr.includes('anchore-operator denied');
      },
      30_000,
      250,
    );
  });
  afterAll(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', webhook, '--ignore-not-found']);
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The manifest with the pod template labelled tier=<tier> (the bindings select on it). */
  function labelled(manifest: string, tier: string, annotations: Record<string, string> = {}): string {
    const d = JSON.parse(manifest) as { spec: { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } } };
    d.spec.template.metadata.labels['tier'] = tier;
    d.spec.template.metadata.annotations = annotations;
    return JSON.stringify(d);
  }

  it('when a Deployment runs an image failing a deny binding, then the apiserver rejects it naming image, policy and reason; a passing one is created and its pods run', async () => {
    const before = checks();
    const bad = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'bad', 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]), 'gated'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(DENIED_BY_WEBHOOK);
    expect(bad.stderr).toContain('docker.io/envoyproxy/envoy:v1.31.0');
    expect(bad.stderr).toContain('Default bundle');
    expect(bad.stderr).toContain('final action stop');
    expect(bad.stderr).toContain(`AnchorePolicyBinding ${ns}/gate`);
    // The binding had evaluated the image already: the verdict came from its cache, not from Anchore.
    expect(checks()).toBe(before);
    const good = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'good', 1, [{ name: 'nginx', image: 'nginx:1.27' }]), 'gated'));
    expect(good.code).toBe(0);
    // Its ReplicaSet and pods pass the webhook too (pods are checked as well).
    await waitForRunningPods(ns, 'app=good', 1);
    const events = await eventually(
      async () => {
        const list = await getJson<{ items: Array<{ reason: string; note: string; regarding: { name: string } }> }>(['events.events.k8s.io', '-n', ns]);
        return list.items.filter((e) => e.reason === 'AdmissionDenied' && e.regarding.name === 'gate').length ? list.items : undefined;
      },
      15_000,
      250,
    );
    expect(events.find((e) => e.reason === 'AdmissionDenied')?.note).toContain('envoy');
  });

  it('when the binding warns, then the request succeeds and kubectl prints the warning', async () => {
    const r = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'warned', 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]), 'advised'));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Warning: anchore-operator: AnchorePolicyBinding ${ns}/advise (enforcement warn): image docker.io/envoyproxy/envoy:v1.31.0 fails Anchore policy Default bundle`);
  });

  it('when the request is a dry run, then an unknown image is not registered and no Event is written; the real request registers it', async () => {
    const unknown = [{ name: 'app', image: 'registry.example/acme/never-seen:1.0' }];
    const eventsBefore = (await getJson<{ items: unknown[] }>(['events.events.k8s.io', '-n', ns, '--field-selector', 'reason=AdmissionDenied'])).items.length;
    const addsBefore = adds();
    const dry = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], labelled(deployment(ns, 'unknown', 1, unknown), 'closed'));
    expect(dry.code).not.toBe(0);
    expect(dry.stderr).toContain('cannot be judged');
    expect(dry.stderr).toContain('failurePolicy is closed');
    await new Promise((r) => setTimeout(r, 500));
    expect(adds()).toBe(addsBefore);
    expect((await getJson<{ items: unknown[] }>(['events.events.k8s.io', '-n', ns, '--field-selector', 'reason=AdmissionDenied'])).items.length).toBe(eventsBefore);
    const real = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'unknown', 1, unknown), 'closed'));
    expect(real.code).not.toBe(0);
    await eventually(() => sim.requests({ method: 'POST', path: '/v2/images' }).some((q) => JSON.stringify(q.body).includes('registry.example/acme/never-seen:1.0')), 10_000, 100);
  });

  it('when Anchore is down, then failurePolicy closed rejects an image it cannot judge and open admits it with a warning', async () => {
    sim.setFaults([{ path: /^\/v2\//, status: 503, errorRate: 1 }]);
    try {
      // An image Anchore holds but nobody evaluated: a miss, so Anchore must be asked.
      const fresh = [{ name: 'app', image: `docker.io/library/redis@${digests['nginx']}` }];
      const closed = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'down-closed', 1, fresh), 'closed'));
      expect(closed.code).not.toBe(0);
      expect(closed.stderr).toMatch(/cannot be judged \((Anchore could not be asked|Anchore did not answer within the admission deadline)/);
      const open = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(ns, 'down-open', 1, fresh), 'gated'));
      expect(open.code).toBe(0);
      expect(open.stderr).toContain(`AnchorePolicyBinding ${ns}/gate: image docker.io/library/redis@${digests['nginx']} was not checked`);
      expect(open.stderr).toContain('admitted because failurePolicy is open');
    } finally {
      sim.clearFaults();
    }
  });

  it('when the breakglass annotation is on the pod template, then a failing image is admitted and the use is audited', async () => {
    const r = await kubectlRaw(
      ['apply', '-f', '-'],
      labelled(deployment(ns, 'hotfix', 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]), 'gated', { 'anchore.io/admission-breakglass': 'INC-4711' }),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('INC-4711');
    await eventually(
      async () => {
        const list = await getJson<{ items: Array<{ reason: string; note: string }> }>(['events.events.k8s.io', '-n', ns, '--field-selector', 'reason=AdmissionBreakglass']);
        return list.items.some((e) => e.note.includes('INC-4711'));
      },
      15_000,
      250,
    );
  });

  it('when a replica is not the leader, then it still answers admission (admission never waits for leader election)', async () => {
    const lease = uniqueName('adm-lease');
    const now = new Date().toISOString().replace('Z', '000Z');
    await apply(
      JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: lease, namespace: ns },
        spec: { holderIdentity: 'another-replica', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
      }),
    );
    const tls = selfSigned(mkdtempSync(join(dir, 'follower-')), 'anchore-operator-follower');
    const follower = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm'),
        NAMESPACES_INCLUDE: ns,
        LEADER_ELECTION: 'true',
        LEADER_ELECTION_NAMESPACE: ns,
        LEADER_ELECTION_ID: lease,
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
      }),
    );
    const agent = new Agent({ connect: { ca: tls.pem } });
    try {
      const object = JSON.parse(labelled(deployment(ns, 'via-follower', 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]), 'gated')) as unknown;
      const body = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'f-1', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, namespace: ns, name: 'via-follower', operation: 'CREATE', object, dryRun: true },
      });
      const res = await request(`https://127.0.0.1:${follower.op.admission!.port}/validate`, { method: 'POST', body, dispatcher: agent, headers: { 'content-type': 'application/json' } });
      const answer = (await res.body.json()) as { response: { uid: string; allowed: boolean; status?: { message: string } } };
      expect(follower.op.isLeader()).toBe(false);
      expect(answer.response.uid).toBe('f-1');
      expect(answer.response.allowed).toBe(false);
      expect(answer.response.status?.message).toContain('docker.io/envoyproxy/envoy:v1.31.0');
    } finally {
      await agent.close();
      await follower.stop();
    }
  });

  it('when admission has answered, then its metrics are scraped: requests by verdict, latency, cache lookups', async () => {
    const s = await scrape(operator.op.metricsPort);
    expect(valueOf(s, 'anchore_operator_admission_requests_total', { kind: 'Deployment', verdict: 'denied' })).toBeGreaterThanOrEqual(1);
    // The good Deployment's pods come from the ReplicaSet controller: admitted for their owner's template.
    expect(valueOf(s, 'anchore_operator_admission_requests_total', { kind: 'Pod', verdict: 'inherited' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(s, 'anchore_operator_admission_cache_lookups_total', { result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(sumOf(s, 'anchore_operator_admission_duration_seconds_bucket', { le: '0.005', lookup: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(sumOf(s, 'anchore_operator_admission_breakglass_total')).toBeGreaterThanOrEqual(1);
  });

  it('when a ReplicationController runs an image failing a deny binding, then the apiserver rejects it like a Deployment (its template makes pods too)', async () => {
    const rc = JSON.stringify({
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'legacy', namespace: ns },
      spec: {
        replicas: 1,
        selector: { app: 'legacy' },
        template: { metadata: { labels: { app: 'legacy' } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }] } },
      },
    });
    const r = await kubectlRaw(['apply', '-f', '-'], labelled(rc, 'gated'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(DENIED_BY_WEBHOOK);
    expect(r.stderr).toContain(`anchore-operator denied ReplicationController ${ns}/legacy`);
    expect(r.stderr).toContain('docker.io/envoyproxy/envoy:v1.31.0');
    expect(r.stderr).toContain(`AnchorePolicyBinding ${ns}/gate`);
  });
});
