/**
 * Typed outcomes a reconciler can throw (Flux style). The work queue treats them differently:
 * - WaitError: the object is fine but waiting on something outside (analysis pending, Anchore down). Requeue after
 *   `afterMs` without counting a failure, so waiting never escalates into long backoff.
 * - StallError: retrying cannot help until the input changes (bad spec, unknown policy). No requeue — unless the
 *   missing thing lives outside the cluster (a policy or account created in Anchore): then a slow `recheckAfterMs`.
 * - anything else: a failure; retried with per-key exponential backoff.
 */
export class WaitError extends Error {
  override readonly name = 'WaitError';
  readonly afterMs: number;
  readonly reason: string;
  constructor(reason: string, message: string, afterMs: number) {
    super(message);
    this.reason = reason;
    this.afterMs = afterMs;
  }
}

export class StallError extends Error {
  override readonly name = 'StallError';
  readonly reason: string;
  /** Look again after this long (0: only when the object changes). */
  readonly recheckAfterMs: number;
  constructor(reason: string, message: string, recheckAfterMs = 0) {
    super(message);
    this.reason = reason;
    this.recheckAfterMs = recheckAfterMs;
  }
}

/** Message of any thrown value, without stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
