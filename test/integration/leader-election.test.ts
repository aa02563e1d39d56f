import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, observedLeader, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf, valueOf } from '../support/prometheus.ts';

interface Lease {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number; renewTime?: string; acquireTime?: string };
}

/*
 * Two replicas in one process against the real apiserver's coordination.k8s.io Lease, with client-go's timings
 * (15 s / 10 s / 2 s). Killing a replica (SIGKILL of a real process) is covered by the e2e suite; here: one leader,
 * only the leader works, a clean stop hands over at once.
 */
describe('leader election on a Lease (real cluster)', () => {
  let sim: AnchoreSimulator;
  const ns = uniqueName('le');
  const lease = uniqueName('lease');
  const replicas: Record<string, TestOperator> = {};
  const env = (pod: string): Record<string, string> =>
    operatorEnv(sim.url, {
      CLUSTER_NAME: uniqueName('le'),
      NAMESPACES_INCLUDE: ns,
      LEADER_ELECTION: 'true',
      LEADER_ELECTION_NAMESPACE: ns,
      LEADER_ELECTION_ID: lease,
      POD_NAME: pod,
      INTEGRATION_ENABLED: 'false',
    });
  const getLease = (): Promise<Lease> => getJson<Lease>(['lease', '-n', ns, lease]);
  const registered = (digest: string): boolean => sim.requests({ method: 'POST', path: '/v2/images' }).some((r) => JSON.stringify(r.body).includes(digest));

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    replicas['a'] = await startTestOperator(env('replica-a'));
    await eventually(() => replicas['a']!.op.isLeader(), 10_000);
    replicas['b'] = await startTestOperator(env('replica-b'));
  });
  afterAll(async () => {
    await Promise.allSettled(Object.values(replicas).map((r) => r.stop()));
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when two replicas run, then exactly one holds the Lease with client-go timings and only it reports as leader', async () => {
    const a = replicas['a']!;
    const b = replicas['b']!;
    const l = await getLease();
    expect(l.spec).toMatchObject({ leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(l.spec.holderIdentity).toMatch(/^replica-a_[0-9a-f]{8}$/);
    expect(l.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // The follower saw the holder and stays a follower.
    await eventually(() => observedLeader(b) === l.spec.holderIdentity, 10_000);
    expect(a.op.isLeader()).toBe(true);
    expect(b.op.isLeader()).toBe(false);
    // Both serve metrics; the gauge says who leads.
    expect(valueOf(await scrape(a.op.metricsPort), 'anchore_operator_leader')).toBe(1);
    expect(valueOf(await scrape(b.op.metricsPort), 'anchore_operator_leader')).toBe(0);
    // Both are ready (a follower serves health with warm caches).
    expect(a.op.isReady() && b.op.isReady()).toBe(true);
    // The leader renews every 2 s.
    const before = l.spec.renewTime;
    await eventually(async () => (await getLease()).spec.renewTime !== before, 5_000, 200);
  });

  it('when a workload starts, then only the leader registers its images', async () => {
    await apply(deployment(ns, 'web', 2, [{ name: 'nginx', image: 'nginx:1.27' }]));
    const pods = await waitForRunningPods(ns, 'app=web', 2);
    const digest = digestOf(pods[0]!.containers[0]!.imageID)!;
    await eventually(() => registered(digest), 10_000, 50);
    // The leader follows it to analyzed (anchore_operator_images counts the running images it knows, by Anchore's
    // analysis status); the follower sees it run (its caches are warm) but has learned nothing of it from Anchore.
    await eventually(async () => sumOf(await scrape(replicas['a']!.op.metricsPort), 'anchore_operator_images', { account: 'admin', analysis_status: 'analyzed' }) === 1, 10_000);
    const follower = await scrape(replicas['b']!.op.metricsPort);
    expect(sumOf(follower, 'anchore_operator_images', { account: 'admin', analysis_status: 'not_registered' })).toBe(1);
    expect(sumOf(follower, 'anchore_operator_images')).toBe(1);
    expect(sim.requests({ method: 'POST', path: '/v2/images' }).filter((r) => JSON.stringify(r.body).includes(digest))).toHaveLength(1);
  });

  it('when the leader stops cleanly, then it releases the Lease and the follower takes over within seconds and carries on', async () => {
    const stoppedAt = Date.now();
    await replicas['a']!.stop();
    delete replicas['a'];
    const b = replicas['b']!;
    await eventually(() => b.op.isLeader(), 10_000, 50);
    const tookOverMs = Date.now() - stoppedAt;
    process.stdout.write(`[measure] clean leader stop → follower leads: ${tookOverMs} ms\n`);
    // A released lease is taken at the next retry (2 s × jitter ≤ 1.2), not after the 15 s lease duration.
    expect(tookOverMs).toBeLessThan(5_000);
    const l = await getLease();
    expect(l.spec.holderIdentity).toMatch(/^replica-b_/);
    expect(l.spec.leaseTransitions).toBe(1);
    expect(valueOf(await scrape(b.op.metricsPort), 'anchore_operator_leader')).toBe(1);
    // Work continues on the new leader: a new image is registered, and the one already registered is not re-added.
    await apply(deployment(ns, 'api', 1, [{ name: 'redis', image: 'redis:7.2' }]));
    const pods = await waitForRunningPods(ns, 'app=api', 1);
    const digest = digestOf(pods[0]!.containers[0]!.imageID)!;
    await eventually(() => registered(digest), 15_000, 50);
    const nginx = sim.requests({ method: 'POST', path: '/v2/images' }).filter((r) => JSON.stringify(r.body).includes('nginx:1.27'));
    expect(nginx).toHaveLength(1);
  });
});
