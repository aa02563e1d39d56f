import { describe, expect, it } from '@jest/globals';
import { Gauge, Registry } from 'prom-client';
import { OperatorMetrics, type SeriesTier } from './metrics.ts';

/** Ad-hoc findings metrics for these tests (the operator's own are declared in FINDINGS_TIERS). */
const tiers: Record<string, SeriesTier> = {
  t_plain: 'image',
  t_none: 'image',
  t_one: 'image',
  t_a: 'image',
  t_b: 'image',
  t_dup: 'image',
  t_s: 'image',
  t_r: 'image',
  t_crit: 'critical',
  t_img: 'image',
  t_cve: 'cve',
  t_acct: 'account',
};

function parse(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('OperatorMetrics findings gauges', () => {
  it('when a scrape would exceed the series budget, then the excess is dropped and counted, every scrape', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, maxSeries: 3, tiers });
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
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
    m.findingsGauge('t_dup', 'd', ['k'], () => [
      [{ k: 'x' }, 1],
      [{ k: 'x' }, 2],
      [{ k: 'y' }, 3],
    ]);
    const text = await m.registry.metrics();
    expect(parse(text, 't_dup')).toEqual(['t_dup{k="x"} 1', 't_dup{k="y"} 3']);
  });

  it('when the state behind a gauge shrinks, then vanished series are gone at the next scrape', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
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
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
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

  it('when cuttable gauges are registered before a critical one, then the budget still goes to the critical tier first, then per image, then per CVE', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, maxSeries: 5, tiers });
    const rows = (n: number) => () => Array.from({ length: n }, (_, i): [{ k: string }, number] => [{ k: String(i) }, 1]);
    m.findingsGauge('t_cve', 'cve', ['k'], rows(3));
    m.findingsGauge('t_img', 'img', ['k'], rows(3));
    m.findingsGauge('t_acct', 'acct', ['k'], rows(1));
    m.findingsGauge('t_crit', 'crit', ['k'], rows(3));
    const text = await m.registry.metrics();
    expect([parse(text, 't_crit'), parse(text, 't_acct'), parse(text, 't_img'), parse(text, 't_cve')].map((x) => x.length)).toEqual([3, 1, 1, 0]);
    expect(text).toContain('anchore_operator_metrics_series_dropped_total{metric="t_img"} 2');
    expect(text).toContain('anchore_operator_metrics_series_dropped_total{metric="t_cve"} 3');
    expect(text).toContain('anchore_operator_metrics_series_dropped_total{metric="t_crit"} 0');
    expect(text).toContain('anchore_operator_metrics_series_cut{tier="image"} 2');
    expect(text).toContain('anchore_operator_metrics_series_cut{tier="cve"} 3');
    expect(text).toContain('anchore_operator_metrics_series_exported{tier="critical"} 3');
  });

  it('when the gauges are collected one by one in any order, then each scrape is one allocation and the critical series are never cut', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, maxSeries: 2, tiers });
    const rows = (n: number) => () => Array.from({ length: n }, (_, i): [{ k: string }, number] => [{ k: String(i) }, 1]);
    m.findingsGauge('t_crit', 'crit', ['k'], rows(3));
    m.findingsGauge('t_cve', 'cve', ['k'], rows(2));
    const names = [
      't_cve',
      'anchore_operator_metrics_series_cut',
      't_crit',
      'anchore_operator_metrics_series_dropped_total',
      'anchore_operator_metrics_series_exported',
      'anchore_operator_metrics_series_budget',
    ];
    for (const order of [names, [...names].reverse()]) {
      const text = (await Promise.all(order.map((n) => m.registry.getSingleMetricAsString(n)))).join('\n');
      expect(parse(text, 't_crit')).toHaveLength(3);
      expect(parse(text, 't_cve')).toHaveLength(0);
      expect(text).toContain('anchore_operator_metrics_series_cut{tier="cve"} 2');
      expect(text).toContain('anchore_operator_metrics_series_exported{tier="critical"} 3');
    }
    // Two scrapes, two allocations: the counter counted the cut series twice, no more.
    expect(await m.registry.getSingleMetricAsString('anchore_operator_metrics_series_dropped_total')).toContain('{metric="t_cve"} 6');
  });
});

describe('OperatorMetrics findings gauges keep their series in the budget', () => {
  it('when findings rows are allotted, then each gauge answers exactly what a prom-client Gauge set with the same rows would', async () => {
    const rows: Array<[{ k: string; v?: string }, number]> = [
      [{ k: 'a', v: 'with "quotes"' }, 1],
      [{ k: 'b', v: 'back\\slash\nnew line' }, NaN],
      [{ v: 'ünï', k: 'c' }, Infinity],
      [{ k: 'd' }, -0.5],
      [{ k: 'a', v: 'with "quotes"' }, 9], // a duplicate: the first is kept
      [{ k: 'e', v: '' }, 1e21],
    ];
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
    m.findingsGauge('t_plain', 'rows with awkward labels', ['k', 'v'], () => rows);
    m.findingsGauge('t_none', 'no labels, no row', [], () => []);
    m.findingsGauge('t_one', 'no labels, one row', [], () => [[{}, 7]]);
    const reference = new Registry();
    const plain = new Gauge({ name: 't_plain', help: 'rows with awkward labels', labelNames: ['k', 'v'], registers: [reference] });
    for (const [labels, value] of rows.slice(0, 4).concat(rows.slice(5))) plain.set(labels, value);
    new Gauge({ name: 't_none', help: 'no labels, no row', registers: [reference] });
    new Gauge({ name: 't_one', help: 'no labels, one row', registers: [reference] }).set(7);
    for (const name of ['t_plain', 't_none', 't_one']) {
      expect(await m.registry.getSingleMetricAsString(name)).toBe(await reference.getSingleMetricAsString(name));
    }
  });

  it('when a reader yields a label the gauge was not declared with, or a value that is no number, then the scrape fails as Gauge.set() would', async () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
    m.findingsGauge('t_plain', 'p', ['k'], () => [[{ k: 'a', other: 'x' } as { k: string }, 1]]);
    await expect(m.registry.metrics()).rejects.toThrow('Added label "other" is not included in initial labelset');
    const n = new OperatorMetrics(undefined, { defaultMetrics: false, tiers });
    n.findingsGauge('t_plain', 'p', ['k'], () => [[{ k: 'a' }, '1' as unknown as number]]);
    await expect(n.registry.metrics()).rejects.toThrow('Value is not a valid number');
  });
});
