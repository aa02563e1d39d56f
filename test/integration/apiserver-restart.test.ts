import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startLocalCluster } from '../cluster/local-cluster.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape } from '../support/prometheus.ts';

const local = process.env['TEST_CLUSTER_KIND'] === 'local';

/*
 * The control plane goes away under the operator: the local kube-apiserver is killed (SIGKILL) and the cluster
 * brought back with its data. Only on the local cluster (an external one cannot be restarted by a test).
 */
(local ? describe : describe.skip)('kube-apiserver restart (local control plane)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('apirestart');
  const cluster = uniqueName('apirestart');

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: cluster, NAMESPACES_INCLUDE: ns, INTEGRATION_ENABLED: 'false', METRICS_VULNERABILITIES: 'false' }));
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  const latestInventory = (): string => {
    const all = sim.inventories('admin').filter((r) => r.body.cluster_name === cluster);
    return JSON.stringify(all[all.length - 1]?.body ?? {});
  };

  it('when the apiserver is killed and comes back, then watches resume, pods created after it are registered and deletions reach the inventory within 10 s', async () => {
    await apply(deployment(ns, 'before', 1, [{ name: 'app', image: 'nginx:1.25' }]));
    const [before] = await waitForRunningPods(ns, 'app=before', 1);
    const beforeDigest = digestOf(before!.containers[0]!.imageID)!;
    await eventually(() => latestInventory().includes(beforeDigest), 15_000, 100);

    const stateDir = process.env['TEST_CLUSTER_STATE_DIR']!;
    const state = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as { pids: Record<string, number>; startedBy?: string };
    process.kill(state.pids['kube-apiserver']!, 'SIGKILL');
    // The operator notices (watches end, lists fail) while the apiserver is gone.
    await new Promise((r) => setTimeout(r, 3_000));
    await startLocalCluster({ stateDir, ...(state.startedBy ? { startedBy: state.startedBy } : {}), log: () => undefined });
    const backAt = Date.now();

    // Changes made right after recovery, before the operator's watches have necessarily reconnected.
    await apply(deployment(ns, 'after', 1, [{ name: 'app', image: 'redis:7.4' }]));
    await kubectl(['delete', 'deployment', 'before', '-n', ns, '--wait=false']);
    const [after] = await waitForRunningPods(ns, 'app=after', 1, 30_000);
    const afterDigest = digestOf(after!.containers[0]!.imageID)!;
    await eventually(() => sim.requests({ method: 'POST', path: '/v2/images' }).some((r) => JSON.stringify(r.body).includes(afterDigest)), 15_000, 100);
    const registeredMs = Date.now() - backAt;
    await eventually(async () => (await kubectlRaw(['get', 'pods', '-n', ns, '-l', 'app=before', '-o', 'name'])).stdout.trim() === '', 30_000, 200);
    await eventually(() => latestInventory().includes(afterDigest) && !latestInventory().includes(beforeDigest), 15_000, 100);
    const inventoryMs = Date.now() - backAt;
    const restarts = (await scrape(operator.op.metricsPort)).filter((s) => s.name === 'anchore_operator_watch_restarts_total' && s.value > 0);
    const reasons = [...new Set(restarts.map((s) => s.labels['reason']))].sort();
    process.stdout.write(`[measure] apiserver killed and restarted: new pod's image registered ${registeredMs} ms, inventory without the deleted pod ${inventoryMs} ms after recovery; watch restart reasons: ${reasons.join(', ')}\n`);
    expect(registeredMs).toBeLessThan(10_000);
    expect(inventoryMs).toBeLessThan(10_000);
    expect(operator.op.isReady()).toBe(true);
  }, 180_000);
});
