import { type BackoffPolicy, backoffDelay } from './backoff.ts';
import { type Clock, systemClock } from './clock.ts';
import { StallError, WaitError } from './errors.ts';

/** What a handler may return: nothing (done) or a request to look again later (periodic re-checks). */
export type HandleResult = void | { requeueAfterMs?: number };

type QueueOutcome = 'success' | 'requeue' | 'wait' | 'stalled' | 'error';

export interface QueueEvent<K> {
  key: K;
  outcome: QueueOutcome;
  durationMs: number;
  /** Time the key spent queued before a worker took it. */
  waitMs: number;
  /** Consecutive failures for this key after this run (0 on success). */
  failures: number;
  error?: unknown;
}

interface WorkQueueOptions<K> {
  name: string;
  concurrency: number;
  handle: (key: K) => Promise<HandleResult>;
  backoff?: BackoffPolicy;
  /** Workers kept free of ordinary keys, for urgent ones (default 0). */
  urgentReserve?: number;
  clock?: Clock;
  random?: () => number;
  onEvent?: (event: QueueEvent<K>) => void;
}

interface Delayed<K> {
  key: K;
  due: number;
}

const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 5 * 60_000, jitter: 0.2 };

/**
 * A client-go style work queue.
 * - A key is queued at most once (dedupe); re-adding a key that is queued is a no-op.
 * - At most one handler runs per key; a key added while it is being handled runs again afterwards, once.
 * - Failures back off per key (exponential with jitter); success resets the key's failure count.
 * - `addAfter` keeps only the earliest pending time per key, so memory is bounded by the number of keys.
 * - At most `concurrency` handlers run at once.
 */
export class WorkQueue<K> {
  readonly name: string;
  readonly #opts: WorkQueueOptions<K>;
  readonly #clock: Clock;
  readonly #backoff: BackoffPolicy;
  readonly #random: () => number;
  // Ready keys in FIFO order; `#head` avoids O(n) shifts. Entries whose key already ran are skipped when popped.
  #ready: K[] = [];
  #head = 0;
  /** Urgent ready keys: served before #ready, and by workers held back from ordinary keys (`urgentReserve`). */
  #urgent: K[] = [];
  readonly #urgentSet = new Set<K>();
  /** Keys that are in #ready, or that must run again once their in-flight handler ends. */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #enqueuedAt = new Map<K, number>();
  readonly #failures = new Map<K, number>();
  readonly #delayed = new Map<K, number>();
  readonly #heap: Delayed<K>[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #timer: unknown;
  #timerDue = Infinity;
  #running = 0;
  #stopped = false;
  #started = false;

  constructor(opts: WorkQueueOptions<K>) {
    if (!(opts.concurrency >= 1)) throw new RangeError(`queue ${opts.name}: concurrency must be >= 1`);
    this.name = opts.name;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.#random = opts.random ?? Math.random;
  }

