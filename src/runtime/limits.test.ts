import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { backoffDelay } from './backoff.ts';
import { ByteAllowance, ByteBudget, ByteBudgetError, Semaphore, TokenBucket } from './limits.ts';
import type { Clock } from './clock.ts';

describe('Semaphore', () => {
  it('when more callers than the limit arrive, then at most `limit` run and all complete in order', async () => {
    const s = new Semaphore(2);
    let active = 0;
    let max = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        s.run(async () => {
          active++;
          max = Math.max(max, active);
          await new Promise((r) => setImmediate(r));
          order.push(i);
          active--;
        }),
      ),
    );
    expect(max).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(s.active).toBe(0);
  });

  it('when high-priority callers arrive behind waiting normal ones, then they get the next free slots', async () => {
    const s = new Semaphore(1);
    const order: string[] = [];
    const job = (name: string) => async () => {
      order.push(name);
      await new Promise((r) => setImmediate(r));
    };
    await Promise.all([s.run(job('n1')), s.run(job('n2')), s.run(job('n3')), s.run(job('h1'), 'high'), s.run(job('h2'), 'high')]);
    expect(order).toEqual(['n1', 'h1', 'h2', 'n2', 'n3']);
  });
});

describe('TokenBucket', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('when the burst is used up, then further takes are paced at the sustained rate', async () => {
    const clock = { now: () => Date.now(), setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: () => undefined };
    const b = new TokenBucket(10, 5, clock);
    const times: number[] = [];
    const all = Promise.all(Array.from({ length: 15 }, () => b.take().then(() => times.push(Date.now()))));
    await jest.advanceTimersByTimeAsync(2000);
    await all;
    expect(times.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(times[14]).toBeGreaterThanOrEqual(1000);
    expect(times[14]).toBeLessThanOrEqual(1010);
  });

  it('when the bucket is empty, then a high-priority take is served before every waiting normal one', async () => {
    const clock = { now: () => Date.now(), setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: () => undefined };
    const b = new TokenBucket(10, 1, clock);
    const order: string[] = [];
    const all = Promise.all([b.take().then(() => order.push('n0')), b.take().then(() => order.push('n1')), b.take().then(() => order.push('n2')), b.take('high').then(() => order.push('h1'))]);
    await jest.advanceTimersByTimeAsync(1000);
    await all;
    expect(order).toEqual(['n0', 'h1', 'n1', 'n2']);
  });

  it('when part of the burst is reserved, then normal callers leave it for a sudden batch of high ones, and still get the sustained rate', async () => {
    const clock = { now: () => Date.now(), setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>) };
    const b = new TokenBucket(10, 8, clock, { highReserve: 4 });
    const normal: number[] = [];
    const high: number[] = [];
    const normals = Promise.all(Array.from({ length: 14 }, () => b.take().then(() => normal.push(Date.now()))));
    await jest.advanceTimersByTimeAsync(0);
    expect(normal).toEqual([0, 0, 0, 0]); // 8 tokens, 4 kept back
    const highs = Promise.all(Array.from({ length: 4 }, () => b.take('high').then(() => high.push(Date.now()))));
    await jest.advanceTimersByTimeAsync(0);
    expect(high).toEqual([0, 0, 0, 0]); // the batch finds the reserve
    await jest.advanceTimersByTimeAsync(3000);
    await Promise.all([normals, highs]);
    // The other 10 normal callers: the reserve refills first (0.4 s at 10/s), then one per 100 ms.
    expect(normal).toHaveLength(14);
    expect(normal[4]).toBeGreaterThanOrEqual(500);
    expect(normal[4]).toBeLessThanOrEqual(510);
    expect(normal[13]! - normal[4]!).toBeGreaterThanOrEqual(890);
    expect(normal[13]! - normal[4]!).toBeLessThanOrEqual(910);
  });

  it('when a high caller arrives while normal ones wait for the reserve to refill, then it is served as soon as one token is there', async () => {
    const clock = { now: () => Date.now(), setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>) };
    const b = new TokenBucket(10, 4, clock, { highReserve: 3 });
    const order: Array<[string, number]> = [];
    void b.take().then(() => order.push(['n0', Date.now()]));
    void b.take().then(() => order.push(['n1', Date.now()])); // needs 4 tokens: waits 100 ms
    await jest.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 3; i++) void b.take('high').then(() => order.push([`h${i}`, Date.now()]));
    void b.take('high').then(() => order.push(['h3', Date.now()])); // no token left: 100 ms
    await jest.advanceTimersByTimeAsync(1000);
    expect(order.slice(0, 5)).toEqual([
      ['n0', 0],
      ['h0', 0],
      ['h1', 0],
      ['h2', 0],
      ['h3', 100],
    ]);
    expect(order[5]?.[0]).toBe('n1');
  });
});

