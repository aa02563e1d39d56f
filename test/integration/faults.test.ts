import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, eventually, kubectl, namespaceManifest, podList, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';

const addsFor = (sim: AnchoreSimulator, label: string): Map<string, number> => {
  const m = new Map<string, number>();
  for (const r of sim.requests({ method: 'POST', path: '/v2/images' })) {
    const pull = (r.body as { source?: { digest?: { tag?: string } } })?.source?.digest?.tag ?? '';
    if (r.status < 300 && pull.includes(`/${label}/`)) m.set(pull, (m.get(pull) ?? 0) + 1);
  }
  return m;
};

/*
 * Anchore misbehaving, with the simulator's fault injection, against the real apiserver. Kept to pod counts a shared
 * 2-core machine handles in seconds; the figures are printed as [measure] lines.
 */
describe('faults: Anchore outage, slowness and throttling (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('faults');

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('faults'), NAMESPACES_INCLUDE: ns, ANCHORE_CONCURRENCY: '4', INTEGRATION_ENABLED: 'false', METRICS_VULNERABILITIES: 'false' }),
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when Anchore is down for 60 s while 500 new images start, then nothing crashes, the queue holds one entry per digest, and all 500 are registered within 30 s of recovery, once each', async () => {
    const label = 'outage';
    sim.setFaults([{ path: /.*/, status: 503 }]);
    await apply(podList(ns, 'out', 500, label, 'faults.registry.local'));
    await waitForRunningPods(ns, `batch=${label}`, 500, 120_000);
    const downAt = Date.now();
    let maxQueued = 0;
    while (Date.now() - downAt < 60_000) {
      // Keys waiting in the image queue (ready, and delayed for backoff), as /metrics says.
      maxQueued = Math.max(maxQueued, sumOf(await scrape(operator.op.metricsPort), 'anchore_operator_workqueue_depth', { queue: 'image' }));
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(operator.op.isReady()).toBe(true);
    expect(addsFor(sim, label).size).toBe(0);
    // Bounded memory: at most one entry per digest, whatever the number of failed attempts (the gauge leaves out the
    // few keys a worker holds at the moment, which are not waiting).
    expect(maxQueued).toBeLessThanOrEqual(500);
    expect(maxQueued).toBeGreaterThan(0);
    const failedAttempts = sim.requests({ method: 'POST', path: '/v2/images' }).length;
    sim.clearFaults();
    const upAt = Date.now();
    await eventually(() => addsFor(sim, label).size === 500, 60_000, 100);
    const recoveredMs = Date.now() - upAt;
    process.stdout.write(
      `[measure] 60 s Anchore outage with 500 new images: all registered ${recoveredMs} ms after recovery (${failedAttempts} failed add attempts during the outage, queue peak ${maxQueued})\n`,
    );
    expect(recoveredMs).toBeLessThan(30_000);
    expect([...addsFor(sim, label).values()].every((n) => n === 1)).toBe(true);
  }, 240_000);

  it('when Anchore takes 2 s per call, then no more than ANCHORE_CONCURRENCY calls are in flight and every image still gets registered', async () => {
    const label = 'slow';
    sim.clearRequests();
    sim.setFaults([{ path: /^\/v2\//, latencyMs: 2_000 }]);
    await apply(podList(ns, 'slow', 20, label, 'faults.registry.local'));
    await eventually(() => addsFor(sim, label).size === 20, 90_000, 200);
    sim.clearFaults();
    const peak = Math.max(...sim.requests().map((r) => r.inFlight));
    process.stdout.write(`[measure] Anchore at 2 s per call: 20 images registered, peak in flight ${peak} (limit 4)\n`);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('when Anchore answers 429 with Retry-After, then the operator waits at least that long before trying again and catches up', async () => {
    const label = 'throttled';
    sim.clearRequests();
    sim.setFaults([{ method: 'POST', path: '/v2/images', status: 429, retryAfterSeconds: 2, count: 10 }]);
    await apply(podList(ns, 'thr', 10, label, 'faults.registry.local'));
    await eventually(() => addsFor(sim, label).size === 10, 60_000, 200);
    const posts = sim.requests({ method: 'POST', path: '/v2/images' }).filter((r) => JSON.stringify(r.body).includes(`/${label}/`));
    const throttled = posts.filter((r) => r.status === 429);
    expect(throttled).toHaveLength(10);
    // For each image, the first retry after a 429 comes no sooner than Retry-After (2 s).
    const byTag = new Map<string, number[]>();
    for (const r of posts) {
      const tag = (r.body as { source: { digest: { tag: string } } }).source.digest.tag;
      byTag.set(tag, [...(byTag.get(tag) ?? []), r.time]);
    }
    const gaps = [...byTag.values()].filter((t) => t.length > 1).map((t) => t[1]! - t[0]!);
    process.stdout.write(`[measure] 429 Retry-After: 2 s → smallest gap before the retry ${Math.min(...gaps)} ms over ${gaps.length} images\n`);
    expect(gaps.length).toBeGreaterThan(0);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1_950);
    expect([...addsFor(sim, label).values()].every((n) => n === 1)).toBe(true);
  }, 120_000);
});
