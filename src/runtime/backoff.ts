/** Exponential backoff with "full jitter" (AWS architecture blog): spreads retries of many keys apart. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 0 = no jitter, 1 = full jitter (delay drawn uniformly from [d*(1-jitter), d]). */
  jitter: number;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  const low = exp * (1 - policy.jitter);
  return Math.round(low + (exp - low) * random());
}
