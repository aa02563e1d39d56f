import type { AnchoreApi } from '../anchore/anchore.port.ts';
import { type GlobList, globsOf } from '../discovery/glob.ts';
import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import { type Periodic, every } from '../runtime/periodic.ts';
import type { Logger } from '../telemetry/logger.ts';
import { METRIC, type OperatorMetrics } from '../telemetry/metrics.ts';

interface ReportsOptions {
  anchore: AnchoreApi;
  accounts: () => string[];
  /** Globs on metric ids, e.g. "vulnerabilities.*", or their compiled form (config's REPORTS_METRICS). */
  metrics: GlobList;
  intervalMs: number;
  log: Logger;
  operatorMetrics: OperatorMetrics;
  clock?: Clock;
}

interface Latest {
  value: number;
  collectedAt: number;
}

/**
 * Optional (REPORTS_METRICS_ENABLED): exports Anchore's own account-level metrics from its Reports GraphQL API as
 * gauges — the latest point of each selected metric. Reports data lags the REST API (it is collected periodically),
 * so the collection time is exported beside each value.
 */
export class ReportsController {
  readonly #o: ReportsOptions;
  readonly #log: Logger;
  readonly #match: (id: string) => boolean;
  readonly #latest = new Map<string, Latest>();
  #loop: Periodic | undefined;
  /** Completed collection rounds (for tests). */
  rounds = 0;

  constructor(o: ReportsOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'reports' });
    const g = globsOf(o.metrics);
    if (!g.ok) throw new Error(`REPORTS_METRICS: ${g.reason}`);
    this.#match = g.value.matches;
    const latest = this.#latest;
    const rows = function* (pick: (l: Latest) => number): Iterable<[{ account: string; metric: string }, number]> {
      for (const [k, l] of latest) {
        const [account, metric] = k.split('\u0000') as [string, string];
        yield [{ account, metric }, pick(l)];
      }
    };
    o.operatorMetrics.findingsGauge(METRIC.reportMetric, "Latest value of Anchore's own Reports metrics (REPORTS_METRICS_ENABLED)", ['account', 'metric'], () => rows((l) => l.value));
    o.operatorMetrics.findingsGauge(METRIC.reportMetricCollected, 'When Anchore collected that value (Unix time)', ['account', 'metric'], () => rows((l) => l.collectedAt / 1000));
  }

  start(): void {
    this.#loop = every(this.#o.intervalMs, () => this.#round(), this.#o.clock ? { clock: this.#o.clock } : {});
  }

  stop(): void {
    this.#loop?.stop();
  }

  async #round(): Promise<void> {
    const end = new Date();
    const start = new Date(end.getTime() - 24 * 3_600_000);
    for (const account of this.#o.accounts()) {
      try {
        const ids = (await this.#o.anchore.reportMetrics(account)).map((m) => m.id).filter((id) => this.#match(id));
        for (const id of ids) {
          const points = await this.#o.anchore.reportMetricData(account, id, start, end);
          let newest: Latest | undefined;
          for (const p of points) {
            const t = Date.parse(p.collectedAt.endsWith('Z') ? p.collectedAt : `${p.collectedAt}Z`);
            if (!Number.isNaN(t) && (!newest || t > newest.collectedAt)) newest = { value: p.value, collectedAt: t };
          }
          if (newest) this.#latest.set(`${account}\u0000${id}`, newest);
        }
      } catch (err) {
        // Keep the previous values: stale but visible, and the collection time says how stale.
        this.#log.warn({ account, err: errorMessage(err) }, 'could not read Anchore report metrics');
      }
    }
    this.rounds++;
  }
}
