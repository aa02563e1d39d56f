// Figures for benchmark output: percentiles, medians, and the Markdown table printed after the JSON.

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of a sorted list. */
export function rank(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Rounds to two decimals (sub-millisecond figures: admission latencies). */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Nearest-rank percentiles, rounded to whole numbers unless `round` says otherwise. */
export function percentiles(values: number[], round: (x: number) => number = Math.round): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: round(rank(s, 50)), p90: round(rank(s, 90)), p99: round(rank(s, 99)), max: round(s[s.length - 1] ?? Number.NaN) };
}

export function median(values: number[]): number {
  return rank(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Flattens a result object into "scenario | figure | value" rows. */
export function markdownTable(results: Record<string, unknown>): string {
  const rows: string[] = ['| Scenario | Figure | Value |', '| --- | --- | --- |'];
  const walk = (scenario: string, prefix: string, v: unknown): void => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(scenario, prefix ? `${prefix}.${k}` : k, x);
    } else {
      rows.push(`| ${scenario} | ${prefix} | ${Array.isArray(v) ? v.join(', ') : String(v)} |`);
    }
  };
  for (const [scenario, v] of Object.entries(results)) {
    if (scenario === 'run' || scenario === 'params') continue;
    walk(scenario, '', v);
  }
  return rows.join('\n');
}

/** One latency and the harness's delay over the same samples (see bench/support/churn.ts). */
export interface LatencyRow {
  what: string;
  ms: Percentiles;
  harnessDelayMs: Percentiles;
  beyondHarnessMs: Percentiles;
}

/** Latencies with the harness's own delay beside each: the reader can tell the operator's share from the harness's. */
export function latencyTable(rows: LatencyRow[]): string {
  const cell = (p: Percentiles): string => `${p.p50} / ${p.p90} / ${p.p99} / ${p.max}`;
  return [
    '| Latency (ms) | n | measured p50 / p90 / p99 / max | harness delay at its stamps, p50 / p90 / p99 / max | measured − harness delay, p50 / p90 / p99 / max |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.what} | ${r.ms.n} | ${cell(r.ms)} | ${cell(r.harnessDelayMs)} | ${cell(r.beyondHarnessMs)} |`),
  ].join('\n');
}

/** Bytes posted to Anchore's inventory endpoint per window and sender. */
export function bytesTable(
  rows: Array<{ window: string; sender: string; seconds: number; reports: number; bytesPerReport: number; bytes: number; MBPerHour: number; projectedMBPerHour?: number | null }>,
): string {
  const projected = (v: number | null | undefined): string => (v === undefined ? '' : v === null ? 'not seen' : String(v));
  return [
    '| Window | Sender | Seconds | Reports | Bytes per report | Bytes | MB per hour at this window’s rate | MB per hour, full reports at their own interval |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.window} | ${r.sender} | ${r.seconds} | ${r.reports} | ${r.bytesPerReport} | ${r.bytes} | ${r.MBPerHour} | ${projected(r.projectedMBPerHour)} |`),
  ].join('\n');
}
