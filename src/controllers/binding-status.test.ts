import { describe, expect, it } from '@jest/globals';
import type { BindingImageResult, BindingSpec } from '../crds/types.ts';
import { MAX_RESULTS, PENDING_RECHECK_MS, boundResults, conditionsFor, describeSelection, mergeConditions, sameStatus, summarize, summarizeBinding } from './binding-status.ts';
import { StallError, WaitError } from '../runtime/errors.ts';
import { aBinding } from '../testing/factories.ts';
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
    const big = Array.from({ length: 100 }, (_, i) =>
      r(`i${i}`, 'error', { message: 'x'.repeat(1000) + i, topFindings: Array.from({ length: 5 }, () => ({ gate: 'g', trigger: 't', action: 'stop', message: 'm'.repeat(1000) })) }),
    );
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

describe('binding summarize step', () => {
  const now = new Date('2026-12-07T10:00:00Z');
  const earlier = {
    observedGeneration: 1,
    summary: { workloads: 1, images: 1, passed: 1, failed: 0, warned: 0, pending: 0, errors: 0 },
    results: [r('a', 'pass')],
    conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Evaluated', message: 'ok', lastTransitionTime: '2026-12-01T00:00:00Z' }],
  };
  const policies = new Map([['admin', { policy_id: 'p1', name: 'Strict', active: true }]]);
  const evaluated = (results: BindingImageResult[], extra: { unavailable?: string; mode?: 'evaluate' | 'analyze' } = {}) =>
    ({
      kind: 'evaluated',
      compiled: { mode: extra.mode ?? 'evaluate', intervalMs: 600_000 },
      results,
      workloads: 2,
      accounts: new Set(['admin']),
      policies,
      ...(extra.unavailable ? { unavailable: extra.unavailable } : {}),
    }) as const;
  const cond = (s: { conditions?: Array<{ type: string }> }, type: string) => s.conditions?.find((c) => c.type === type);

  it('when every image passes, then Ready and Compliant are True, the policy and account are named and it looks again after the interval', () => {
    const { status, requeueMs } = summarizeBinding(aBinding('b', 'shop', {}, earlier), evaluated([r('a', 'pass'), r('b', 'pass')]), now);
    expect(cond(status, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Evaluated',
      message: '2 image(s) in 2 workload(s): 2 passed, 0 failed, 0 warned, 0 pending, 0 errors',
      lastTransitionTime: '2026-12-01T00:00:00Z',
    });
    expect(cond(status, 'Compliant')).toMatchObject({ status: 'True', reason: 'PolicyPassed' });
    expect(status).toMatchObject({ observedGeneration: 1, policy: { id: 'p1', name: 'Strict', active: true }, account: 'admin', lastEvaluationTime: '2026-12-07T10:00:00Z' });
    expect(requeueMs).toBe(600_000);
  });

  it('when an image fails, then Compliant is False with PolicyFailed naming the policy', () => {
    const { status } = summarizeBinding(aBinding('b', 'shop', { policyId: 'p1' }), evaluated([r('a', 'fail'), r('b', 'pass')]), now);
    expect(cond(status, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: '1 image(s) fail policy Strict' });
    expect(status.policy?.active).toBe(false);
  });

  it('when images wait for analysis, then Ready is False with Reconciling, and it looks again soon', () => {
    const { status, requeueMs } = summarizeBinding(aBinding('b', 'shop'), evaluated([r('a', 'pending', { reason: 'AnalysisPending' })]), now);
    expect(cond(status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'AnalysisPending' });
    expect(cond(status, 'Compliant')).toBeUndefined();
    expect(requeueMs).toBe(PENDING_RECHECK_MS);
  });

  it('when nothing matches, then Ready says NoMatchingImages and Compliant is Unknown', () => {
    const { status } = summarizeBinding(aBinding('b', 'shop'), evaluated([]), now);
    expect(cond(status, 'Ready')).toMatchObject({ status: 'True', reason: 'NoMatchingImages' });
    expect(cond(status, 'Compliant')).toMatchObject({ status: 'Unknown', reason: 'NoMatchingImages' });
    expect(cond(status, 'Ready')).toMatchObject({ message: 'No running image matches this binding (every pod in namespace shop).' });
  });

  it('when nothing matches, then the messages name what the binding selects, as its spec says it', () => {
    const spec: BindingSpec = {
      podSelector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
      images: { include: ['ghcr.io/*'], exclude: ['*:debug'] },
    };
    const { status } = summarizeBinding(aBinding('b', 'shop', spec), evaluated([]), now);
    const said = 'podSelector app=web,tier in (back,front), images include ghcr.io/*, images exclude *:debug';
    expect(cond(status, 'Ready')).toMatchObject({ message: `No running image matches this binding (${said}).` });
    expect(cond(status, 'Compliant')).toMatchObject({ message: `This binding selects no running image (${said}; check them): nothing passes or fails` });
    const cluster = aBinding('all', undefined, { namespaceSelector: { matchLabels: { team: 'a' } }, namespaces: ['x', 'y'] });
    expect(describeSelection(cluster)).toBe('namespaces x,y, namespaceSelector team=a, every pod');
  });

  it('when Anchore was unavailable, then the binding is retrying with the results it has', () => {
    const { status, requeueMs } = summarizeBinding(aBinding('b', 'shop'), evaluated([r('a', 'pass')], { unavailable: 'HTTP 503' }), now);
    expect(cond(status, 'Ready')).toMatchObject({ status: 'False', reason: 'AnchoreUnavailable' });
    expect(status.results).toHaveLength(1);
    expect(requeueMs).toBe(10_000);
  });

  it('when a step stalled or waits, then the earlier results stay and only the conditions say why', () => {
    const b = aBinding('b', 'shop', {}, earlier);
    const stalled = summarizeBinding(b, { kind: 'problem', error: new StallError('PolicyNotFound', 'no policy', 15_000) }, now);
    expect(stalled.status.results).toEqual(earlier.results);
    expect(cond(stalled.status, 'Stalled')).toMatchObject({ status: 'True', reason: 'PolicyNotFound', message: 'no policy' });
    expect(cond(stalled.status, 'Ready')).toMatchObject({ status: 'False', lastTransitionTime: '2026-12-07T10:00:00Z' });
    expect(stalled.requeueMs).toBeUndefined();
    const waiting = summarizeBinding(b, { kind: 'problem', error: new WaitError('AnchoreUnavailable', 'down', 10_000) }, now);
    expect(cond(waiting.status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'AnchoreUnavailable' });
    expect(cond(waiting.status, 'Stalled')).toBeUndefined();
  });

  it('when the binding is suspended, then Ready says Suspended and the results are kept', () => {
    const { status } = summarizeBinding(aBinding('b', 'shop', { suspend: true }, earlier), { kind: 'suspended' }, now);
    expect(cond(status, 'Ready')).toMatchObject({ status: 'True', reason: 'Suspended' });
    expect(status.summary).toEqual(earlier.summary);
  });

  it('when analyze mode finishes, then Ready says Analyzed and there is no Compliant condition', () => {
    const { status } = summarizeBinding(aBinding('b', 'shop', { mode: 'analyze' }), evaluated([r('a', 'pass')], { mode: 'analyze' }), now);
    expect(cond(status, 'Ready')).toMatchObject({ reason: 'Analyzed' });
    expect(cond(status, 'Compliant')).toBeUndefined();
  });
});
