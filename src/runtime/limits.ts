import { type Clock, systemClock } from './clock.ts';

/** Bounds how many async operations run at once; waiters are served FIFO. */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      // Hand the slot straight to the next waiter so a burst of new callers cannot overtake it.
      if (next) next();
      else this.#active--;
    }
  }
}

/** Token bucket: `ratePerSecond` sustained, `burst` at once. `take()` waits for a token. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(ratePerSecond: number, burst: number, clock: Clock = systemClock) {
    if (!(ratePerSecond > 0)) throw new RangeError(`rate must be > 0, got ${ratePerSecond}`);
    this.#rate = ratePerSecond;
    this.#burst = Math.max(1, burst);
    this.#clock = clock;
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  /** Milliseconds until a token is available (0 if one is). Does not consume. */
  delayMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  take(): Promise<void> {
    // Chain callers so tokens are handed out in arrival order.
    const p = this.#queue.then(() => this.#takeOne());
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async #takeOne(): Promise<void> {
    for (;;) {
      const wait = this.delayMs();
      if (wait === 0) {
        this.#tokens -= 1;
        return;
      }
      await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, wait));
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
  }
}