  /** Keys ready to run (not counting delayed or in-flight ones). */
  get depth(): number {
    let n = 0;
    for (const k of this.#dirty) if (!this.#processing.has(k)) n++;
    return n;
  }

  /** Keys waiting for a delay (backoff or requeue) to pass. */
  get delayedCount(): number {
    return this.#delayed.size;
  }

  get inFlight(): number {
    return this.#processing.size;
  }

  /** Distinct keys the queue holds in any state; bounded by the number of distinct keys ever added and not done. */
  get size(): number {
    const delayedOnly = [...this.#delayed.keys()].filter((k) => !this.#dirty.has(k) && !this.#processing.has(k)).length;
    return new Set([...this.#dirty, ...this.#processing]).size + delayedOnly;
  }

  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Begins dispatching. Keys added before start wait until then (e.g. until caches have synced). */
  start(): void {
    this.#started = true;
    this.#pump();
  }

  /**
   * Queues a key. `urgent` keys (e.g. a new image to register) go ahead of ordinary ones (e.g. analysis polls), and
   * `urgentReserve` workers are kept for them, so a backlog of ordinary work cannot delay them.
   */
  add(key: K, opts: { urgent?: boolean } = {}): void {
    if (this.#stopped) return;
    this.#delayed.delete(key);
    if (this.#dirty.has(key)) {
      if (opts.urgent && !this.#processing.has(key)) this.#pushUrgent(key);
      return;
    }
    this.#dirty.add(key);
    if (!this.#enqueuedAt.has(key)) this.#enqueuedAt.set(key, this.#clock.now());
    if (this.#processing.has(key)) return; // re-run once the current handler finishes
    if (opts.urgent) this.#pushUrgent(key);
    else this.#ready.push(key);
    this.#pump();
  }

  #pushUrgent(key: K): void {
    if (this.#urgentSet.has(key)) return;
    this.#urgentSet.add(key);
    this.#urgent.push(key);
    this.#pump();
  }

  /** Adds `key` after `delayMs`, unless it is already due sooner. */
  addAfter(key: K, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs <= 0) return this.add(key);
    if (this.#dirty.has(key)) return;
    const due = this.#clock.now() + delayMs;
    const existing = this.#delayed.get(key);
    if (existing !== undefined && existing <= due) return;
    this.#delayed.set(key, due);
    this.#heapPush({ key, due });
    this.#arm();
  }

  /**
   * Runs every key that waits in failure backoff now (its failure count is kept, so a key that fails again backs off
   * further). Used when a dependency that was down answers again: work should not sit out backoffs grown during the
   * outage. Returns how many keys were moved.
   */
  retryFailedNow(): number {
    if (this.#stopped) return 0;
    let n = 0;
    for (const key of [...this.#delayed.keys()]) {
      if ((this.#failures.get(key) ?? 0) === 0) continue;
      this.add(key);
      n++;
    }
    return n;
  }

  /** Drops a key's failure history (e.g. when its object was deleted). */
  forget(key: K): void {
    this.#failures.delete(key);
    this.#delayed.delete(key);
  }

  /**
   * Stops taking work and waits for in-flight handlers, at most `deadlineMs`.
   * Queued keys are dropped: reconciliation is level-based, so a restart re-derives them from the cluster.
   */
  async shutdown(deadlineMs: number): Promise<{ drained: boolean; abandoned: number }> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const abandoned = this.depth + this.#delayed.size;
    if (this.#inflight.size === 0) return { drained: true, abandoned };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), deadlineMs);
    });
    const all = Promise.allSettled([...this.#inflight]).then(() => true as const);
    const drained = await Promise.race([all, deadline]);
    clearTimeout(timer);
    return { drained, abandoned };
  }

  #pump(): void {
    if (!this.#started || this.#stopped) return;
    const ordinaryLimit = Math.max(1, this.#opts.concurrency - (this.#opts.urgentReserve ?? 0));
    while (this.#running < this.#opts.concurrency) {
      let key: K;
      if (this.#urgent.length > 0) {
        key = this.#urgent.shift() as K;
        this.#urgentSet.delete(key);
      } else if (this.#running < ordinaryLimit && this.#head < this.#ready.length) {
        key = this.#ready[this.#head] as K;
        this.#head++;
        if (this.#head > 1024 && this.#head * 2 > this.#ready.length) {
          this.#ready = this.#ready.slice(this.#head);
          this.#head = 0;
        }
      } else {
        break;
      }
      // A key can sit in both lists (queued, then marked urgent): only its first entry runs it.
      if (!this.#dirty.has(key) || this.#processing.has(key)) continue;
      this.#dirty.delete(key);
      this.#processing.add(key);
      this.#running++;
      const p = this.#run(key);
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }
  }

  async #run(key: K): Promise<void> {
    const started = this.#clock.now();
    const waitMs = started - (this.#enqueuedAt.get(key) ?? started);
    this.#enqueuedAt.delete(key);
    let outcome: QueueOutcome = 'success';
    let error: unknown;
    try {
      const result = await this.#opts.handle(key);
      this.#failures.delete(key);
      if (result && result.requeueAfterMs !== undefined) {
        outcome = 'requeue';
        this.#requeueLater(key, result.requeueAfterMs);
      }
    } catch (err) {
      error = err;
      if (err instanceof WaitError) {
        outcome = 'wait';
        this.#failures.delete(key);
        this.#requeueLater(key, err.afterMs);
      } else if (err instanceof StallError) {
        outcome = 'stalled';
        this.#failures.delete(key);
        if (err.recheckAfterMs > 0) this.#requeueLater(key, err.recheckAfterMs);
      } else {
        outcome = 'error';
        const n = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, n);
        this.#requeueLater(key, backoffDelay(this.#backoff, n - 1, this.#random));
      }
    } finally {
      this.#processing.delete(key);
      this.#running--;
      if (this.#dirty.has(key) && !this.#stopped) this.#ready.push(key);
    }
    this.#opts.onEvent?.({
      key,
      outcome,
      durationMs: this.#clock.now() - started,
      waitMs,
      failures: this.#failures.get(key) ?? 0,
      error,
    });
    this.#pump();
  }

  #requeueLater(key: K, delayMs: number): void {
    // A key re-added while it ran is already dirty and runs again now; no delayed copy needed.
    if (this.#dirty.has(key)) return;
    this.addAfter(key, delayMs);
  }

  #arm(): void {
    const top = this.#heapPeek();
    if (!top || this.#stopped) return;
    if (this.#timer !== undefined && this.#timerDue <= top.due) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerDue = top.due;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, top.due - this.#clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerDue = Infinity;
    const now = this.#clock.now();
    for (let top = this.#heapPeek(); top && top.due <= now; top = this.#heapPeek()) {
      this.#heapPop();
      // Stale heap entries (superseded by an earlier addAfter or an add) are skipped.
      if (this.#delayed.get(top.key) === top.due) {
        this.#delayed.delete(top.key);
        this.add(top.key);
      }
    }
    this.#arm();
  }

  #heapPeek(): Delayed<K> | undefined {
    return this.#heap[0];
  }

  #heapPush(item: Delayed<K>): void {
    const h = this.#heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Delayed<K>).due <= item.due) break;
      h[i] = h[parent] as Delayed<K>;
      i = parent;
    }
    h[i] = item;
  }

  #heapPop(): Delayed<K> | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        // The hole at i is (conceptually) filled by `last`; move the smaller child up while it beats `last`.
        let best = last;
        if (l < h.length && (h[l] as Delayed<K>).due < best.due) {
          m = l;
          best = h[l] as Delayed<K>;
        }
        if (r < h.length && (h[r] as Delayed<K>).due < best.due) {
          m = r;
          best = h[r] as Delayed<K>;
        }
        if (m === i) {
          h[i] = last;
          break;
        }
        h[i] = best;
        i = m;
      }
    }
    return top;
  }
}
