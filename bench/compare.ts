// anchore/k8s-inventory beside the operator, same control plane, same simulator, at its chart default polling interval
// (60 s). Both post to POST /v2/kubernetes-inventory; reports are told apart by cluster_name. The agent is started
// once, before the steady-state window, over every namespace of the run (so its bytes to Anchore are measured at the
// full cluster size, in the same windows as the operator's), and scenario 7 then measures detection latency on it:
// pods starting one by one in a namespace of their own. Needs the k8s-inventory binary (bench/build-k8s-inventory.sh,
// K8S_INVENTORY_BINARY or K8S_INVENTORY_SRC); when it cannot be had, the result says exactly why instead of inventing
// a figure.
import { writeFileSync } from 'node:fs';
import type { AnchoreSimulator } from '../test/anchore-sim/index.ts';
import { K8sInventoryUnavailableError, type RunningK8sInventory, ensureK8sInventory, k8sInventoryVersionName, startK8sInventory } from './support/k8s-inventory.ts';
import { type KubeConnection, digestOf, podBody, req, waitFor, watchRunning } from './support/kube.ts';
import type { ReportCollector } from './support/reports.ts';
import { percentiles } from './support/stats.ts';

/** The k8s-inventory Helm chart's default (anchore/anchore-charts stable/k8s-inventory values.yaml). */
export const K8S_INVENTORY_CHART_POLL_SECONDS = 60;

export interface AgentBeside {
  agent: RunningK8sInventory;
  /** cluster_name of its reports. */
  cluster: string;
  /** Where the agent came from: its own version output, and K8S_INVENTORY_SOURCE_NOTE when set. */
  about: { binary: string; version: string; sourceNote: string; pollSeconds: number; namespaces: number };
}

/**
 * Starts the agent over `namespaces` and waits for its first report (the listing at its start). Resolves with
 * `blocked` when the binary cannot be had on this machine.
 */
export async function startK8sInventoryBeside(o: {
  sim: AnchoreSimulator;
  reports: ReportCollector;
  kubeconfig: string;
  run: string;
  namespaces: string[];
  logDir: string;
}): Promise<AgentBeside | { blocked: string }> {
  let binary: string;
  try {
    binary = await ensureK8sInventory();
  } catch (err) {
    if (err instanceof K8sInventoryUnavailableError) return { blocked: err.message };
    throw err;
  }
  const cluster = `k8s-inventory-${o.run}`;
  const agent = await startK8sInventory({
    binary,
    kubeconfig: o.kubeconfig,
    anchoreUrl: o.sim.url,
    username: 'admin',
    password: 'foobar',
    account: 'admin',
    pollSeconds: K8S_INVENTORY_CHART_POLL_SECONDS,
    namespaces: o.namespaces,
    clusterName: cluster,
    workDir: `${o.logDir}/k8s-inventory`,
  });
  const about = {
    binary,
    version: k8sInventoryVersionName(binary) ?? 'unknown',
    sourceNote: process.env['K8S_INVENTORY_SOURCE_NOTE'] ?? '',
    pollSeconds: K8S_INVENTORY_CHART_POLL_SECONDS,
    namespaces: o.namespaces.length,
  };
  try {
    await waitFor(
      'k8s-inventory first report',
      () => {
        if (agent.exited()) throw new Error(`anchore-k8s-inventory exited:\n${agent.output.slice(-20).join('\n')}`);
        return o.reports.of(cluster).length > 0;
      },
      300_000,
      500,
    );
  } catch (err) {
    await stopAgent(agent, o.logDir);
    throw err;
  }
  return { agent, cluster, about };
}

/** Stops the agent and writes what it printed beside the operator's log. */
export async function stopAgent(agent: RunningK8sInventory, logDir: string): Promise<void> {
  await agent.stop();
  writeFileSync(`${logDir}/k8s-inventory/output.log`, `${agent.output.join('\n')}\n`);
}

/**
 * Scenario 7: `pods` pods start `intervalMs` apart in `namespace` (already in the agent's scope); from each turning
 * Running (the benchmark's watch) to the first report of each sender that contains its digest. Waits one polling
 * period beyond the last pod; what did not happen by then is counted, not waited for.
 */
export async function compareLatency(o: {
  conn: KubeConnection;
  reports: ReportCollector;
  run: string;
  label: Record<string, string>;
  namespace: string;
  operatorCluster: string;
  kiCluster: string;
  note: (what: string) => void;
  pods?: number;
  intervalMs?: number;
}): Promise<Record<string, unknown>> {
  const ns = o.namespace;
  const watch = await watchRunning(o.conn, `bench-run=${o.run}`);
  try {
    const n = o.pods ?? 40;
    const every = o.intervalMs ?? 3_000;
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `cmp-${i}`;
      try {
        await req(o.conn, 'POST', `/api/v1/namespaces/${ns}/pods`, podBody(ns, name, `bench.registry.local/${o.run}/cmp/img-${i}:1.0`, o.label));
        names.push(`${ns}/${name}`);
      } catch (err) {
        o.note(`compare pod ${name} not created: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, every));
    }
    await waitFor('compare pods Running', () => names.every((k) => watch.running.has(k)), 120_000, 200).catch((err: unknown) => o.note((err as Error).message));
    const pods = names.flatMap((k) => {
      const r = watch.running.get(k);
      return r && !r.viaRelist ? [{ at: r.at, digest: digestOf(r.imageIDs[0] ?? '') ?? '' }] : [];
    });
    const firstReport = (cluster: string, digest: string, after: number): number | undefined => o.reports.of(cluster).find((r) => r.at >= after && r.digests.has(digest))?.at;
    // One more full polling period, so every pod had its chance in a k8s-inventory report.
    await waitFor('k8s-inventory reports every pod', () => pods.every((p) => firstReport(o.kiCluster, p.digest, p.at) !== undefined), (K8S_INVENTORY_CHART_POLL_SECONDS + 30) * 1000, 1000).catch(
      (err: unknown) => o.note((err as Error).message),
    );
    const ours = pods.map((p) => (firstReport(o.operatorCluster, p.digest, p.at) ?? Number.NaN) - p.at).filter(Number.isFinite);
    const theirs = pods.map((p) => (firstReport(o.kiCluster, p.digest, p.at) ?? Number.NaN) - p.at).filter(Number.isFinite);
    const a = percentiles(ours);
    const b = percentiles(theirs);
    return {
      pods: n,
      podsMeasured: pods.length,
      operatorInventoryMs: a,
      k8sInventoryMs: b,
      medianRatio: Math.round((b.p50 / Math.max(1, a.p50)) * 10) / 10,
      benchWatch: watch.health(),
    };
  } finally {
    watch.stop();
  }
}
