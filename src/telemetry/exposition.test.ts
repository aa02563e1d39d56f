import { describe, expect, it } from '@jest/globals';
import { Counter, Gauge, Histogram, type OpenMetricsContentType, Registry, Summary } from 'prom-client';
import { SLICE } from '../runtime/cooperative.ts';
import { createLogger } from './logger.ts';
import { metricsText } from './exposition.ts';
import { OperatorMetrics, type SeriesTier } from './metrics.ts';
import { startMetricsServer } from './server.ts';

const tiers: Record<string, SeriesTier> = { t_crit: 'critical', t_img: 'image', t_cve: 'cve' };

/** Label values that need escaping, or are not ASCII. */
const awkward = ['plain', 'with "quotes"', 'back\\slash', 'new\nline', 'ünï©ødé', '', 'tab\there'];

/**
 * One operator-like registry, built the same way every time: plain metrics of every kind, findings gauges of several
 * slices each over a series budget that cuts some, awkward label values and help texts, values that are not finite.
 */
function build(): OperatorMetrics {
  const m = new OperatorMetrics(undefined, { defaultMetrics: false, maxSeries: SLICE * 3, tiers, version: 'v"1\\\n' });
  const r = [m.registry];
  new Counter({ name: 't_counter', help: 'help with \\ and\nnewline', labelNames: ['a'], registers: r }).inc({ a: awkward[1]! }, 3);
  const g = new Gauge({ name: 't_gauge', help: 'g', labelNames: ['a', 'b'], registers: r });
  awkward.forEach((a, i) => g.set({ a, b: String(i) }, [NaN, Infinity, -Infinity, 0.1, -0, 1e21, 7][i]!));
  new Gauge({ name: 't_empty', help: 'no series', registers: r });
  const h = new Histogram({ name: 't_hist', help: 'h', labelNames: ['op'], buckets: [0.1, 1], registers: r });
  h.observe({ op: 'x' }, 0.5);
  h.observe({ op: awkward[3]! }, 2);
  new Summary({ name: 't_summary', help: 's', percentiles: [0.5, 0.9], registers: r }).observe(4);
  const big = new Gauge({ name: 't_big_plain', help: 'many series, not budgeted', labelNames: ['i'], registers: r });
  for (let i = 0; i < SLICE * 2 + 3; i++) big.set({ i: String(i) }, i);
  const rows = (n: number, prefix: string) => () => Array.from({ length: n }, (_, i): [{ k: string; v: string }, number] => [{ k: `${prefix}${i}`, v: awkward[i % awkward.length]! }, i % 5]);
  m.findingsGauge('t_img', 'image tier', ['k', 'v'], rows(SLICE * 2 + 11, 'img-'));
  m.findingsGauge('t_crit', 'critical tier', ['k', 'v'], rows(SLICE * 2 + 1, 'crit-'));
  m.findingsGauge('t_cve', 'cve tier (cut)', ['k', 'v'], rows(SLICE, 'cve-'));
  m.stateGauge('t_state', 'state', ['k'], () => [[{ k: awkward[2]! }, 1]]);
  return m;
}

describe('metricsText', () => {
  it('when a registry holds metrics of every kind, findings of several slices and awkward labels, then the text equals registry.metrics()', async () => {
    const whole = await build().registry.metrics();
    const sliced = await metricsText(build().registry);
    expect(sliced).toBe(whole);
    // What the comparison covers: slices of one metric joined, the budget spent and cut, escaping.
    expect(whole.split('\n').filter((l) => l.startsWith('t_crit{'))).toHaveLength(SLICE * 2 + 1);
    expect(whole.split('\n').filter((l) => l.startsWith('t_big_plain{'))).toHaveLength(SLICE * 2 + 3);
    expect(whole).toContain('anchore_operator_metrics_series_cut{tier="cve"}');
    expect(whole).toContain('new\\nline');
  });

  it('when it runs twice (each scrape spends the budget again), then both texts equal two registry.metrics() calls', async () => {
    const a = build();
    const b = build();
    expect(await metricsText(b.registry)).toBe(await a.registry.metrics());
    a.releaseComputed();
    b.releaseComputed();
    expect(await metricsText(b.registry)).toBe(await a.registry.metrics());
  });

  it('when the registry has many series, then other callbacks run while its text is made', async () => {
    const m = build();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const text = metricsText(m.registry);
    const before = ticks;
    await text;
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(before);
  });

  it('when the registry is an OpenMetrics one, then the text is what registry.metrics() gives', async () => {
    const openMetrics = () => {
      const r = new Registry<OpenMetricsContentType>();
      r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      new Counter({ name: 't_om', help: 'c', registers: [r] }).inc();
      return r;
    };
    const text = await metricsText(openMetrics());
    expect(text).toBe(await openMetrics().metrics());
    expect(text).toContain('# EOF');
  });
});

describe('metrics server', () => {
  it('when scrapes overlap, then each gets a whole text with every findings series and the budget spent once per scrape', async () => {
    const m = build();
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: m.registry, log: createLogger({ level: 'silent', pretty: false }), afterScrape: () => m.releaseComputed() });
    try {
      const get = async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      const texts = await Promise.all([get(), get(), get(), get()]);
      for (const t of texts) {
        expect(t.split('\n').filter((l) => l.startsWith('t_crit{'))).toHaveLength(SLICE * 2 + 1);
        expect(t.split('\n').filter((l) => l.startsWith('t_img{'))).toHaveLength(SLICE - 1);
      }
      // The cve tier is cut whole at every allocation: the counter says how many there were (scrapes waiting together share one).
      const dropped = Math.max(...texts.map((t) => Number(/series_dropped_total\{metric="t_cve"\} (\d+)/.exec(t)?.[1])));
      expect(dropped % SLICE).toBe(0);
      expect(dropped / SLICE).toBeGreaterThanOrEqual(1);
      expect(dropped / SLICE).toBeLessThanOrEqual(4);
    } finally {
      await server.close();
    }
  });
});
