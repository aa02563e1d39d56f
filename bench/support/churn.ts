// The churn scenario's figures, from what was observed: each churn pod's schedule, creation and deletion, when the
// benchmark's watch saw it Running, the first Anchore add of its image, and the operator's inventory reports. Each
// latency comes with the harness's own delay at its two stamps (LoopTicker.delayAt), so a reader can tell the
// operator's share from the benchmark's. Nothing here waits or throws: a pod that never turned Running is counted,
// not waited for.
import { digestOf, type RunningSeen } from './kube.ts';
import type { ReportSeen } from './reports.ts';
import { type Percentiles, percentiles } from './stats.ts';

export interface ChurnPod {
  /** namespace/name */
  key: string;
  namespace: string;
  /** When the schedule said to create it (ms since the epoch). */
  dueAt: number;
  /** When the create was sent. */
  sentAt?: number;
  /** Set once the create succeeded. */
  created?: boolean;
  createError?: string;
  /** When the delete returned (the pod is gone from the apiserver then). */
  deletedAt?: number;
  deleteError?: string;
}

export interface ChurnObservations {
  pods: ChurnPod[];
  /** The benchmark's watch: first seen Running, per pod key. */
  running: Map<string, RunningSeen>;
  /** First successful POST /v2/images per digest (ms since the epoch, the simulator's arrival stamp). */
  firstAdd: Map<string, number>;
  /** The operator's inventory reports from the start of churn on, in arrival order. */
  reports: ReportSeen[];
  /** The harness's delay around a moment (LoopTicker.delayAt); () => 0 when not measured. */
  delayAt: (t: number) => number;
}

/** A latency with the harness's delay at its stamps beside it, over the same samples. */
export interface LatencyWithHarness {
  /** The latency as stamped. */
  ms: Percentiles;
  /** Per sample, the larger harness delay at its two stamps: how far the stamps can be off. */
  harnessDelayMs: Percentiles;
  /** Per sample, the latency less that delay (floored at 0): the part the harness cannot explain. */
  beyondHarnessMs: Percentiles;
}

export interface ChurnFigures {
  podsScheduled: number;
  podsCreated: number;
  createFailures: number;
  podsDeleted: number;
  deleteFailures: number;
  /** How late each create was sent against its schedule (the benchmark's own lateness as a load generator). */
  createLateMs: Percentiles;
  /** Created pods the watch never saw Running: deleted before they turned Running, or still not Running at the end. */
  neverRunning: { count: number; deletedFirst: number; stillNotRunning: number; examples: string[] };
  /** Pods first seen Running by a re-list of the watch (no Running time: left out of the latencies). */
  runningSeenOnlyByRelist: number;
  registration: LatencyWithHarness;
  /** Pods seen Running whose image was never added to Anchore. */
  notRegistered: number;
  inventory: LatencyWithHarness;
  /** Pods seen Running whose image was in no inventory report after that. */
  inventoryMissing: number;
  deletionInInventory: LatencyWithHarness;
  /** Deleted pods (seen Running before) whose namespace was never reported again without their image. */
  deletionNotSeen: number;
}

function withHarness(samples: Array<{ ms: number; harness: number }>): LatencyWithHarness {
  return {
    ms: percentiles(samples.map((s) => s.ms)),
    harnessDelayMs: percentiles(samples.map((s) => s.harness)),
    beyondHarnessMs: percentiles(samples.map((s) => Math.max(0, s.ms - s.harness))),
  };
}

export function analyseChurn(o: ChurnObservations): ChurnFigures {
  const created = o.pods.filter((p) => p.created);
  const reg: Array<{ ms: number; harness: number }> = [];
  const inv: Array<{ ms: number; harness: number }> = [];
  const gone: Array<{ ms: number; harness: number }> = [];
  const never: string[] = [];
  let deletedFirst = 0;
  let viaRelist = 0;
  let notRegistered = 0;
  let inventoryMissing = 0;
  let deletionNotSeen = 0;
  for (const p of created) {
    const r = o.running.get(p.key);
    if (!r) {
      never.push(p.key);
      if (p.deletedAt !== undefined) deletedFirst++;
      continue;
    }
    if (r.viaRelist) {
      viaRelist++;
      continue;
    }
    const digest = digestOf(r.imageIDs[0] ?? '');
    if (!digest) continue;
    const added = o.firstAdd.get(digest);
    if (added === undefined) notRegistered++;
    else reg.push({ ms: added - r.at, harness: Math.max(o.delayAt(r.at), o.delayAt(added)) });
    const first = o.reports.find((x) => x.at >= r.at && x.digests.has(digest));
    if (first) inv.push({ ms: first.at - r.at, harness: Math.max(o.delayAt(r.at), o.delayAt(first.at)) });
    else inventoryMissing++;
    if (p.deletedAt !== undefined) {
      const at = p.deletedAt;
      // Anchore replaces the namespaces a report covers: the pod is gone once a report covers its namespace without it.
      const without = o.reports.find((x) => x.at >= at && x.namespaces.has(p.namespace) && !x.digests.has(digest));
      if (without) gone.push({ ms: without.at - at, harness: Math.max(o.delayAt(at), o.delayAt(without.at)) });
      else deletionNotSeen++;
    }
  }
  return {
    podsScheduled: o.pods.length,
    podsCreated: created.length,
    createFailures: o.pods.filter((p) => p.createError !== undefined).length,
    podsDeleted: o.pods.filter((p) => p.deletedAt !== undefined).length,
    deleteFailures: o.pods.filter((p) => p.deleteError !== undefined).length,
    createLateMs: percentiles(o.pods.filter((p) => p.sentAt !== undefined).map((p) => p.sentAt! - p.dueAt)),
    neverRunning: { count: never.length, deletedFirst, stillNotRunning: never.length - deletedFirst, examples: never.slice(0, 5) },
    runningSeenOnlyByRelist: viaRelist,
    registration: withHarness(reg),
    notRegistered,
    inventory: withHarness(inv),
    inventoryMissing,
    deletionInInventory: withHarness(gone),
    deletionNotSeen,
  };
}
