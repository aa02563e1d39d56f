// Leader election on a lease, with client-go's semantics (k8s.io/client-go/tools/leaderelection):
// - a candidate takes the lease when it is free, released (empty holder) or not renewed for leaseDuration as
//   observed on *its own* clock (it never compares its clock with the holder's timestamps, so clock skew between
//   nodes cannot make two replicas lead);
// - the leader renews every retryPeriod and gives up when it could not renew for renewDeadline, which is shorter
//   than leaseDuration: the old leader stops before anyone else may take over, so two replicas never work at once;
// - on a clean shutdown the leader releases the lease (empty holder, 1 s duration) so a standby takes over at once.
import type { Clock } from './clock.ts';
import { errorMessage } from './errors.ts';
import { formatMicroTime } from './time.ts';

/** The lease fields leader election reads and writes (coordination.k8s.io/v1 LeaseSpec). */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** RFC 3339 with microseconds (MicroTime). */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

/** A lease as read, with the version that an update must match (optimistic concurrency). */
export interface ObservedLease {
  record: LeaseRecord;
  version: string;
}

/** Where the lease lives. Implementations throw {@link LeaseConflictError} when a write loses a race. */
export interface LeaseLock {
  /** undefined when the lease does not exist yet. */
  get(timeoutMs: number): Promise<ObservedLease | undefined>;
  create(record: LeaseRecord, timeoutMs: number): Promise<void>;
  update(record: LeaseRecord, version: string, timeoutMs: number): Promise<void>;
  /** e.g. "lease kube-system/anchore-operator", for log lines. */
  describe(): string;
}

export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
}

interface LeaderElectorOptions {
  lock: LeaseLock;
  /** Unique per process (pod name + random suffix): a restarted pod must not believe it still holds the lease. */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void; debug(o: object, msg: string): void };
  onStartedLeading(): void;
  /** Leadership lost (not called after {@link LeaderElector.stop}). The caller must stop all work at once. */
  onStoppedLeading(): void;
  /** The holder changed (including to this replica); '' when the lease was released. */
  onNewLeader?(identity: string): void;
}

/** client-go's JitterFactor: a candidate waits retryPeriod × [1, 1.2) between attempts. */
const JITTER_FACTOR = 1.2;

