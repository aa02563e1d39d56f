import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { systemClock } from './clock.ts';
import { LeaderElector, LeaseConflictError, type LeaseLock, type LeaseRecord, validateLeaderTimings } from './leader.ts';
import { formatMicroTime } from './time.ts';

/** One lease shared by every candidate, with the apiserver's optimistic concurrency. */
class MemoryLease {
  record: LeaseRecord | undefined;
  version = 0;
  writes: LeaseRecord[] = [];
}

/** A candidate's view of the lease; `down` makes its requests fail (a partitioned or frozen replica). */
class CandidateLock implements LeaseLock {
  down = false;
  readonly lease: MemoryLease;
  constructor(lease: MemoryLease) {
    this.lease = lease;
  }
  describe(): string {
    return 'lease test/leader';
  }
  async get(): Promise<{ record: LeaseRecord; version: string } | undefined> {
    if (this.down) throw new Error('connection refused');
    return this.lease.record === undefined ? undefined : { record: { ...this.lease.record }, version: String(this.lease.version) };
  }
  async create(record: LeaseRecord): Promise<void> {
    if (this.down) throw new Error('connection refused');
    if (this.lease.record !== undefined) throw new LeaseConflictError('exists');
    this.write(record);
  }
  async update(record: LeaseRecord, version: string): Promise<void> {
    if (this.down) throw new Error('connection refused');
    if (version !== String(this.lease.version)) throw new LeaseConflictError('conflict');
    this.write(record);
  }
  private write(record: LeaseRecord): void {
    this.lease.record = { ...record };
    this.lease.version++;
    this.lease.writes.push({ ...record });
  }
}

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
const TIMINGS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function candidate(lease: MemoryLease, identity: string) {
  const lock = new CandidateLock(lease);
  const events: string[] = [];
  const elector = new LeaderElector({
    lock,
    identity,
    ...TIMINGS,
    clock: systemClock,
    log: quiet,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
  return { lock, events, elector };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Advances fake time in small steps, checking an invariant after each. */
async function advance(ms: number, check: () => void = () => {}): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    await jest.advanceTimersByTimeAsync(100);
    await flush();
    check();
  }
}

describe('LeaderElector', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: Date.parse('2026-11-30T10:00:00Z') });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('when no lease exists, then the first candidate creates it and leads with zero transitions', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    a.elector.start();
    await flush();
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['started']);
    expect(lease.record).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0, renewTime: '2026-11-30T10:00:00.000000Z' });
    await a.elector.stop();
  });

  it('when the leader holds the lease, then it renews every retry period and the other candidate stays a follower', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    const b = candidate(lease, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(60_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leader()).toBe('a');
    // ~30 renewals in 60 s, all by a.
    expect(lease.writes.filter((w) => w.holderIdentity === 'a').length).toBeGreaterThanOrEqual(28);
    expect(lease.writes.every((w) => w.holderIdentity === 'a')).toBe(true);
    await a.elector.stop();
    await b.elector.stop();
  });

  it('when the leader stops cleanly, then it releases the lease and the follower takes over within one retry period', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    const b = candidate(lease, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(5_000);
    await a.elector.stop();
    expect(lease.record?.holderIdentity).toBe('');
    expect(a.events).toEqual(['started']);
    let waited = 0;
    while (!b.elector.isLeader() && waited < 10_000) {
      await advance(100);
      waited += 100;
    }
    expect(b.elector.isLeader()).toBe(true);
    expect(waited).toBeLessThanOrEqual(2_400);
    expect(lease.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.elector.stop();
  });

  it('when the leader is cut off, then it stops at the renew deadline, before the follower may take the lease, and never both lead', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    const b = candidate(lease, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(4_000);
    const cutAt = Date.now();
    a.lock.down = true;
    let aStoppedAt = 0;
    let bStartedAt = 0;
    await advance(30_000, () => {
      expect(a.elector.isLeader() && b.elector.isLeader()).toBe(false);
      if (!aStoppedAt && !a.elector.isLeader()) aStoppedAt = Date.now();
      if (!bStartedAt && b.elector.isLeader()) bStartedAt = Date.now();
    });
    expect(a.events).toEqual(['started', 'stopped']);
    expect(aStoppedAt - cutAt).toBeLessThanOrEqual(12_100);
    expect(bStartedAt).toBeGreaterThan(aStoppedAt);
    // The follower waits a full lease duration after it last saw the lease change (plus at most one jittered retry).
    expect(bStartedAt - cutAt).toBeGreaterThanOrEqual(13_000);
    expect(bStartedAt - cutAt).toBeLessThanOrEqual(15_000 + 2_000 + 2_500);
    expect(lease.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.elector.stop();
  });

  it('when one renewal fails, then the leader keeps the lease (only the renew deadline ends leadership)', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    a.elector.start();
    await flush();
    a.lock.down = true;
    await advance(5_000);
    a.lock.down = false;
    await advance(10_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['started']);
    await a.elector.stop();
  });

  it("when the holder's timestamps come from a skewed clock, then expiry is judged on the candidate's own clock", async () => {
    const lease = new MemoryLease();
    // Written by a holder whose clock is an hour behind: by its timestamps the lease expired long ago.
    lease.record = { holderIdentity: 'skewed', leaseDurationSeconds: 15, renewTime: formatMicroTime(new Date(Date.now() - 3_600_000)), leaseTransitions: 3 };
    const b = candidate(lease, 'b');
    b.elector.start();
    await advance(10_000);
    expect(b.elector.isLeader()).toBe(false);
    // ... but it has not changed for a lease duration on b's clock: b takes over.
    await advance(8_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(lease.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 4 });
    await b.elector.stop();
  });

  it('when two candidates race for a missing lease, then exactly one wins', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    const b = candidate(lease, 'b');
    a.elector.start();
    b.elector.start();
    await advance(10_000, () => expect(a.elector.isLeader() && b.elector.isLeader()).toBe(false));
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    await a.elector.stop();
    await b.elector.stop();
  });

  it('when the timings break client-go’s constraints, then they are rejected with the reason', () => {
    expect(validateLeaderTimings(TIMINGS)).toBeUndefined();
    expect(validateLeaderTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toMatch(/lease duration must be greater/);
    expect(validateLeaderTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toMatch(/renew deadline must be greater than 1.2/);
    expect(() => candidate(new MemoryLease(), 'x').elector).not.toThrow();
  });
});
