import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, digestOf, eventually, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape } from '../support/prometheus.ts';

const local = process.env['TEST_CLUSTER_KIND'] === 'local';

/**
 * Kills the local kube-apiserver (SIGKILL) and starts it again with the same command line, leaving etcd, the
 * controllers and kwok running (restarting the whole control plane left kwok stuck). Returns when it is ready.
 */
async function restartApiserver(stateDir: string): Promise<void> {
  const stateFile = join(stateDir, 'cluster.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { pids: Record<string, number> };
  const pid = state.pids['kube-apiserver']!;
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  process.kill(pid, 'SIGKILL');
  await eventually(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    10_000,
    50,
  );
  // The operator sees its watches end and its requests fail for a moment.
  await new Promise((r) => setTimeout(r, 2_000));
  const log = openSync(join(stateDir, 'logs', 'kube-apiserver.log'), 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  closeSync(log);
  state.pids['kube-apiserver'] = child.pid!;
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  await eventually(async () => (await kubectlRaw(['get', '--raw', '/readyz'])).code === 0, 60_000, 200);
}

/*
 * The apiserver goes away under the operator: the local kube-apiserver is killed (SIGKILL) and started again with
 * its data in etcd. Only on the local cluster (an external one cannot be restarted by a test).
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
  const pod = (name: string, image: string): string =>
    JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: name } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image }] } });

  afterAll(async () => {
    // Leave a healthy cluster for the next suite: wait until a new pod runs promptly again.
    await eventually(
      async () => {
        const name = uniqueName('probe');
        const t0 = Date.now();
        await apply(pod(name, 'nginx:1.27'));
        await waitForRunningPods(ns, `app=${name}`, 1, 30_000);
        return Date.now() - t0 < 3_000;
      },
      90_000,
      500,
    );
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  const latestInventory = (): string => {
    const all = sim.inventories('admin').filter((r) => r.body.cluster_name === cluster);
    return JSON.stringify(all[all.length - 1]?.body ?? {});
  };

  it('when the apiserver is killed and comes back, then watches resume, a pod created after it is registered and a deleted one leaves the inventory within 10 s', async () => {
    await apply(pod('before', 'nginx:1.25'));
    const [before] = await waitForRunningPods(ns, 'app=before', 1);
    const beforeDigest = digestOf(before!.containers[0]!.imageID)!;
    await eventually(() => latestInventory().includes(beforeDigest), 15_000, 100);

    await restartApiserver(process.env['TEST_CLUSTER_STATE_DIR']!);
    const backAt = Date.now();

    // Changes made right after recovery, while the operator's watches are still reconnecting (bare pods: no
    // controller-manager in the path, only the scheduler and kwok).
    await apply(pod('after', 'redis:7.4'));
    await kubectl(['delete', 'pod', 'before', '-n', ns, '--wait=false']);
    const [after] = await waitForRunningPods(ns, 'app=after', 1, 30_000);
    const runningMs = Date.now() - backAt;
    const afterDigest = digestOf(after!.containers[0]!.imageID)!;
    await eventually(() => sim.requests({ method: 'POST', path: '/v2/images' }).some((r) => JSON.stringify(r.body).includes(afterDigest)), 30_000, 100);
    const registeredMs = Date.now() - backAt;
    await eventually(() => latestInventory().includes(afterDigest) && !latestInventory().includes(beforeDigest), 30_000, 100);
    const inventoryMs = Date.now() - backAt;
    const restarts = (await scrape(operator.op.metricsPort)).filter((s) => s.name === 'anchore_operator_watch_restarts_total' && s.value > 0);
    const reasons = [...new Set(restarts.map((s) => s.labels['reason']))].sort();
    process.stdout.write(
      `[measure] apiserver killed and restarted: new pod Running ${runningMs} ms, its image registered ${registeredMs} ms, inventory with it and without the deleted pod ${inventoryMs} ms after recovery; watch restart reasons: ${reasons.join(', ')}\n`,
    );
    // The operator's share: from the pod Running (as this test saw it) to its image registered and the inventory right.
    // The pod's own start after recovery depends on the scheduler and kwok reconnecting (seconds, occasionally ~20 s
    // on this shared machine), which the operator does not control; the [measure] line shows both.
    expect(registeredMs - runningMs).toBeLessThan(10_000);
    expect(inventoryMs - runningMs).toBeLessThan(10_000);
    expect(operator.op.isReady()).toBe(true);
  }, 180_000);
});