/** Checks client-go's constraints on the timings; returns the problem or undefined. */
export function validateLeaderTimings(t: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number }): string | undefined {
  if (t.retryPeriodMs <= 0) return 'the retry period must be positive';
  if (t.leaseDurationMs <= t.renewDeadlineMs) return 'the lease duration must be greater than the renew deadline';
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) return `the renew deadline must be greater than ${JITTER_FACTOR} × the retry period`;
  return undefined;
}

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  #leading = false;
  #stopped = false;
  #leader = '';
  /** The last record read and when (our clock) it was first seen unchanged. */
  #observed: { key: string; record: LeaseRecord; version: string; at: number } | undefined;
  #wake: (() => void) | undefined;
  #timer: unknown;
  #done: Promise<void> | undefined;

  constructor(opts: LeaderElectorOptions) {
    const problem = validateLeaderTimings(opts);
    if (problem) throw new RangeError(`leader election: ${problem}`);
    this.#o = opts;
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** The identity of the holder as last observed ('' when none). */
  leader(): string {
    return this.#leader;
  }

  /** Starts campaigning in the background; resolves immediately. */
  start(): void {
    this.#done ??= this.#run();
  }

  /** Stops campaigning; a leader releases the lease so a standby takes over without waiting for expiry. */
  async stop(): Promise<void> {
    if (this.#stopped) return this.#done;
    this.#stopped = true;
    this.#interrupt();
    await this.#done;
    if (this.#leading) {
      this.#leading = false;
      await this.#release();
    }
  }

  async #run(): Promise<void> {
    // Campaign until we lead (or are stopped).
    while (!this.#stopped) {
      if (await this.#tryAcquireOrRenew()) break;
      await this.#sleep(this.#o.retryPeriodMs * (1 + Math.random() * (JITTER_FACTOR - 1)));
    }
    if (this.#stopped) return;
    this.#leading = true;
    this.#o.log.info({ lease: this.#o.lock.describe(), identity: this.#o.identity }, 'became leader');
    this.#o.onStartedLeading();
    // Renew every retryPeriod; give up when no renewal succeeded within renewDeadline.
    let lastRenew = this.#o.clock.now();
    while (!this.#stopped) {
      await this.#sleep(this.#o.retryPeriodMs);
      if (this.#stopped) return;
      const ok = await this.#tryAcquireOrRenew(lastRenew + this.#o.renewDeadlineMs);
      const now = this.#o.clock.now();
      if (ok) {
        lastRenew = now;
        continue;
      }
      if (now - lastRenew >= this.#o.renewDeadlineMs || this.#heldByOther()) {
        if (this.#stopped) return;
        this.#leading = false;
        this.#o.log.warn(
          { lease: this.#o.lock.describe(), identity: this.#o.identity, holder: this.#leader, sinceLastRenewMs: now - lastRenew },
          'leader election lost: could not renew the lease within the renew deadline',
        );
        this.#o.onStoppedLeading();
        return;
      }
    }
  }

  /** True when the last read showed another live holder (someone took the lease from us). */
  #heldByOther(): boolean {
    const h = this.#observed?.record.holderIdentity ?? '';
    return h !== '' && h !== this.#o.identity;
  }

  /** One attempt; never throws. `deadline` bounds the requests (renewals must not outlive the renew deadline). */
  async #tryAcquireOrRenew(deadline?: number): Promise<boolean> {
    const o = this.#o;
    const timeout = (): number => Math.max(100, Math.min(o.renewDeadlineMs, (deadline ?? Infinity) - o.clock.now()));
    const now = o.clock.now();
    const mine = (prev: LeaseRecord | undefined): LeaseRecord => ({
      holderIdentity: o.identity,
      leaseDurationSeconds: Math.ceil(o.leaseDurationMs / 1000),
      acquireTime: prev !== undefined && prev.holderIdentity === o.identity && prev.acquireTime ? prev.acquireTime : formatMicroTime(new Date(now)),
      renewTime: formatMicroTime(new Date(now)),
      leaseTransitions: prev === undefined ? 0 : prev.holderIdentity === o.identity ? prev.leaseTransitions : prev.leaseTransitions + 1,
    });
    try {
      const current = await o.lock.get(timeout());
      if (current === undefined) {
        const rec = mine(undefined);
        await o.lock.create(rec, timeout());
        this.#observe(rec, '', o.clock.now());
        return true;
      }
      this.#observe(current.record, current.version, now);
      const holder = current.record.holderIdentity;
      if (holder !== '' && holder !== o.identity) {
        const expires = this.#observed!.at + current.record.leaseDurationSeconds * 1000;
        if (expires > now) return false;
        o.log.info({ lease: o.lock.describe(), previous: holder }, 'lease expired; taking it over');
      }
      const rec = mine(current.record);
      await o.lock.update(rec, current.version, timeout());
      this.#observe(rec, '', o.clock.now());
      return true;
    } catch (err) {
      const level = err instanceof LeaseConflictError ? 'debug' : 'warn';
      o.log[level]({ lease: o.lock.describe(), err: errorMessage(err) }, this.#leading ? 'lease renewal failed' : 'lease acquisition failed');
      return false;
    }
  }

  #observe(record: LeaseRecord, version: string, at: number): void {
    const key = `${record.holderIdentity}|${record.renewTime ?? ''}|${record.leaseTransitions}`;
    if (this.#observed?.key !== key) this.#observed = { key, record, version, at };
    if (record.holderIdentity !== this.#leader) {
      this.#leader = record.holderIdentity;
      this.#o.log.info({ lease: this.#o.lock.describe(), leader: record.holderIdentity || '(none)' }, 'new leader observed');
      this.#o.onNewLeader?.(record.holderIdentity);
    }
  }

  async #release(): Promise<void> {
    const o = this.#o;
    try {
      const current = await o.lock.get(o.renewDeadlineMs);
      if (current === undefined || current.record.holderIdentity !== o.identity) return;
      const now = formatMicroTime(new Date(o.clock.now()));
      await o.lock.update({ holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: current.record.leaseTransitions }, current.version, o.renewDeadlineMs);
      o.log.info({ lease: o.lock.describe() }, 'released the lease');
    } catch (err) {
      o.log.warn({ lease: o.lock.describe(), err: errorMessage(err) }, 'could not release the lease; a standby takes over when it expires');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = this.#o.clock.setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
    });
  }

  #interrupt(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
