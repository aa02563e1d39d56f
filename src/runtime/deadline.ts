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
