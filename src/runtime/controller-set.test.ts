import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../telemetry/logger.ts';
import { ControllerSet, type SetMember, type SetQueue } from './controller-set.ts';

function queue(name: string, drained = true): SetQueue & { shutdowns: number[]; retried: number } {
  return {
    name,
    depth: 0,
    delayedCount: 0,
    shutdowns: [],
    retried: 0,
    async shutdown(ms) {
      this.shutdowns.push(ms);
      return { drained };
    },
    retryFailedNow() {
      return ++this.retried;
    },
  };
}

function member(name: string, log: string[], extra: Partial<SetMember> = {}): SetMember {
  return { name, start: () => void log.push(`start ${name}`), stop: () => void log.push(`stop ${name}`), ...extra };
}

const silent = createLogger({ level: 'silent', pretty: false });

describe('ControllerSet', () => {
  it('when started, then enabled members start in order, once', () => {
    const log: string[] = [];
    const set = new ControllerSet([member('image', log), member('inventory', log, { enabled: false }), member('binding', log)], silent);
    set.start();
    set.start();
    expect(log).toEqual(['start image', 'start binding']);
    expect(set.working).toBe(true);
  });

  it('when a member must wait, then it starts after its precondition, and not at all if the set stopped meanwhile', async () => {
    const log: string[] = [];
    let release!: () => void;
    const seeded = new Promise<void>((r) => (release = r));
    const set = new ControllerSet([member('image', log), member('binding', log, { after: () => seeded })], silent);
    set.start();
    expect(log).toEqual(['start image']);
    release();
    await seeded;
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['start image', 'start binding']);

    const log2: string[] = [];
    let release2!: () => void;
    const set2 = new ControllerSet([member('binding', log2, { after: () => new Promise<void>((r) => (release2 = r)) })], silent);
    set2.start();
    await set2.stop(0);
    release2();
    await new Promise((r) => setImmediate(r));
    expect(log2).toEqual(['stop binding']);
  });

  it('when stopped, then every member stops, every queue drains with the deadline (also of members never started), and it never starts again', async () => {
    const log: string[] = [];
    const a = queue('image');
    const b = queue('vulnerability', false);
    const set = new ControllerSet([member('image', log, { queue: a }), member('vulnerability', log, { enabled: false, queue: b })], silent);
    set.start();
    expect(await set.stop(5000)).toEqual({ image: true, vulnerability: false });
    expect([a.shutdowns, b.shutdowns]).toEqual([[5000], [5000]]);
    expect(log).toEqual(['start image', 'stop image', 'stop vulnerability']);
    set.start();
    expect(set.working).toBe(false);
    expect(log).toHaveLength(3);
  });

  it('when a dependency is back, then every queue retries its backed-off work', () => {
    const qs = [queue('image'), queue('binding')];
    const set = new ControllerSet(
      qs.map((q) => ({ name: q.name, start: () => undefined, queue: q })),
      silent,
    );
    expect(set.retryFailedNow()).toBe(2);
    expect(set.queues.map((q) => q.name)).toEqual(['image', 'binding']);
  });

  it('when leadership is gained and then lost, then the set starts, then stops at once without draining and reports the loss', async () => {
    const log: string[] = [];
    const q = queue('image');
    const set = new ControllerSet([member('image', log, { queue: q })], silent);
    let lost!: () => void;
    const gone = new Promise<void>((r) => (lost = r));
    const callbacks = set.leadership(() => lost(), { lease: 'ns/operator' });
    expect(set.working).toBe(false);
    callbacks.onStartedLeading();
    expect([set.working, log]).toEqual([true, ['start image']]);
    callbacks.onStoppedLeading();
    await gone;
    expect([set.working, log, q.shutdowns]).toEqual([false, ['start image', 'stop image'], [0]]);
    callbacks.onStartedLeading(); // a stopped set never starts again
    expect(set.working).toBe(false);
  });
});
