import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { StallError, WaitError } from './errors.ts';
import { WorkQueue, type QueueEvent } from './workqueue.ts';

/** Lets pending promise callbacks run (fake timers do not advance microtasks). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('when a key is added many times before it runs, then it is handled once', async () => {
    const seen: string[] = [];
    const q = new WorkQueue<string>({ name: 't', concurrency: 1, handle: async (k) => void seen.push(k) });
    for (let i = 0; i < 5; i++) q.add('a');
    q.add('b');
    q.start();
    await flush();
    expect(seen).toEqual(['a', 'b']);
  });

  it('when a key is re-added while it is being handled, then it runs again exactly once afterwards and never concurrently', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const gates = [deferred(), deferred()];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 4,
      handle: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await gates[runs++]?.promise;
        active--;
      },
    });
    q.start();
    q.add('a');
    await flush();
    q.add('a');
    q.add('a');
    await flush();
    expect(runs).toBe(1);
    gates[0]?.resolve();
    await flush();
    expect(runs).toBe(2);
    gates[1]?.resolve();
    await flush();
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
  });

  it('when handlers are slow, then no more than `concurrency` run at once', async () => {
    let active = 0;
    let maxActive = 0;
    const gate = deferred();
    const q = new WorkQueue<number>({
      name: 't',
      concurrency: 3,
      handle: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await gate.promise;
        active--;
      },
    });
    q.start();
    for (let i = 0; i < 10; i++) q.add(i);
    await flush();
    expect(active).toBe(3);
    expect(q.depth).toBe(7);
    gate.resolve();
    await flush();
    expect(maxActive).toBe(3);
    expect(q.depth).toBe(0);
  });

  it('when a handler keeps failing, then retries back off exponentially per key and success resets the count', async () => {
    const times: number[] = [];
    const failUntil = 4;
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 10_000, jitter: 0 },
      handle: async () => {
        times.push(Date.now());
        if (times.length < failUntil) throw new Error('boom');
      },
    });
    q.start();
    q.add('a');
    await flush();
    for (let i = 0; i < 40; i++) {
      await jest.advanceTimersByTimeAsync(50);
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([100, 200, 400]);
    expect(times).toHaveLength(4);
    expect(q.failures('a')).toBe(0);
  });

  it('when a handler throws WaitError, then the key is retried after the given delay without counting a failure', async () => {
    const times: number[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 10_000, jitter: 0 },
      handle: async () => {
        times.push(Date.now());
        if (times.length < 3) throw new WaitError('Pending', 'analysis pending', 5000);
      },
    });
    q.start();
    q.add('a');
    await jest.advanceTimersByTimeAsync(12_000);
    expect(times.map((t) => t - 1_000_000)).toEqual([0, 5000, 10000]);
    expect(q.failures('a')).toBe(0);
  });

  it('when a handler throws StallError, then the key is not retried', async () => {
    let runs = 0;
    const events: QueueEvent<string>[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 1,
      handle: async () => {
        runs++;
        throw new StallError('PolicyNotFound', 'no such policy');
      },
      onEvent: (e) => events.push(e),
    });
    q.start();
    q.add('a');
    await jest.advanceTimersByTimeAsync(600_000);
    expect(runs).toBe(1);
    expect(events.map((e) => e.outcome)).toEqual(['stalled']);
  });

  it('when a handler throws StallError with a recheck, then the key is looked at again only that slowly, without counting a failure', async () => {
    const times: number[] = [];
    const events: QueueEvent<string>[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 1,
      backoff: { baseMs: 100, maxMs: 10_000, jitter: 0 },
      handle: async () => {
        times.push(Date.now());
        if (times.length < 3) throw new StallError('PolicyNotFound', 'no such policy in Anchore', 15_000);
      },
      onEvent: (e) => events.push(e),
    });
    q.start();
    q.add('a');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(times.map((t) => t - 1_000_000)).toEqual([0, 15_000, 30_000]);
    expect(events.map((e) => e.outcome)).toEqual(['stalled', 'stalled', 'success']);
    expect(q.failures('a')).toBe(0);
  });

  it('when addAfter is called repeatedly, then only the earliest time is kept and the key runs once', async () => {
    const times: number[] = [];
    const q = new WorkQueue<string>({ name: 't', concurrency: 1, handle: async () => void times.push(Date.now()) });
    q.start();
    q.addAfter('a', 3000);
    q.addAfter('a', 1000);
    q.addAfter('a', 2000);
    expect(q.delayedCount).toBe(1);
    await jest.advanceTimersByTimeAsync(5000);
    expect(times.map((t) => t - 1_000_000)).toEqual([1000]);
  });

  it('when a handler asks to be requeued, then it runs again after that interval (periodic re-check)', async () => {
    const times: number[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 1,
      handle: async () => {
        times.push(Date.now());
        return { requeueAfterMs: 60_000 };
      },
    });
    q.start();
    q.add('a');
    await jest.advanceTimersByTimeAsync(150_000);
    expect(times.map((t) => t - 1_000_000)).toEqual([0, 60_000, 120_000]);
  });

  it('when keys are added before start, then nothing runs until start', async () => {
    const seen: string[] = [];
    const q = new WorkQueue<string>({ name: 't', concurrency: 2, handle: async (k) => void seen.push(k) });
    q.add('a');
    await flush();
    expect(seen).toEqual([]);
    q.start();
    await flush();
    expect(seen).toEqual(['a']);
  });

  it('when many delayed keys are due at different times, then they run in due order', async () => {
    const seen: number[] = [];
    const q = new WorkQueue<number>({ name: 't', concurrency: 1, handle: async (k) => void seen.push(k) });
    q.start();
    const order = [50, 10, 40, 20, 30, 5, 45, 15, 35, 25];
    for (const d of order) q.addAfter(d, d * 10);
    await jest.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual([...order].sort((a, b) => a - b));
  });

  it('when shut down with work in flight, then it waits for the in-flight handler and drops the queued rest', async () => {
    const gate = deferred();
    const seen: number[] = [];
    const q = new WorkQueue<number>({
      name: 't',
      concurrency: 1,
      handle: async (k) => {
        seen.push(k);
        await gate.promise;
      },
    });
    q.start();
    q.add(1);
    q.add(2);
    await flush();
    const done = q.shutdown(5000);
    gate.resolve();
    await expect(done).resolves.toEqual({ drained: true, abandoned: 1 });
    q.add(3);
    await flush();
    expect(seen).toEqual([1]);
  });

  it('when an in-flight handler outlives the shutdown deadline, then shutdown reports it was not drained', async () => {
    const q = new WorkQueue<number>({ name: 't', concurrency: 1, handle: () => new Promise<void>(() => undefined) });
    q.start();
    q.add(1);
    await flush();
    const done = q.shutdown(1000);
    await jest.advanceTimersByTimeAsync(1000);
    await expect(done).resolves.toEqual({ drained: false, abandoned: 0 });
  });

  it('when thousands of keys are added repeatedly, then the queue holds one entry per key', async () => {
    const q = new WorkQueue<number>({ name: 't', concurrency: 1, handle: async () => undefined });
    for (let round = 0; round < 5; round++) for (let i = 0; i < 2000; i++) q.add(i);
    expect(q.depth).toBe(2000);
    expect(q.size).toBe(2000);
  });

  it('when a dependency recovers, then keys waiting in failure backoff run at once while plain delayed keys keep their time', async () => {
    let fail = true;
    const seen: string[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 4,
      backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 },
      handle: async (k) => {
        seen.push(k);
        if (k !== 'later' && fail) throw new Error('down');
      },
    });
    q.start();
    q.add('a');
    q.add('b');
    q.addAfter('later', 30_000);
    await flush();
    expect(seen).toEqual(['a', 'b']);
    expect(q.delayedCount).toBe(3);
    fail = false;
    expect(q.retryFailedNow()).toBe(2);
    await flush();
    expect(seen).toEqual(['a', 'b', 'a', 'b']);
    expect(q.delayedCount).toBe(1);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(seen).toEqual(['a', 'b', 'a', 'b', 'later']);
    await q.shutdown(0);
  });

  it('when urgent keys arrive behind a backlog, then they run next, on workers ordinary keys may not take', async () => {
    const gates = new Map<string, { promise: Promise<void>; resolve: () => void }>();
    const started: string[] = [];
    const q = new WorkQueue<string>({
      name: 't',
      concurrency: 3,
      urgentReserve: 1,
      handle: async (k) => {
        started.push(k);
        const g = deferred();
        gates.set(k, g);
        await g.promise;
      },
    });
    q.start();
    for (const k of ['o1', 'o2', 'o3', 'o4']) q.add(k);
    await flush();
    // Only two ordinary keys may run: the third worker is kept for urgent work.
    expect(started).toEqual(['o1', 'o2']);
    q.add('u1', { urgent: true });
    q.add('o4', { urgent: true }); // already queued as ordinary: promoted, runs once
    await flush();
    expect(started).toEqual(['o1', 'o2', 'u1']);
    gates.get('o1')!.resolve();
    await flush();
    expect(started).toEqual(['o1', 'o2', 'u1', 'o4']);
    gates.get('u1')!.resolve();
    gates.get('o2')!.resolve();
    await flush();
    expect(started).toEqual(['o1', 'o2', 'u1', 'o4', 'o3']);
    for (const g of gates.values()) g.resolve();
    await flush();
    expect(started.filter((k) => k === 'o4')).toHaveLength(1);
    expect(q.depth).toBe(0);
    await q.shutdown(0);
  });
});
