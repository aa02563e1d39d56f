// Scenario 7: detection latency of the operator next to anchore/k8s-inventory at its chart default polling interval
// (60 s), same control plane, same simulator. Both post to POST /v2/kubernetes-inventory; reports are told apart by
// cluster_name. Needs the k8s-inventory binary (bench/build-k8s-inventory.sh, K8S_INVENTORY_BINARY or
// K8S_INVENTORY_SRC); when it cannot be had, the result says exactly why instead of inventing a figure.
import type { AnchoreSimulator } from '../test/anchore-sim/index.ts';
import { K8sInventoryUnavailableError, ensureK8sInventory, k8sInventoryVersion, startK8sInventory } from './support/k8s-inventory.ts';
import { type KubeConnection, createNamespace, digestOf, podBody, req, waitFor, watchRunning } from './support/kube.ts';
import type { ReportCollector } from './support/reports.ts';
import { percentiles } from './support/stats.ts';

/** The k8s-inventory Helm chart's default (anchore/anchore-charts stable/k8s-inventory values.yaml). */
export const K8S_INVENTORY_CHART_POLL_SECONDS = 60;

export async function compareWithK8sInventory(o: {
  conn: KubeConnection;
  sim: AnchoreSimulator;
  reports: ReportCollector;
  kubeconfig: string;
  run: string;
  label: Record<string, string>;
  operatorCluster: string;
  logDir: string;
  pods?: number;
  intervalMs?: number;
}): Promise<Record<string, unknown>> {
  let binary: string;
  try {
    binary = await ensureK8sInventory();
  } catch (err) {
    if (err instanceof K8sInventoryUnavailableError) return { blocked: err.message };
    throw err;
  }
  const ns = `bench-${o.run}-cmp`;
  const kiCluster = `k8s-inventory-${o.run}`;
  await createNamespace(o.conn, ns, o.label);
  const ki = await startK8sInventory({
    binary,
    kubeconfig: o.kubeconfig,
    anchoreUrl: o.sim.url,
    username: 'admin',
    password: 'foobar',
    account: 'admin',
    pollSeconds: K8S_INVENTORY_CHART_POLL_SECONDS,
    namespaces: [ns],
    clusterName: kiCluster,
    workDir: `${o.logDir}/k8s-inventory`,
  });
  try {
    // Its first report (at start) marks it as running; pods start after it, spread over two polling periods.
    await waitFor('k8s-inventory first report', () => o.reports.of(kiCluster).length > 0, 120_000, 500);
    const watch = await watchRunning(o.conn, `bench-run=${o.run}`);
    const n = o.pods ?? 40;
    const every = o.intervalMs ?? 3_000;
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `cmp-${i}`;
      names.push(`${ns}/${name}`);
      await req(o.conn, 'POST', `/api/v1/namespaces/${ns}/pods`, podBody(ns, name, `bench.registry.local/${o.run}/cmp/img-${i}:1.0`, o.label));
      await new Promise((r) => setTimeout(r, every));
    }
    await waitFor('compare pods Running', () => names.every((k) => watch.running.has(k)), 120_000, 200);
    const pods = names.map((k) => ({ at: watch.running.get(k)!.at, digest: digestOf(watch.running.get(k)!.imageIDs[0] ?? '') ?? '' }));
    const firstReport = (cluster: string, digest: string, after: number): number | undefined => o.reports.of(cluster).find((r) => r.at >= after && r.digests.has(digest))?.at;
    // Wait out one more full polling period so every pod had its chance in a k8s-inventory report.
    await waitFor('k8s-inventory reports every pod', () => pods.every((p) => firstReport(kiCluster, p.digest, p.at) !== undefined), (K8S_INVENTORY_CHART_POLL_SECONDS + 30) * 1000, 1000);
    watch.stop();
    const ours = pods.map((p) => (firstReport(o.operatorCluster, p.digest, p.at) ?? Number.NaN) - p.at);
    const theirs = pods.map((p) => (firstReport(kiCluster, p.digest, p.at) ?? Number.NaN) - p.at);
    const a = percentiles(ours.filter(Number.isFinite));
    const b = percentiles(theirs.filter(Number.isFinite));
    const version = k8sInventoryVersion(binary);
    return {
      // Where the agent came from: its own version output, plus K8S_INVENTORY_SOURCE_NOTE when the binary was built
      // from something other than a tagged module (the proxy does not serve github.com/anchore/k8s-inventory here).
      agent: { binary, version: version ? (/"version":\s*"([^"]*)"/.exec(version)?.[1] ?? version.split('\n')[0]) : 'unknown', sourceNote: process.env['K8S_INVENTORY_SOURCE_NOTE'] ?? '' },
      k8sInventoryPollSeconds: K8S_INVENTORY_CHART_POLL_SECONDS,
      pods: n,
      operatorInventoryMs: a,
      k8sInventoryMs: b,
      medianRatio: Math.round((b.p50 / Math.max(1, a.p50)) * 10) / 10,
    };
  } finally {
    await ki.stop();
    await req(o.conn, 'DELETE', `/api/v1/namespaces/${ns}`, undefined, [200, 202, 404]).catch(() => undefined);
  }
}
