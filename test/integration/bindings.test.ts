import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { evaluatedSince, inventoried, inventoryPods, touchNamespace } from '../support/looked.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';

/*
 * AnchorePolicyBinding / ClusterAnchorePolicyBinding against the real apiserver (schema + CEL enforced there) with
 * the operator in-process and the simulator as Anchore.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Binding {
  metadata: { resourceVersion: string; generation: number };
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
    summary?: Record<string, number>;
    policy?: { id: string; name: string };
    results?: Array<{ image: string; digest?: string; result: string; findings?: number; workloads?: string[]; topFindings?: unknown[] }>;
    truncated?: boolean;
  };
}

const apb = (ns: string, name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name, namespace: ns }, spec });
const cond = (b: Binding, type: string) => b.status?.conditions?.find((c) => c.type === type);
const getApb = (ns: string, name: string) => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);

async function eventsFor(ns: string, name: string): Promise<Array<{ reason: string; type: string; note: string }>> {
  const list = await getJson<{ items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }> }>(['events.events.k8s.io', '-n', ns]);
  return list.items.filter((e) => e.regarding.name === name);
}

describe('policy bindings (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('bind');
  let digests: Record<string, string> = {};

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 50, analyzing_ms: 150 },
        policies: {
          admin: [
            { policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true },
            { policy_id: 'strict', name: 'Strict' },
          ],
        },
      },
    });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('bind'), POLICY_POLL_SECONDS: '2', NAMESPACES_INCLUDE: `${ns},prodns-*` }));
    await apply(
      deployment(ns, 'web', 2, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'sidecar', image: 'envoyproxy/envoy:v1.31.0' },
      ]),
    );
    await apply(deployment(ns, 'api', 1, [{ name: 'api', image: 'ghcr.io/stefanprodan/podinfo:6.7.0' }]));
    const pods = [...(await waitForRunningPods(ns, 'app=web', 2)), ...(await waitForRunningPods(ns, 'app=api', 1))];
    for (const p of pods) for (const c of p.containers) digests[c.name] = digestOf(c.imageID) ?? '';
    // Deterministic verdicts: nginx and podinfo pass, envoy fails.
    sim.setVerdict(digests['nginx'] as string, { status: 'pass', final_action: 'go' });
    sim.setVerdict(digests['api'] as string, { status: 'pass', final_action: 'go' });
    sim.setVerdict(digests['sidecar'] as string, { status: 'fail', final_action: 'stop', findings: 2 });
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    digests = {};
  });

  it('when the CRDs are installed, then kubectl explain documents the fields', async () => {
    // explain reads the OpenAPI v3 document, which the apiserver publishes for new CRDs asynchronously.
    const out = await eventually(() => kubectl(['explain', 'apb.spec.reevaluateInterval']), 30_000, 500);
    expect(out).toContain('minimum 1m');
    expect(await kubectl(['explain', 'capb.spec.namespaceSelector'])).toContain('Selects namespaces by their labels');
  });

  it.each([
    ['an unknown mode', { mode: 'scan' }, 'Unsupported value: "scan"'],
    ['an interval below 1m', { reevaluateInterval: '30s' }, 'reevaluateInterval must be at least 1m'],
    ['a non-duration interval', { reevaluateInterval: 'daily' }, 'spec.reevaluateInterval'],
    ['policyId in analyze mode', { mode: 'analyze', policyId: 'x' }, 'policyId applies only to mode evaluate'],
    ['In without values', { podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }, 'In and NotIn need at least one value'],
    ['an invalid account name', { account: 'bad account!' }, 'spec.account'],
  ])('when a binding has %s, then the apiserver rejects it with a clear message', async (_n, spec, message) => {
    const r = await kubectlRaw(['apply', '-f', '-'], apb(ns, uniqueName('bad'), spec));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('when every sample manifest is applied with a server dry run, then the apiserver accepts it', async () => {
    for (const f of readdirSync(join(root, 'deploy', 'samples')).filter((x) => x.endsWith('.yaml') && x.includes('binding'))) {
      const text = readFileSync(join(root, 'deploy', 'samples', f), 'utf8').replace(/namespace: demo-\w+/g, `namespace: ${ns}`);
      const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], text);
      expect({ f, code: r.code, stderr: r.stderr }).toEqual({ f, code: 0, stderr: '' });
    }
  });

  it('when a binding selects workloads, then it goes Ready with the right counts, failing results first, and Events', async () => {
    await apply(apb(ns, 'all', { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] } }));
    const b = await eventually(
      async () => {
        const x = await getApb(ns, 'all');
        return cond(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      30_000,
      250,
    );
    expect(b.status?.observedGeneration).toBe(b.metadata.generation);
    expect(b.status?.summary).toEqual({ workloads: 2, images: 3, passed: 2, failed: 1, warned: 0, pending: 0, errors: 0 });
    expect(b.status?.policy).toMatchObject({ id: DEFAULT_POLICY_ID, name: 'Default bundle' });
    expect(b.status?.results?.[0]).toMatchObject({ result: 'fail', digest: digests['sidecar'], workloads: [`${ns}/Deployment/web`] });
    expect(b.status?.results?.[0]?.topFindings?.length).toBeGreaterThan(0);
    expect(cond(b, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed' });
    expect(cond(b, 'Reconciling')).toBeUndefined();
    expect(cond(b, 'Stalled')).toBeUndefined();
    await eventually(async () => (await eventsFor(ns, 'all')).some((e) => e.reason === 'PolicyFailed' && e.type === 'Warning'), 10_000);
    await eventually(async () => (await eventsFor(ns, 'web')).some((e) => e.reason === 'AnchorePolicyFailed'), 10_000);
    expect((await eventsFor(ns, 'api')).some((e) => e.reason === 'AnchorePolicyFailed')).toBe(false);
  });

  it('when kubectl get apb runs, then the printer columns show policy, mode, counts, Ready and its reason, and -o wide the rest', async () => {
    const out = await kubectl(['get', 'apb', 'all', '-n', ns]);
    const [header, row] = out.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'POLICY', 'MODE', 'IMAGES', 'PASSED', 'FAILED', 'READY', 'REASON', 'AGE']);
    expect(row).toMatch(/^all\s+Default bundle\s+evaluate\s+3\s+2\s+1\s+True\s+Evaluated\s+/);
    const [wideHeader, wideRow] = (await kubectl(['get', 'apb', 'all', '-n', ns, '-o', 'wide'])).trim().split('\n');
    expect(wideHeader?.split(/\s+/)).toEqual(['NAME', 'POLICY', 'MODE', 'IMAGES', 'PASSED', 'FAILED', 'READY', 'REASON', 'AGE', 'WARNED', 'KEV', 'PENDING', 'ERRORS', 'ENFORCEMENT', 'MESSAGE']);
    expect(wideRow).toMatch(/\s0\s+0\s+0\s+audit\s+3 image\(s\) in 2 workload\(s\): 2 passed, 1 failed/);
    expect(await kubectl(['get', 'anchore', '-n', ns, '-o', 'name'])).toContain('anchorepolicybinding.anchore.io/all');
  });

  it('when Anchore flips an image verdict and the binding is re-evaluated, then status and Events follow', async () => {
    sim.setVerdict(digests['sidecar'] as string, { status: 'pass', final_action: 'go' });
    await kubectl(['annotate', 'apb', 'all', '-n', ns, 'anchore.io/reevaluate=1', '--overwrite']);
    const b = await eventually(
      async () => {
        const x = await getApb(ns, 'all');
        return x.status?.summary?.['failed'] === 0 ? x : undefined;
      },
      20_000,
      250,
    );
    expect(cond(b, 'Compliant')).toMatchObject({ status: 'True', reason: 'PolicyPassed' });
    await eventually(async () => (await eventsFor(ns, 'all')).some((e) => e.reason === 'PolicyPassed' && e.type === 'Normal'), 10_000);
  });

  it('when nothing changes, then the binding is not written (resourceVersion stays) across re-evaluations', async () => {
    const all = [{ namespace: ns, name: 'all' }];
    const before = await getApb(ns, 'all');
    const ready = cond(before, 'Ready');
    for (let i = 2; i < 5; i++) {
      const at = Date.now();
      await kubectl(['annotate', 'apb', 'all', '-n', ns, `anchore.io/reevaluate=${i}`, '--overwrite']);
      // The forced re-evaluation has begun (it asks Anchore afresh)…
      await eventually(() => sim.requests({ path: /\/check$/ }).some((r) => r.time >= at), 10_000, 50);
      // …and ended: a reconcile that began after a later change has ended, and one binding's reconciles never overlap.
      await evaluatedSince(operator, all, await touchNamespace(ns));
    }
    // So every forced re-evaluation's /check calls have been made before anything is compared or counted.
    const checksBefore = sim.requests({ path: /\/check$/ }).length;
    // Annotating bumps metadata; what must not move is anything the operator writes.
    const after = await getApb(ns, 'all');
    expect(after.status).toEqual(before.status);
    expect(cond(after, 'Ready')?.lastTransitionTime).toBe(ready?.lastTransitionTime);
    const rv = after.metadata.resourceVersion;
    // Pod churn elsewhere in the namespace re-evaluates the binding (cached): still no write.
    await apply(deployment(ns, 'other', 1, [{ name: 'x', image: 'nginx:1.27' }]));
    await waitForRunningPods(ns, 'app=other', 1);
    // Once the operator has handled the new pod (its inventory lists it), a reconcile that begins afterwards has
    // ended: it judged the namespace with the pod, and every reconcile the pod's events woke has ended before it.
    await inventoried(sim, ns, (body) => inventoryPods(body, ns).some((p) => p.startsWith('other-')));
    await evaluatedSince(operator, all, await touchNamespace(ns));
    expect((await getApb(ns, 'all')).metadata.resourceVersion).toBe(rv);
    expect(sim.requests({ path: /\/check$/ }).length).toBe(checksBefore);
  });

  it('when two bindings cover the same images, then each reports independently and Anchore is asked once per image', async () => {
    sim.clearRequests();
    await apply(apb(ns, 'twin', { podSelector: { matchLabels: { app: 'web' } }, failOn: 'warn' }));
    await eventually(async () => cond(await getApb(ns, 'twin'), 'Ready')?.status === 'True', 30_000, 250);
    const twin = await getApb(ns, 'twin');
    expect(twin.status?.summary).toMatchObject({ workloads: 1, images: 2 });
    // Both images were already evaluated for binding "all" within the interval: no new check calls.
    expect(sim.requests({ path: /\/check$/ })).toHaveLength(0);
  });

  it('when the policy does not exist, then the binding is Stalled with PolicyNotFound, and fixing the spec recovers it', async () => {
    await apply(apb(ns, 'wrong', { policyId: 'no-such-policy' }));
    const stalled = await eventually(
      async () => {
        const x = await getApb(ns, 'wrong');
        return cond(x, 'Stalled')?.status === 'True' ? x : undefined;
      },
      20_000,
      250,
    );
    expect(cond(stalled, 'Stalled')?.reason).toBe('PolicyNotFound');
    expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'PolicyNotFound' });
    expect(cond(stalled, 'Ready')?.message).toContain('no-such-policy');
    await apply(apb(ns, 'wrong', { policyId: 'strict' }));
    const fixed = await eventually(
      async () => {
        const x = await getApb(ns, 'wrong');
        return cond(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      20_000,
      250,
    );
    expect(fixed.status?.observedGeneration).toBe(2);
    expect(fixed.status?.policy?.id).toBe('strict');
    expect(cond(fixed, 'Stalled')).toBeUndefined();
  });

  it('when a selector cannot be used, then the binding is Stalled with InvalidSelector (no retry storm)', async () => {
    await apply(apb(ns, 'badsel', { podSelector: { matchLabels: { 'bad key!': 'x' } } }));
    const b = await eventually(
      async () => {
        const x = await getApb(ns, 'badsel');
        return cond(x, 'Stalled')?.status === 'True' ? x : undefined;
      },
      20_000,
      250,
    );
    expect(cond(b, 'Stalled')?.reason).toBe('InvalidSelector');
    // No retry storm: a stalled binding waits, it does not go to the work queue's backoff (each failed attempt is
    // logged as "binding reconcile failed; will retry" with its key).
    const retried = operator.logs
      .join('')
      .split('\n')
      .filter((l) => l.includes('"binding reconcile failed; will retry"') && l.includes(`"key":"apb/${ns}/badsel"`));
    expect(retried).toEqual([]);
  });

  it('when Anchore goes down, then Ready=False AnchoreUnavailable with old results kept, and it recovers by itself', async () => {
    sim.setFaults([{ path: /^\/v2\/(policies|images\/[^/]+\/check)/, outage: { untilMs: Date.now() + 4000 } }]);
    await kubectl(['annotate', 'apb', 'all', '-n', ns, 'anchore.io/reevaluate=outage', '--overwrite']);
    const down = await eventually(
      async () => {
        const x = await getApb(ns, 'all');
        return cond(x, 'Ready')?.reason === 'AnchoreUnavailable' ? x : undefined;
      },
      20_000,
      200,
    );
    expect(cond(down, 'Ready')?.status).toBe('False');
    expect(cond(down, 'Reconciling')?.status).toBe('True');
    expect(down.status?.summary?.['images']).toBe(3);
    await eventually(async () => cond(await getApb(ns, 'all'), 'Ready')?.status === 'True', 30_000, 250);
  });

  it('when a namespace gets the label a cluster binding selects, then the binding picks it up', async () => {
    const capbName = uniqueName('prod');
    const labelled = uniqueName('prodns');
    await apply(namespaceManifest(labelled));
    await apply(
      JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'ClusterAnchorePolicyBinding', metadata: { name: capbName }, spec: { namespaceSelector: { matchLabels: { tier: capbName } } } }),
    );
    try {
      await apply(deployment(labelled, 'svc', 1, [{ name: 'svc', image: 'nginx:1.27' }]));
      await waitForRunningPods(labelled, 'app=svc', 1);
      const empty = await eventually(
        async () => {
          const x = await getJson<Binding>(['capb', capbName]);
          return cond(x, 'Ready')?.status === 'True' ? x : undefined;
        },
        20_000,
        250,
      );
      expect(empty.status?.summary?.['images']).toBe(0);
      expect(cond(empty, 'Ready')?.reason).toBe('NoMatchingImages');
      // Not "Compliant: all 0 pass": it says it selects nothing.
      expect(cond(empty, 'Compliant')).toMatchObject({ status: 'Unknown', reason: 'NoMatchingImages', message: expect.stringContaining('selects no running image') });
      expect((await kubectl(['get', 'capb', capbName])).split('\n')[1]).toMatch(/\sTrue\s+NoMatchingImages\s/);
      await kubectl(['label', 'namespace', labelled, `tier=${capbName}`]);
      const picked = await eventually(
        async () => {
          const x = await getJson<Binding>(['capb', capbName]);
          return x.status?.summary?.['images'] === 1 && cond(x, 'Ready')?.status === 'True' ? x : undefined;
        },
        20_000,
        250,
      );
      expect(picked.status?.results?.[0]?.workloads).toEqual([`${labelled}/Deployment/svc`]);
    } finally {
      await kubectl(['delete', 'capb', capbName, '--ignore-not-found']);
      await kubectl(['delete', 'namespace', labelled, '--wait=false', '--ignore-not-found']);
    }
  });

  it('when a binding runs in analyze mode, then results carry vulnerability counts and no policy is consulted', async () => {
    sim.setVulnerabilities(digests['api'] as string, [
      { vuln: 'CVE-2026-0001', severity: 'Critical', fix: '1.2', package: 'openssl' },
      { vuln: 'CVE-2026-0002', severity: 'High', package: 'zlib' },
      { vuln: 'CVE-2026-0003', severity: 'High', package: 'curl' },
    ]);
    await apply(apb(ns, 'vulns', { mode: 'analyze', images: { include: ['ghcr.io/**'] } }));
    await eventually(async () => cond(await getApb(ns, 'vulns'), 'Ready')?.status === 'True', 20_000, 250);
    // The metrics already read this image's vulnerabilities (shared cache, 1h window): ask for a fresh read.
    await kubectl(['annotate', 'apb', 'vulns', '-n', ns, 'anchore.io/reevaluate=now', '--overwrite']);
    const b = await eventually(
      async () => {
        const x = await getApb(ns, 'vulns');
        return x.status?.results?.[0]?.findings === 3 ? x : undefined;
      },
      20_000,
      250,
    );
    expect(cond(b, 'Ready')?.reason).toBe('Analyzed');
    expect(cond(b, 'Compliant')).toBeUndefined();
    expect(b.status?.policy).toBeUndefined();
    expect(b.status?.results).toEqual([expect.objectContaining({ image: 'ghcr.io/stefanprodan/podinfo:6.7.0', result: 'pass', findings: 3, vulnerabilities: { Critical: 1, High: 2 } })]);
  });

  it('when a full minute passes in steady state with a 1m interval, then the binding is re-evaluated but never written', async () => {
    await apply(apb(ns, 'steady', { podSelector: { matchLabels: { app: 'api' } }, reevaluateInterval: '1m' }));
    const start = await eventually(
      async () => {
        const x = await getApb(ns, 'steady');
        return cond(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      20_000,
      250,
    );
    const checks = () => sim.requests({ path: new RegExp(`${digests['api']}/check$`) }).length;
    const checksAtStart = checks();
    // The interval elapses: Anchore is asked again (by the reconcile the interval brings, or one that meets an answer
    // older than it)…
    await eventually(() => checks() > checksAtStart, 75_000, 250);
    // …and that reconcile has ended: one that began after a later change has ended too.
    await evaluatedSince(operator, [{ namespace: ns, name: 'steady' }], await touchNamespace(ns));
    // The answer was the same: nothing was written.
    const end = await getApb(ns, 'steady');
    expect(end.metadata.resourceVersion).toBe(start.metadata.resourceVersion);
  }, 120_000);

  it('when the account active policy changes in Anchore, then bindings following it re-evaluate against the new one', async () => {
    sim.setActivePolicy('admin', 'strict');
    const b = await eventually(
      async () => {
        const x = await getApb(ns, 'all');
        return x.status?.policy?.id === 'strict' ? x : undefined;
      },
      20_000,
      250,
    );
    expect(b.status?.policy?.name).toBe('Strict');
    sim.setActivePolicy('admin', DEFAULT_POLICY_ID);
  });

  it("when a binding lives in a namespace outside the operator's scope, then this operator never writes its status", async () => {
    const outside = uniqueName('notmine');
    await apply(namespaceManifest(outside));
    try {
      const from = operator.logs.length;
      await apply(apb(outside, 'theirs', {}));
      // A control binding in scope, applied after it, gets its status: the outside one had every chance. The
      // operator's binding watch delivers the two in the order they were created, and its work queue starts them in
      // that order; a reconcile of a binding it takes for its own begins with the log line "reconciling binding". So
      // once the control binding has a status, the operator has decided about the outside one: it never began one.
      await apply(apb(ns, 'control-scope', { podSelector: { matchLabels: { app: 'web' } } }));
      await eventually(async () => cond(await getApb(ns, 'control-scope'), 'Ready')?.status === 'True', 30_000, 250);
      expect(operator.logs.slice(from).filter((l) => l.includes('"reconciling binding"') && l.includes(`"namespace":"${outside}"`))).toEqual([]);
      expect((await getApb(outside, 'theirs')).status).toBeUndefined();
    } finally {
      await kubectl(['delete', 'anchorepolicybinding', 'control-scope', '-n', ns, '--ignore-not-found']);
      await kubectl(['delete', 'namespace', outside, '--wait=false', '--ignore-not-found']);
    }
  });
});
