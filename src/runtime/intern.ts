/**
 * String interning for what the caches hold many copies of. Every watch event is parsed anew, so 10,000 pods of
 * 2,000 images carry 10,000 separate copies of the same image references, namespace names, node names and owner kinds
 * (a heap snapshot at 10,000 pods showed ~8 MiB of such duplicates). Interning keeps one copy of each.
 *
 * Bounded: two generations of at most `limit` entries each. When the current one is full it becomes the previous one
 * and the old previous one is dropped; a string found in the previous generation moves to the current one. Strings
 * still in use stay alive through their users either way, so dropping the pool only loses sharing, never data.
 */
export class Interner {
  readonly #limit: number;
  #current = new Map<string, string>();
  #previous = new Map<string, string>();

  constructor(limit = 100_000) {
    if (!(limit >= 1)) throw new RangeError(`intern limit must be >= 1, got ${limit}`);
    this.#limit = limit;
  }

  /** The pooled copy of `s` (equal to it). */
  intern(s: string): string {
    const hit = this.#current.get(s);
    if (hit !== undefined) return hit;
    const old = this.#previous.get(s);
    const kept = old ?? s;
    if (this.#current.size >= this.#limit) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(kept, kept);
    return kept;
  }

  /** Whether the pool holds `s` (in either generation). */
  has(s: string): boolean {
    return this.#current.has(s) || this.#previous.has(s);
  }

  get size(): number {
    return this.#current.size + this.#previous.size;
  }
}

/** The process-wide pool for cached Kubernetes and Anchore identifiers. */
const pool = new Interner();

/** `pool.intern` for optional strings. */
export function intern<T extends string | undefined>(s: T): T {
  return (s === undefined ? s : pool.intern(s)) as T;
}
