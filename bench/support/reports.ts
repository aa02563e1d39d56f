// Inventory reports as the benchmark sees them, taken from the simulator as each arrives.
import type { InventoryReport } from '../../test/anchore-sim/index.ts';

/**
 * What the benchmark keeps of each inventory report, taken as it arrives: the simulator itself keeps only a few
 * megabytes of reports, so the benchmark process (which also times pods) never pauses to collect gigabytes of them.
 */
export interface ReportSeen {
  at: number;
  cluster: string;
  containers: number;
  digests: Set<string>;
}

const DIGEST = /sha256:[a-f0-9]{64}/;

export class ReportCollector {
  readonly seen: ReportSeen[] = [];
  add(r: InventoryReport): void {
    if (r.account !== 'admin') return;
    const containers = (r.body as { containers?: Array<{ image_digest?: string }> }).containers ?? [];
    this.seen.push({
      at: r.receivedAt,
      cluster: r.body.cluster_name,
      containers: containers.length,
      digests: new Set(containers.map((c) => DIGEST.exec(c.image_digest ?? '')?.[0] ?? c.image_digest ?? '')),
    });
  }
  /** Reports of the cluster from index `sinceIndex` on, in arrival order. */
  of(cluster: string, sinceIndex = 0): ReportSeen[] {
    return this.seen.slice(sinceIndex).filter((r) => r.cluster === cluster);
  }
}
