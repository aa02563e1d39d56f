// Inventory reports as the benchmark sees them, taken from the simulator as each arrives, and the bytes they cost.
import type { InventoryReport, RecordedRequest } from '../../test/anchore-sim/index.ts';

/**
 * What the benchmark keeps of each inventory report, taken as it arrives: the simulator itself keeps only a few
 * megabytes of reports, so the benchmark process (which also times pods) never pauses to collect gigabytes of them.
 */
export interface ReportSeen {
  at: number;
  cluster: string;
  containers: number;
  digests: Set<string>;
  /** Names of the namespaces the report covers (listed, or referenced by a pod): Anchore replaces exactly these. */
  namespaces: Set<string>;
  /** Body bytes as posted (see {@link ReportCollector.attachBytes}); undefined until known. */
  bytes?: number;
}

/** Bytes posted to POST /v2/kubernetes-inventory by one sender over a window, and what that is per hour. */
export interface BytesInWindow {
  reports: number;
  bytes: number;
  bytesPerReport: number;
  maxReportBytes: number;
  /** Median number of namespaces per report (a full report covers every namespace in scope). */
  namespacesPerReport: number;
  /** bytes / window × 3600: what the sender would post in an hour at this window's rate. */
  bytesPerHour: number;
  MBPerHour: number;
  /** Reports in the window whose size could not be found in the simulator's request log (0 when all were sized). */
  unsized: number;
}

/** A sender's full reports (those covering every namespace asked about) over a whole run. */
export interface FullReports {
  count: number;
  /** Size of the newest one. */
  lastBytes: number;
  /**
   * Median time between two consecutive ones, leaving out the pairs that `skip` rules out (e.g. an operator restart
   * between them); null when no such pair was seen.
   */
  medianIntervalSeconds: number | null;
}

