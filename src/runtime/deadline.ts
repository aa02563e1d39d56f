/** A promise's outcome, or that the deadline came first. */
export type Raced<T> = { ok: true; value: T } | { ok: false; timeout: true } | { ok: false; timeout: false; error: unknown };

/**
 * The promise's outcome, or a timeout after `ms`; the promise itself runs on (an Anchore answer that comes late still
 * fills the caches). Never rejects.
 */
export function raceDeadline<T>(p: Promise<T>, ms: number): Promise<Raced<T>> {
  p.catch(() => {});
  if (ms <= 0) return Promise.resolve({ ok: false, timeout: true });
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ ok: false, timeout: true }), ms);
    p.then(
      (value) => {
        clearTimeout(t);
        resolve({ ok: true, value });
      },
      (error: unknown) => {
        clearTimeout(t);
        resolve({ ok: false, timeout: false, error });
      },
    );
  });
}

/**
 * An AbortSignal that aborts after `ms` as `AbortSignal.timeout(ms)` does (its reason a DOMException named
 * TimeoutError, its timer unref'd), and `clear()` to drop the timer once the work it bounds is over.
 * `AbortSignal.timeout` cannot be cleared: its timer, and with it the signal, stays until it fires, long after the call
 * it bounded ended, and then builds a DOMException (a stack trace) for nobody. At 50 Anchore calls a second with a 3 s
 * admission deadline that is 150 live timers and signals at any time, each surviving enough young-generation collections
 * to be promoted to the old one.
 */
export function timeoutSignal(ms: number): { signal: AbortSignal; clear(): void } {
  const c = new AbortController();
  const t = setTimeout(() => c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
  t.unref();
  return { signal: c.signal, clear: () => clearTimeout(t) };
}
