import { describe, expect, it } from '@jest/globals';
import type { RecordedRequest } from '../../test/anchore-sim/index.ts';
import { ReportCollector, loggedBodyBytes } from './reports.ts';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const report = (account: string, cluster: string, at: number, digests: string[], namespaces: string[] = []) => ({
  account,
  receivedAt: at,
  body: {
    cluster_name: cluster,
    timestamp: '2026-01-01T00:00:00Z',
    namespaces: namespaces.map((n) => ({ uid: `uid-${n}`, name: n })),
    nodes: [],
    pods: namespaces.map((n) => ({ uid: `pod-${n}`, namespace_uid: `uid-${n}` })),
    containers: digests.map((d, i) => ({ id: `c${i}`, name: 'c', image_tag: 'x:1', image_digest: d, pod_uid: 'p' })),
  },
});
const logged = (time: number, body: unknown, status = 201): RecordedRequest => ({
  seq: time,
  time,
  method: 'POST',
  path: '/v2/kubernetes-inventory',
  query: {},
  account: 'admin',
  user: 'admin',
  status,
  body,
  durationMs: 1,
  inFlight: 1,
});
const note = (bytes: number): string => `[body of ${bytes} bytes dropped from the request log to bound memory]`;

describe('ReportCollector', () => {
  it('when reports arrive, then it keeps their time, container count, digests and namespaces, per cluster, in order', () => {
    const c = new ReportCollector();
    c.add(report('admin', 'ours', 1, [digest('a'), digest('a'), digest('b')], ['ns-1', 'ns-2']));
    c.add(report('admin', 'theirs', 2, [`docker.io/x@${digest('c')}`]));
    c.add(report('team-a', 'ours', 3, [digest('d')]));
    c.add(report('admin', 'ours', 4, []));
    expect(c.of('ours').map((r) => [r.at, r.containers, [...r.digests], [...r.namespaces]])).toEqual([
      [1, 3, [digest('a'), digest('b')], ['ns-1', 'ns-2']],
      [4, 0, [], []],
    ]);
    // A digest written with its repository is still found by the digest alone.
    expect(c.of('theirs')[0]?.digests.has(digest('c'))).toBe(true);
    expect(c.of('ours', 2).map((r) => r.at)).toEqual([4]);
  });

  it('when the request log is read, then each report gets the size of its own request (a dropped body by its note, a kept one re-serialised), same-millisecond reports in order', () => {
    const c = new ReportCollector();
    const kept = report('admin', 'theirs', 20, [digest('e')]).body;
    c.add(report('admin', 'ours', 10, [digest('a')]));
    c.add(report('admin', 'theirs', 10, [digest('b')]));
    c.add(report('admin', 'ours', 20, []));
    c.add(report('admin', 'theirs', 20, [digest('e')]));
    const log = [logged(5, note(7)), logged(10, note(1000)), logged(10, 'not json', 400), logged(10, note(2000)), logged(20, note(30))];
    expect(c.attachBytes(log)).toBe(3);
    expect(c.seen.map((r) => r.bytes)).toEqual([1000, 2000, 30, undefined]);
    // Later, the last request is logged: only it is matched, the earlier ones are not counted twice.
    expect(c.attachBytes([...log, logged(20, kept)])).toBe(1);
    expect(c.seen[3]?.bytes).toBe(Buffer.byteLength(JSON.stringify(kept)));
  });

  it('when the simulator hands over the size with the report, then that size is kept and the request log is not needed for it', () => {
    const c = new ReportCollector();
    const withSize = { ...report('admin', 'ours', 10, []), bytes: 1234 };
    c.add(withSize);
    c.add(report('admin', 'ours', 11, []));
    expect(c.seen.map((r) => r.bytes)).toEqual([1234, undefined]);
    expect(c.attachBytes([logged(10, note(1234)), logged(11, note(99))])).toBe(1);
    expect(c.seen.map((r) => r.bytes)).toEqual([1234, 99]);
  });

  it('when a window is asked for, then it sums that sender’s bytes in it and extrapolates them to an hour', () => {
    const c = new ReportCollector();
    for (const [at, bytes] of [
      [0, 100],
      [1000, 300],
      [2000, 500],
      [3000, 700],
    ] as const) {
      c.add(report('admin', 'ours', at, [], ['a', 'b']));
      c.seen.at(-1)!.bytes = bytes;
    }
    c.add(report('admin', 'theirs', 1500, []));
    expect(c.bytesIn('ours', 1000, 3000)).toEqual({
      reports: 2,
      bytes: 800,
      bytesPerReport: 400,
      maxReportBytes: 500,
      namespacesPerReport: 2,
      bytesPerHour: 800 * 1800,
      MBPerHour: 1.44,
      unsized: 0,
    });
    expect(c.bytesIn('theirs', 0, 4000)).toMatchObject({ reports: 1, bytes: 0, unsized: 1 });
  });

  it('when full reports are asked for, then only those covering every namespace count, with their interval outside the pairs skipped', () => {
    const c = new ReportCollector();
    for (const [at, ns, bytes] of [
      [0, ['a', 'b'], 100],
      [500, ['a'], 10],
      [60_000, ['a', 'b', 'c'], 110],
      [70_000, ['a', 'b'], 120], // right after a restart
      [130_000, ['a', 'b'], 130],
    ] as const) {
      c.add(report('admin', 'ours', at, [], [...ns]));
      c.seen.at(-1)!.bytes = bytes;
    }
    expect(c.fullReports('ours', ['a', 'b'], (from, to) => from < 65_000 && to >= 65_000)).toEqual({ count: 4, lastBytes: 130, medianIntervalSeconds: 60 });
    expect(c.fullReports('ours', ['z'])).toEqual({ count: 0, lastBytes: 0, medianIntervalSeconds: null });
    // 10 bytes of partial reports in a 1 s window → 36,000 bytes/h, plus the full report before its end (100 bytes)
    // every 60 s → 6,000 bytes/h.
    const full = c.fullReports('ours', ['a', 'b'], (from, to) => from < 65_000 && to >= 65_000);
    expect(c.projectedBytesPerHour('ours', 0, 1000, ['a', 'b'], full)).toBe(36_000 + 6_000);
    // A window before any full report: the newest one stands in (130 bytes every 60 s).
    expect(c.projectedBytesPerHour('ours', -1000, 0, ['a', 'b'], full)).toBe(7_800);
    expect(c.projectedBytesPerHour('ours', 0, 1000, ['a', 'b'], { ...full, medianIntervalSeconds: null })).toBeNull();
  });

  it('when a logged body is a note, a string or JSON, then its size is the note’s, the string’s or the JSON’s', () => {
    expect(loggedBodyBytes(note(6_450_000))).toBe(6_450_000);
    expect(loggedBodyBytes('héllo')).toBe(6);
    expect(loggedBodyBytes({ a: [1, 'ü'] })).toBe(Buffer.byteLength('{"a":[1,"ü"]}'));
    expect(loggedBodyBytes(undefined)).toBe(0);
  });
});
