import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { backoffDelay } from './backoff.ts';
import { Semaphore, TokenBucket } from './limits.ts';

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
