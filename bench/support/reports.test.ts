import { describe, expect, it } from '@jest/globals';
import { ReportCollector } from './reports.ts';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const report = (account: string, cluster: string, at: number, digests: string[]) => ({
  account,
  receivedAt: at,
  body: {
    cluster_name: cluster,
    timestamp: '2026-01-01T00:00:00Z',
    namespaces: [],
    nodes: [],
    pods: [],
    containers: digests.map((d, i) => ({ id: `c${i}`, name: 'c', image_tag: 'x:1', image_digest: d, pod_uid: 'p' })),
  },
});

describe('ReportCollector', () => {
  it('when reports arrive, then it keeps their time, container count and digests, per cluster, in order', () => {
    const c = new ReportCollector();
    c.add(report('admin', 'ours', 1, [digest('a'), digest('a'), digest('b')]));
    c.add(report('admin', 'theirs', 2, [`docker.io/x@${digest('c')}`]));
    c.add(report('team-a', 'ours', 3, [digest('d')]));
    c.add(report('admin', 'ours', 4, []));
    expect(c.of('ours').map((r) => [r.at, r.containers, [...r.digests]])).toEqual([
      [1, 3, [digest('a'), digest('b')]],
      [4, 0, []],
    ]);
    // A digest written with its repository is still found by the digest alone.
    expect(c.of('theirs')[0]?.digests.has(digest('c'))).toBe(true);
    expect(c.of('ours', 2).map((r) => r.at)).toEqual([4]);
  });
});