describe('ByteBudget', () => {
  const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('when takes fit, then they are granted at once; one that does not fit waits until bytes are given back, and the total never exceeds the limit', async () => {
    const b = new ByteBudget(100);
    const a = b.lease();
    const c = b.lease();
    await a.take(60);
    let granted = false;
    const pending = c.take(50).then(() => (granted = true));
    await settled();
    expect({ granted, used: b.used, waiting: b.waiting }).toEqual({ granted: false, used: 60, waiting: 1 });
    a.release();
    await pending;
    expect({ granted, used: b.used, peak: b.peak, aHeld: a.held, cHeld: c.held }).toEqual({ granted: true, used: 50, peak: 60, aHeld: 0, cHeld: 50 });
    c.release();
    c.release(); // twice is harmless
    expect(b.used).toBe(0);
  });

  it('when one lease would hold more than the whole budget, then the take fails at once with too-large and nothing is held', async () => {
    const b = new ByteBudget(100);
    const a = b.lease();
    await a.take(80);
    const err = await a.take(30).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ByteBudgetError);
    expect((err as ByteBudgetError).reason).toBe('too-large');
    expect((err as Error).message).toBe('110 bytes exceed the whole budget of 100 bytes');
    expect(b.used).toBe(80);
  });

  it('when waiting holders and newcomers queue, then the holders grow first, and newcomers follow in arrival order', async () => {
    const b = new ByteBudget(100);
    const holder = b.lease();
    const blocker = b.lease();
    await holder.take(10);
    await blocker.take(90);
    const order: string[] = [];
    const n1 = b
      .lease()
      .take(20)
      .then(() => order.push('new1'));
    const n2 = b
      .lease()
      .take(20)
      .then(() => order.push('new2'));
    const grow = holder.take(20).then(() => order.push('holder'));
    await settled();
    expect(order).toEqual([]);
    blocker.release();
    await Promise.all([n1, n2, grow]);
    expect(order).toEqual(['holder', 'new1', 'new2']);
    expect(b.peak).toBeLessThanOrEqual(100);
  });

  it('when every holder waits for more and none can be served, then the holder holding least (the youngest of equals) is refused (contention) and its bytes freed, so the others finish', async () => {
    const b = new ByteBudget(100);
    const older = b.lease();
    const younger = b.lease();
    await older.take(50);
    await younger.take(50);
    const olderGrows = older.take(30);
    const youngerGrows = younger.take(30).catch((e: unknown) => e);
    await olderGrows;
    const err = await youngerGrows;
    expect((err as ByteBudgetError).reason).toBe('contention');
    expect({ older: older.held, younger: younger.held, used: b.used, peak: b.peak }).toEqual({ older: 80, younger: 0, used: 80, peak: 100 });

    // Unequal shares: the one that read least loses least.
    const c = new ByteBudget(100);
    const big = c.lease();
    const small = c.lease();
    await small.take(30);
    await big.take(70);
    const smallGrows = small.take(10).catch((e: unknown) => e);
    const bigGrows = big.take(10);
    expect(((await smallGrows) as ByteBudgetError).reason).toBe('contention');
    await bigGrows;
    expect({ big: big.held, small: small.held }).toEqual({ big: 80, small: 0 });
  });

  it('when a holder still reads (not waiting), then a blocked take just waits for it', async () => {
    const b = new ByteBudget(100);
    const reading = b.lease();
    const waiting = b.lease();
    await reading.take(60);
    await waiting.take(30);
    let done = false;
    const p = waiting.take(30).then(() => (done = true));
    await settled();
    expect(done).toBe(false);
    reading.release();
    await p;
    expect(waiting.held).toBe(60);
  });

  it('when the signal aborts a waiting take, then it rejects with the reason, holds nothing more, and the next waiter is served', async () => {
    const b = new ByteBudget(100);
    const a = b.lease();
    await a.take(70);
    const ac = new AbortController();
    const big = b.lease();
    const bigTake = big.take(60, ac.signal).catch((e: unknown) => e);
    const small = b.lease().take(20);
    await settled();
    ac.abort(new Error('deadline'));
    expect(((await bigTake) as Error).message).toBe('deadline');
    await small;
    expect({ used: b.used, big: big.held }).toEqual({ used: 90, big: 0 });
  });
});

