/** RFC 3339 in UTC with whole seconds ("2026-12-06T04:43:49Z"): how Kubernetes and Anchore's API spell times. */
export function formatTimestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
