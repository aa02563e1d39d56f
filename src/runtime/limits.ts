import { type Clock, systemClock } from './clock.ts';

/** Callers marked `high` (e.g. registering a new image) go ahead of every waiting `normal` one. */
export type Priority = 'high' | 'normal';

/** Bounds how many async operations run at once; waiters are served FIFO within their priority. */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  readonly #waiters: { high: Array<() => void>; normal: Array<() => void> } = { high: [], normal: [] };

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiters.high.length + this.#waiters.normal.length;
  }

  async run<T>(fn: () => Promise<T>, priority: Priority = 'normal'): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiters[priority].push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiters.high.shift() ?? this.#waiters.normal.shift();
      // Hand the slot straight to the next waiter so a burst of new callers cannot overtake it.
      if (next) next();
      else this.#active--;
    }
  }
}

/**
 * Token bucket: `ratePerSecond` sustained, `burst` at once. `take()` waits for a token.
 *
 * `highReserve` tokens of the burst are kept for `high` callers: a normal caller is served only while more than that
 * many are left. Under steady load normal work still gets every token high work does not use, but a sudden burst of
 * high work (dozens of new images at once) finds tokens waiting instead of queueing behind the sustained rate.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #reserve: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  readonly #waiters: { high: Array<() => void>; normal: Array<() => void> } = { high: [], normal: [] };
  #timer: unknown;
  #timerDue = Infinity;

  constructor(ratePerSecond: number, burst: number, clock: Clock = systemClock, opts: { highReserve?: number } = {}) {
    if (!(ratePerSecond > 0)) throw new RangeError(`rate must be > 0, got ${ratePerSecond}`);
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, burst);
    this.#reserve = Math.max(0, Math.min(this.#burst - 1, Math.floor(opts.highReserve ?? 0)));
    this.#clock = clock;
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  /** Waits for a token; `high` callers are served before any waiting `normal` one, each class in arrival order. */
  take(priority: Priority = 'normal'): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiters[priority].push(resolve);
      this.#pump();
    });
  }

  #pump(): void {
    for (;;) {
      const high = this.#waiters.high.length > 0;
      const next = high ? this.#waiters.high[0] : this.#waiters.normal[0];
      if (!next) return;
      this.#refill();
      const need = high ? 1 : 1 + this.#reserve;
      if (this.#tokens < need) {
        const wait = Math.ceil(((need - this.#tokens) / this.#rate) * 1000);
        const due = this.#clock.now() + wait;
        // A high caller may need a sooner wake-up than the normal one the timer was set for.
        if (this.#timer !== undefined && this.#timerDue <= due) return;
        if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
        this.#timerDue = due;
        this.#timer = this.#clock.setTimeout(() => {
          this.#timer = undefined;
          this.#timerDue = Infinity;
          this.#pump();
        }, wait);
        return;
      }
      this.#tokens -= 1;
      (high ? this.#waiters.high : this.#waiters.normal).shift();
      next();
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
  }
}