const DIGEST = /sha256:[a-f0-9]{64}/;
const DROPPED = /^\[body of (\d+) bytes dropped/;

/**
 * Size of a request body as the simulator's request log holds it: a body too large to keep is replaced by a note
 * that names its exact size; a body kept is parsed JSON, re-serialised here (byte-exact for what JSON.stringify sent;
 * for other encoders it can differ by escapes, never by structure).
 */
export function loggedBodyBytes(body: unknown): number {
  if (body === undefined) return 0;
  if (typeof body === 'string') {
    const m = DROPPED.exec(body);
    return m ? Number(m[1]) : Buffer.byteLength(body);
  }
  return Buffer.byteLength(JSON.stringify(body));
}

export class ReportCollector {
  readonly seen: ReportSeen[] = [];
  add(r: InventoryReport): void {
    if (r.account !== 'admin') return;
    const body = r.body;
    const sized = r as InventoryReport & { bytes?: number };
    const containers = body.containers ?? [];
    const nsName = new Map<string, string>();
    const namespaces = new Set<string>();
    for (const ns of body.namespaces ?? []) {
      const name = typeof ns.name === 'string' && ns.name !== '' ? ns.name : ns.uid;
      if (typeof name !== 'string') continue;
      if (typeof ns.uid === 'string') nsName.set(ns.uid, name);
      namespaces.add(name);
    }
    for (const p of body.pods ?? []) namespaces.add(nsName.get(p.namespace_uid) ?? p.namespace_uid);
    this.seen.push({
      at: r.receivedAt,
      cluster: body.cluster_name,
      containers: containers.length,
      digests: new Set(containers.map((c) => DIGEST.exec(c.image_digest ?? '')?.[0] ?? c.image_digest ?? '')),
      namespaces,
      // The simulator passes the body's size with the report where it does (`bytes`); else attachBytes finds it.
      ...(typeof sized.bytes === 'number' && sized.bytes > 0 ? { bytes: sized.bytes } : {}),
    });
  }

  /** Reports of the cluster from index `sinceIndex` on, in arrival order. */
  of(cluster: string, sinceIndex = 0): ReportSeen[] {
    return this.seen.slice(sinceIndex).filter((r) => r.cluster === cluster);
  }

  /**
   * Fills in `bytes` from the simulator's request log (`sim.requests({ method: 'POST', path:
   * '/v2/kubernetes-inventory', account: 'admin' })`). The simulator hands `onInventory` the parsed report but not its
   * size; its log entry for the same request has the same arrival time, and the two are made in the same synchronous
   * step, so the n-th accepted (201) request of a given millisecond is the n-th report of that millisecond. Call it
   * before the log's ring has overwritten the requests of interest (the end of each measured window).
   * @returns how many reports got their size.
   */
  attachBytes(requests: RecordedRequest[]): number {
    const waiting = new Map<number, ReportSeen[]>();
    for (const r of this.seen) {
      if (r.bytes !== undefined) continue;
      const list = waiting.get(r.at);
      if (list) list.push(r);
      else waiting.set(r.at, [r]);
    }
    // A request already matched is skipped by counting, per millisecond, the reports sized before.
    const sized = new Map<number, number>();
    for (const r of this.seen) if (r.bytes !== undefined) sized.set(r.at, (sized.get(r.at) ?? 0) + 1);
    let n = 0;
    for (const q of requests) {
      if (q.status !== 201) continue;
      const skip = sized.get(q.time) ?? 0;
      if (skip > 0) {
        sized.set(q.time, skip - 1);
        continue;
      }
      const report = waiting.get(q.time)?.shift();
      if (!report) continue;
      const bytes = loggedBodyBytes(q.body);
      report.bytes = bytes;
      n++;
    }
    return n;
  }

  /** The reports of `cluster` that cover every namespace of `namespaces`, and how often they came. */
  fullReports(cluster: string, namespaces: string[], skip: (from: number, to: number) => boolean = () => false): FullReports {
    const full = this.seen.filter((r) => r.cluster === cluster && namespaces.every((n) => r.namespaces.has(n)));
    const gaps: number[] = [];
    for (let i = 1; i < full.length; i++) if (!skip(full[i - 1]!.at, full[i]!.at)) gaps.push(full[i]!.at - full[i - 1]!.at);
    gaps.sort((a, b) => a - b);
    return {
      count: full.length,
      lastBytes: full.at(-1)?.bytes ?? 0,
      medianIntervalSeconds: gaps.length ? Math.round(gaps[Math.ceil(gaps.length / 2) - 1]! / 100) / 10 : null,
    };
  }

  /**
   * Bytes per hour of `cluster` in steady state, with its full reports at their own pace: what it sent in [from, to)
   * other than full reports, at that window's rate, plus one full report (the newest before the window's end, else
   * the newest of all) once per `full.medianIntervalSeconds`.
   * A window shorter than the full reports' interval sees one of them or none, by chance; this does not. Null when no
   * interval was seen.
   */
  projectedBytesPerHour(cluster: string, from: number, to: number, namespaces: string[], full: FullReports): number | null {
    if (full.medianIntervalSeconds === null || full.medianIntervalSeconds <= 0) return null;
    const partial = this.seen.filter((r) => r.cluster === cluster && r.at >= from && r.at < to && !namespaces.every((n) => r.namespaces.has(n))).reduce((sum, r) => sum + (r.bytes ?? 0), 0);
    const seconds = Math.max(0.001, (to - from) / 1000);
    const before = this.seen.filter((r) => r.cluster === cluster && r.at < to && namespaces.every((n) => r.namespaces.has(n))).at(-1);
    return Math.round((partial / seconds) * 3600 + ((before?.bytes ?? full.lastBytes) * 3600) / full.medianIntervalSeconds);
  }

  /** Bytes a cluster's reports posted in [from, to) (ms since the epoch), per report and per hour. */
  bytesIn(cluster: string, from: number, to: number): BytesInWindow {
    const reports = this.seen.filter((r) => r.cluster === cluster && r.at >= from && r.at < to);
    const sizes = reports.map((r) => r.bytes ?? 0);
    const bytes = sizes.reduce((a, b) => a + b, 0);
    const seconds = Math.max(0.001, (to - from) / 1000);
    const perHour = Math.round((bytes / seconds) * 3600);
    const ns = reports.map((r) => r.namespaces.size).sort((a, b) => a - b);
    return {
      reports: reports.length,
      bytes,
      bytesPerReport: reports.length ? Math.round(bytes / reports.length) : 0,
      maxReportBytes: sizes.length ? Math.max(...sizes) : 0,
      namespacesPerReport: ns.length ? ns[Math.ceil(ns.length / 2) - 1]! : 0,
      bytesPerHour: perHour,
      MBPerHour: Math.round(perHour / 1e4) / 100,
      unsized: reports.filter((r) => r.bytes === undefined).length,
    };
  }
}
