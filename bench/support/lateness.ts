// How late the benchmark process itself was at a given moment. The pod watch and the Anchore simulator share this
// process's event loop: when it is blocked (parsing a multi-megabyte inventory, collecting garbage, waiting for a
// CPU), a pod event or an Anchore request that arrived meanwhile is stamped late. A timer that should fire every
// `intervalMs` shows how long each such stall was, and when.

/** Ticks of a fixed-interval timer, kept so that the stall around any moment can be looked up afterwards. */
export class LoopTicker {
  readonly intervalMs: number;
  readonly #fires: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(intervalMs = 10, now: () => number = Date.now) {
    this.intervalMs = intervalMs;
    this.#now = now;
  }

  start(): void {
    if (this.#timer) return;
    this.#fires.push(this.#now());
    this.#timer = setInterval(() => this.#fires.push(this.#now()), this.intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Records a tick at `t` (tests drive the ticker by hand). */
  tick(t: number): void {
    this.#fires.push(t);
  }

  /** How late tick i fired after the one before it (0 for the first). */
  #late(i: number): number {
    if (i <= 0 || i >= this.#fires.length) return 0;
    return Math.max(0, this.#fires[i]! - this.#fires[i - 1]! - this.intervalMs);
  }

  /**
   * The harness's delay at `t` (ms since the epoch, the stamp of something this process handled): the larger
   * lateness of the ticks just before and just after `t`. Whatever was handled at `t` waited at most about that long
   * behind other work of this process, so it is an upper bound on how late `t` is (give or take one interval); a
   * stall that came right after `t` is counted too, so it can overstate, never understate.
   */
  delayAt(t: number): number {
    const f = this.#fires;
    let lo = 0;
    let hi = f.length; // first index with f[i] > t
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f[mid]! <= t) lo = mid + 1;
      else hi = mid;
    }
    return Math.max(this.#late(lo - 1), this.#late(lo));
  }

  /** Ticks recorded so far. */
  get ticks(): number {
    return this.#fires.length;
  }
}
