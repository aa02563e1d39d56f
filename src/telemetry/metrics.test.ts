import { describe, expect, it } from '@jest/globals';
import { OperatorMetrics } from './metrics.ts';

function parse(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('OperatorMetrics findings gauges', () => {
  it('when a scrape would exceed the series budget, then the excess is dropped and counted, every scrape', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, maxSeries: 3 });
    m.findingsGauge('t_a', 'a', ['k'], () => [
      [{ k: '1' }, 1],
      [{ k: '2' }, 1],
    ]);
    m.findingsGauge('t_b', 'b', ['k'], () => [
      [{ k: '1' }, 1],
      [{ k: '2' }, 1],
      [{ k: '3' }, 1],
    ]);
    const first = await m.registry.metrics();
    expect(parse(first, 't_a')).toHaveLength(2);
    expect(parse(first, 't_b')).toHaveLength(1);
    const second = await m.registry.metrics();
    expect(parse(second, 't_b')).toHaveLength(1);
    expect(second).toContain('anchore_operator_metrics_series_dropped_total{metric="t_b"} 4');
    expect(second).toContain('anchore_operator_metrics_series_budget 3');
  });

  it('when a reader yields the same label set twice, then it is exported once (no duplicate-series scrape failure)', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false });
    m.findingsGauge('t_dup', 'd', ['k'], () => [
      [{ k: 'x' }, 1],
      [{ k: 'x' }, 2],
      [{ k: 'y' }, 3],
    ]);
    const text = await m.registry.metrics();
    expect(parse(text, 't_dup')).toEqual(['t_dup{k="x"} 1', 't_dup{k="y"} 3']);
  });

  it('when the state behind a gauge shrinks, then vanished series are gone at the next scrape', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false });
    let rows: Array<[{ w: string }, number]> = [
      [{ w: 'a' }, 1],
      [{ w: 'b' }, 2],
    ];
    m.findingsGauge('t_s', 's', ['w'], () => rows);
    expect(parse(await m.registry.metrics(), 't_s')).toHaveLength(2);
    rows = [[{ w: 'b' }, 2]];
    expect(parse(await m.registry.metrics(), 't_s')).toEqual(['t_s{w="b"} 2']);
  });

  it('when series are released after a scrape, then nothing is held between scrapes and the next scrape is whole', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false });
    const g = m.findingsGauge('t_r', 'r', ['w'], () => [
      [{ w: 'a' }, 1],
      [{ w: 'b' }, 2],
    ]);
    const first = await m.registry.metrics();
    m.releaseComputed();
    // prom-client keeps a gauge's series in its hashMap between collections: released, it is empty.
    expect(Object.keys((g as unknown as { hashMap: Record<string, unknown> }).hashMap)).toEqual([]);
    expect(await m.registry.metrics()).toBe(first);
  });
});