describe('backoffDelay', () => {
  it('when jitter is off, then delays double up to the cap', () => {
    const p = { baseMs: 1000, maxMs: 5000, jitter: 0 };
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(p, a))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
  it('when jitter is on, then delays stay within [d*(1-j), d]', () => {
    const p = { baseMs: 1000, maxMs: 60_000, jitter: 0.5 };
    for (let a = 0; a < 10; a++) {
      const d = Math.min(60_000, 1000 * 2 ** a);
      const v = backoffDelay(p, a);
      expect(v).toBeGreaterThanOrEqual(d * 0.5);
      expect(v).toBeLessThanOrEqual(d);
    }
  });
});

describe('ByteAllowance', () => {
  function manualClock(): Clock & { advance(ms: number): void } {
    let t = 1_000_000;
    return { now: () => t, setTimeout: () => undefined, clearTimeout: () => undefined, advance: (ms) => void (t += ms) };
  }

  it('lets sends go while it holds bytes, then asks the caller to wait until the overdraft is earned back', () => {
    const clock = manualClock();
    const a = new ByteAllowance(1000, 2, clock); // 1,000 B/s, 2 s of burst
    expect(a.waitMs()).toBe(0);
    a.spend(1500);
    expect(a.waitMs()).toBe(0); // 500 left
    a.spend(1500); // 1,000 in debt
    expect(a.waitMs()).toBe(1000);
    clock.advance(600);
    expect(a.waitMs()).toBe(400);
    clock.advance(400);
    expect(a.waitMs()).toBe(0);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const clock = manualClock();
    const a = new ByteAllowance(1000, 2, clock);
    clock.advance(3_600_000);
    a.spend(2000);
    a.spend(1);
    expect(a.waitMs()).toBe(1);
  });

  it('bounds the bytes over a window by rate × (window + burst) plus one send, whatever the send sizes', () => {
    const clock = manualClock();
    const a = new ByteAllowance(1000, 2, clock);
    let spent = 0;
    const sizes = [300, 5000, 10, 700, 2500, 1];
    for (let i = 0; clock.now() < 1_000_000 + 60_000; i++) {
      const wait = a.waitMs();
      if (wait > 0) clock.advance(wait);
      else {
        const b = sizes[i % sizes.length]!;
        a.spend(b);
        spent += b;
        clock.advance(10);
      }
    }
    expect(spent).toBeLessThanOrEqual(1000 * (60 + 2) + 5000);
    expect(spent).toBeGreaterThan(1000 * 55);
  });

  it('a lower rate applies at once and caps what is held at the new burst', () => {
    const clock = manualClock();
    const a = new ByteAllowance(1000, 2, clock);
    a.setRate(100);
    expect(a.ratePerSecond).toBe(100);
    a.spend(300); // held 200 after the cap
    expect(a.waitMs()).toBe(1000);
  });
});
