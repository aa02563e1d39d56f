import { describe, expect, it } from '@jest/globals';
import { type ChurnPod, analyseChurn } from './churn.ts';
import type { RunningSeen } from './kube.ts';
import { LoopTicker } from './lateness.ts';
import type { ReportSeen } from './reports.ts';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const seen = (at: number, c: string, viaRelist = false): RunningSeen => ({ at, imageIDs: [`r/x@${d(c)}`], ...(viaRelist ? { viaRelist } : {}) });
const rep = (at: number, ns: string[], digests: string[]): ReportSeen => ({ at, cluster: 'ours', containers: digests.length, digests: new Set(digests), namespaces: new Set(ns) });
const pod = (name: string, extra: Partial<ChurnPod> = {}): ChurnPod => ({ key: `ns/${name}`, namespace: 'ns', dueAt: 1000, sentAt: 1002, created: true, ...extra });

describe('analyseChurn', () => {
  it('when a pod never turned Running before it was deleted, then it is counted as never Running and the others are measured', () => {
    const f = analyseChurn({
      pods: [pod('a', { deletedAt: 9000 }), pod('b', { deletedAt: 6000 }), pod('c'), pod('z', { created: false, createError: 'HTTP 500', sentAt: 1050 })],
      running: new Map([
        ['ns/a', seen(2000, 'a')],
        ['ns/c', seen(2500, 'c', true)],
      ]),
      firstAdd: new Map([[d('a'), 2010]]),
      reports: [rep(2600, ['ns'], [d('a')]), rep(9100, ['other'], []), rep(9500, ['ns'], [])],
      delayAt: () => 0,
    });
    expect(f).toMatchObject({
      podsScheduled: 4,
      podsCreated: 3,
      createFailures: 1,
      podsDeleted: 2,
      createLateMs: { n: 4, p50: 2, max: 50 },
      neverRunning: { count: 1, deletedFirst: 1, stillNotRunning: 0, examples: ['ns/b'] },
      runningSeenOnlyByRelist: 1,
      registration: { ms: { n: 1, p50: 10 } },
      inventory: { ms: { n: 1, p50: 600 } },
      inventoryMissing: 0,
      // The report of another namespace at 9100 does not count: ns is gone from Anchore at 9500.
      deletionInInventory: { ms: { n: 1, p50: 500 } },
      deletionNotSeen: 0,
      notRegistered: 0,
    });
  });

  it('when the harness stalled at a stamp, then that delay is beside the latency and taken off its share', () => {
    const ticker = new LoopTicker(10);
    for (let t = 1000; t <= 2000; t += 10) ticker.tick(t);
    ticker.tick(2300); // a 290 ms stall of the benchmark process, 2000 → 2300
    for (let t = 2310; t <= 3000; t += 10) ticker.tick(t);
    const f = analyseChurn({
      pods: [pod('a'), pod('b')],
      running: new Map([
        ['ns/a', seen(1500, 'a')],
        ['ns/b', seen(1950, 'b')],
      ]),
      firstAdd: new Map([
        [d('a'), 1505],
        [d('b'), 2301], // stamped right after the stall
      ]),
      reports: [],
      delayAt: (t) => ticker.delayAt(t),
    });
    expect(f.registration.ms).toMatchObject({ n: 2, p50: 5, max: 351 });
    expect(f.registration.harnessDelayMs).toMatchObject({ p50: 0, max: 290 });
    expect(f.registration.beyondHarnessMs).toMatchObject({ p50: 5, max: 61 });
    expect(f.inventoryMissing).toBe(2);
  });
});

describe('LoopTicker', () => {
  it('when asked about a moment, then it gives the larger lateness of the ticks around it', () => {
    const t = new LoopTicker(10);
    for (const at of [0, 10, 20, 130, 140, 151]) t.tick(at);
    expect(t.delayAt(15)).toBe(0);
    expect(t.delayAt(100)).toBe(100); // inside the stall 20 → 130
    expect(t.delayAt(130)).toBe(100); // handled right after it
    expect(t.delayAt(145)).toBe(1);
    expect(t.delayAt(-5)).toBe(0);
    expect(t.delayAt(500)).toBe(1);
  });
});
