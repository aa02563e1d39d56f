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

/** Why a ByteBudget refused bytes: more than the whole budget, or taken back to break a standstill. */
export class ByteBudgetError extends Error {
  override readonly name = 'ByteBudgetError';
  readonly reason: 'too-large' | 'contention';

  constructor(reason: 'too-large' | 'contention', message: string) {
    super(message);
    this.reason = reason;
  }
}

/** One holder's share of a ByteBudget. */
export class ByteLease {
  /** Bytes this lease holds. */
  held = 0;
  /** Creation order: older leases grow first. */
  readonly seq: number;
  readonly #budget: ByteBudget;

  constructor(budget: ByteBudget, seq: number) {
    this.#budget = budget;
    this.seq = seq;
  }

  /**
   * Adds `bytes` to the lease, waiting until they fit. Rejects with a ByteBudgetError (`too-large` at once when the
   * lease would exceed the whole budget; `contention` to break a standstill, its bytes then given back) or with the
   * signal's reason when it aborts first.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    return this.#budget.take(this, bytes, signal);
  }

  /** Gives back everything this lease holds. Safe to call more than once. */
  release(): void {
    this.#budget.release(this);
  }
}

interface ByteWaiter {
  lease: ByteLease;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Why a signal aborted, as an Error (AbortSignal.timeout's reason is a DOMException, which is one). */
function abortReason(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  return r instanceof Error ? r : new Error(String(r ?? 'aborted'));
}

/**
 * A cap on the bytes many holders keep at once (response bodies being read): each holder takes a `lease` and grows it
 * as bytes arrive, or all at once when it knows its size; the lease is given back whole. A take that does not fit waits
 * (leases that already hold bytes first, oldest lease first; then new ones in arrival order), so the total held never
 * exceeds `limit`.
 *
 * Holders that grow step by step can block one another: each holds part of the budget and waits for more. When every
 * holder is waiting and none can be served, the waiting holder that holds least (the youngest of equals) is refused
 * (`contention`) and its bytes are freed, so the others finish; its caller may try again later.
 */
export class ByteBudget {
  readonly limit: number;
  #used = 0;
  #peak = 0;
  #seq = 0;
  readonly #queue: ByteWaiter[] = [];
  /** Leases holding bytes now. */
  readonly #holders = new Set<ByteLease>();

  constructor(limit: number) {
    if (!(limit >= 1) || !Number.isSafeInteger(limit)) throw new RangeError(`byte budget must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Most bytes held at once since the budget was made (or since resetPeak). */
  get peak(): number {
    return this.#peak;
  }

  /** Takes waiting for bytes. */
  get waiting(): number {
    return this.#queue.length;
  }

  resetPeak(): void {
    this.#peak = this.#used;
  }

  lease(): ByteLease {
    return new ByteLease(this, this.#seq++);
  }

  /** @internal ByteLease.take */
  take(lease: ByteLease, bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return Promise.resolve();
    if (lease.held + bytes > this.limit) {
      return Promise.reject(new ByteBudgetError('too-large', `${lease.held + bytes} bytes exceed the whole budget of ${this.limit} bytes`));
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#queue.length === 0 && this.#used + bytes <= this.limit) {
      this.#grant(lease, bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const listener = { onAbort: (): void => {} };
      const waiter: ByteWaiter = {
        lease,
        bytes,
        resolve: () => {
          signal?.removeEventListener('abort', listener.onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', listener.onAbort);
          reject(err);
        },
      };
      listener.onAbort = (): void => {
        const i = this.#queue.indexOf(waiter);
        if (i < 0) return;
        this.#queue.splice(i, 1);
        waiter.reject(abortReason(signal));
        this.#pump();
      };
      signal?.addEventListener('abort', listener.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /** @internal ByteLease.release */
  release(lease: ByteLease): void {
    // A lease given back while one of its takes waits: that take is over too.
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const w = this.#queue[i] as ByteWaiter;
      if (w.lease === lease) {
        this.#queue.splice(i, 1);
        w.reject(new ByteBudgetError('contention', 'released while waiting'));
      }
    }
    if (lease.held > 0) {
      this.#used -= lease.held;
      lease.held = 0;
      this.#holders.delete(lease);
    }
    this.#pump();
  }

  #grant(lease: ByteLease, bytes: number): void {
    lease.held += bytes;
    this.#used += bytes;
    this.#holders.add(lease);
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  /** Serves waiters in order while they fit; then breaks a standstill if every holder is waiting. */
  #pump(): void {
    for (;;) {
      // Holders growing go first, the oldest first: it is closest to finishing and giving everything back.
      let i = -1;
      this.#queue.forEach((w, j) => {
        if (w.lease.held > 0 && (i < 0 || w.lease.seq < (this.#queue[i] as ByteWaiter).lease.seq)) i = j;
      });
      if (i < 0) i = 0;
      const next = this.#queue[i];
      if (!next) return;
      if (this.#used + next.bytes <= this.limit) {
        this.#queue.splice(i, 1);
        this.#grant(next.lease, next.bytes);
        next.resolve();
        continue;
      }
      const waitingHolders = new Set(this.#queue.filter((w) => w.lease.held > 0).map((w) => w.lease));
      if (waitingHolders.size === 0 || waitingHolders.size < this.#holders.size) return; // someone still reads: wait
      // Standstill: refuse the waiting holder that holds least (the least work lost; the youngest of equals) and free
      // its bytes.
      let y = -1;
      this.#queue.forEach((w, j) => {
        const v = this.#queue[y];
        if (w.lease.held > 0 && (!v || w.lease.held < v.lease.held || (w.lease.held === v.lease.held && w.lease.seq > v.lease.seq))) y = j;
      });
      const victim = this.#queue[y] as ByteWaiter;
      this.#queue.splice(y, 1);
      const freed = victim.lease.held;
      this.#used -= freed;
      victim.lease.held = 0;
      this.#holders.delete(victim.lease);
      victim.reject(new ByteBudgetError('contention', `the budget of ${this.limit} bytes is held by readers that all wait for more; gave back ${freed} bytes`));
    }
  }
}

/**
 * A byte allowance for optional sends: refills at a rate that may change, may be overdrawn by one send, and never
 * blocks: {@link waitMs} says how long a caller should leave its send until the debt is paid back. Over any window
 * of T seconds the bytes spent stay within `rate × T + rate × burstSeconds` plus one send.
 */
export class ByteAllowance {
  readonly #clock: Clock;
  readonly #burstSeconds: number;
  #rate: number;
  #bytes: number;
  #last: number;

  constructor(bytesPerSecond: number, burstSeconds: number, clock: Clock = systemClock) {
    if (!(bytesPerSecond > 0) || !(burstSeconds > 0)) throw new RangeError(`rate and burst must be > 0, got ${bytesPerSecond} and ${burstSeconds}`);
    this.#clock = clock;
    this.#burstSeconds = burstSeconds;
    this.#rate = bytesPerSecond;
    this.#bytes = bytesPerSecond * burstSeconds;
    this.#last = clock.now();
  }

  get ratePerSecond(): number {
    return this.#rate;
  }

  /** A new refill rate from now on (what was earned so far at the old rate is kept, up to the new burst). */
  setRate(bytesPerSecond: number): void {
    if (!(bytesPerSecond > 0)) throw new RangeError(`rate must be > 0, got ${bytesPerSecond}`);
    this.#refill();
    this.#rate = bytesPerSecond;
    this.#bytes = Math.min(this.#bytes, this.#rate * this.#burstSeconds);
  }

  /** 0 when a send may go now; otherwise the milliseconds until the allowance is out of debt. */
  waitMs(): number {
    this.#refill();
    return this.#bytes >= 0 ? 0 : Math.ceil((-this.#bytes / this.#rate) * 1000);
  }

  /** Counts a send of `bytes` (it may overdraw the allowance). */
  spend(bytes: number): void {
    this.#refill();
    this.#bytes -= Math.max(0, bytes);
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#bytes = Math.min(this.#rate * this.#burstSeconds, this.#bytes + (Math.max(0, now - this.#last) / 1000) * this.#rate);
    this.#last = now;
  }
}
