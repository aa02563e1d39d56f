import { describe, expect, it } from '@jest/globals';
import type { BindingImageResult } from '../crds/types.ts';
import { MAX_RESULTS, boundResults, conditionsFor, mergeConditions, sameStatus, summarize } from './binding-status.ts';
import { parseDuration } from '../runtime/time.ts';

const r = (image: string, result: BindingImageResult['result'], extra: Partial<BindingImageResult> = {}): BindingImageResult => ({ image, result, ...extra });

describe('binding status', () => {
  it('when results are summarised, then every result kind is counted', () => {
    const s = summarize([r('a', 'pass'), r('b', 'fail'), r('c', 'warn'), r('d', 'pending'), r('e', 'error'), r('f', 'pass')], 3);
    expect(s).toEqual({ workloads: 3, images: 6, passed: 2, failed: 1, warned: 1, pending: 1, errors: 1 });
  });

  it('when there are more results than the bound, then failing ones come first and truncated is set', () => {
    const many = Array.from({ length: 500 }, (_, i) => r(`img-${String(i).padStart(3, '0')}`, i % 50 === 0 ? 'fail' : 'pass'));
    const b = boundResults(many);
    expect(b.truncated).toBe(true);
    expect(b.results).toHaveLength(MAX_RESULTS);
    expect(b.results.slice(0, 10).every((x) => x.result === 'fail')).toBe(true);
    expect(boundResults(many.slice(0, 5)).truncated).toBe(false);
  });

  it('when results carry huge messages, then the byte budget still bounds the list', () => {
    const big = Array.from({ length: 100 }, (_, i) => r(`i${i}`, 'error', { message: 'x'.repeat(1000) + i, topFindings: Array.from({ length: 5 }, () => ({ gate: 'g', trigger: 't', action: 'stop', message: 'm'.repeat(1000) })) }));
    const b = boundResults(big);
    expect(JSON.stringify(b.results).length).toBeLessThanOrEqual(256 * 1024);
    expect(b.truncated).toBe(true);
  });

  it('when compliance is unknown (the binding selects no image), then Compliant is Unknown, not True', () => {
    const cs = conditionsFor({ kind: 'done', reason: 'NoMatchingImages', message: 'none', compliant: { ok: undefined, reason: 'NoMatchingImages', message: 'selects no running image' } });
    expect(cs.find((c) => c.type === 'Compliant')).toEqual({ type: 'Compliant', status: 'Unknown', reason: 'NoMatchingImages', message: 'selects no running image' });
    expect(cs.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('when a condition keeps its status, then lastTransitionTime does not move; when it flips, it does', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T01:00:00Z');
    const c1 = mergeConditions(undefined, conditionsFor({ kind: 'done', reason: 'Evaluated', message: '3 images' }), 1, t1);
    const c2 = mergeConditions(c1, conditionsFor({ kind: 'done', reason: 'Evaluated', message: '4 images' }), 2, t2);
    expect(c2[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(c2[0]?.observedGeneration).toBe(2);
    const c3 = mergeConditions(c2, conditionsFor({ kind: 'stalled', reason: 'PolicyNotFound', message: 'no policy x' }), 3, t2);
    expect(c3.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', lastTransitionTime: '2026-01-01T01:00:00Z' });
    expect(c3.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'PolicyNotFound' });
    expect(c3.find((c) => c.type === 'Reconciling')).toBeUndefined();
  });

  it('when only lastEvaluationTime differs, then statuses are the same (no write)', () => {
    const a = { observedGeneration: 1, lastEvaluationTime: '2026-01-01T00:00:00Z', results: [r('a', 'pass')] };
    expect(sameStatus(a, { ...a, lastEvaluationTime: '2026-01-01T05:00:00Z' })).toBe(true);
    expect(sameStatus(a, { ...a, results: [r('a', 'fail')] })).toBe(false);
    expect(sameStatus({ results: [r('a', 'pass')], account: 'x' }, { account: 'x', results: [r('a', 'pass')] })).toBe(true);
  });

  it.each([
    ['1h', 3_600_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['1.5m', 90_000],
    ['bogus', undefined],
    ['1d', undefined],
  ])('when the duration is %s, then it parses to %s ms', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
  });
});
