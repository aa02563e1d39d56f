import { describe, expect, it } from '@jest/globals';
import { markdownTable, median, percentiles } from './stats.ts';

describe('benchmark statistics', () => {
  it('when given 1..100, then nearest-rank percentiles are the exact ranks', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(v)).toEqual({ n: 100, p50: 50, p90: 90, p99: 99, max: 100 });
  });
  it('when given one value or none, then every percentile is that value or NaN', () => {
    expect(percentiles([7])).toEqual({ n: 1, p50: 7, p90: 7, p99: 7, max: 7 });
    expect(percentiles([]).p99).toBeNaN();
  });
  it('when asked for a median of an even list, then the lower middle is taken (nearest rank)', () => {
    expect(median([4, 1, 3, 2])).toBe(2);
  });
  it('when results are nested, then the table has one row per leaf figure and skips run and params', () => {
    const t = markdownTable({ run: 'x', params: { a: 1 }, churn: { registrationMs: { p50: 3 }, events: 50 } });
    expect(t.split('\n')).toEqual(['| Scenario | Figure | Value |', '| --- | --- | --- |', '| churn | registrationMs.p50 | 3 |', '| churn | events | 50 |']);
  });
});
