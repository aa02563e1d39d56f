/** RFC 3339 in UTC with whole seconds ("2026-12-06T04:43:49Z"): how Kubernetes and Anchore's API spell times. */
export function formatTimestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Kubernetes MicroTime: RFC 3339 in UTC with six fractional digits ("2026-12-06T04:43:49.123000Z"), as Lease times and
 * events.k8s.io/v1 eventTime are written (the apiserver rejects an eventTime with millisecond precision).
 */
export function formatMicroTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Parses a Go duration ("1h30m", "90s"); undefined when invalid. */
export function parseDuration(s: string): number | undefined {
  if (!/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2] as string] as number);
  return total;
}
