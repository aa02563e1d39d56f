import { describe, expect, it } from '@jest/globals';
import type { BindingImageResult, BindingSpec, BindingStatus } from '../crds/types.ts';
import { BINDING_STATUS_SCHEMA } from '../crds/schema.ts';
import {
  MAX_RESULTS,
  PENDING_RECHECK_MS,
  boundResults,
  boundStatus,
  conditionsFor,
  cutText,
  describeSelection,
  exploitedNote,
  mergeConditions,
  sameStatus,
  summarize,
  summarizeBinding,
} from './binding-status.ts';
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
    const stalled = summarizeBinding(b, { kind: 'problem', error: new StallError('AuthFailed', 'refused', 300_000) }, now);
    expect(stalled.status.results).toEqual(earlier.results);
    expect(cond(stalled.status, 'Stalled')).toMatchObject({ status: 'True', reason: 'AuthFailed', message: 'refused' });
    expect(cond(stalled.status, 'Ready')).toMatchObject({ status: 'False', lastTransitionTime: '2026-12-07T10:00:00Z' });
    expect(stalled.requeueMs).toBeUndefined();
    const waiting = summarizeBinding(b, { kind: 'problem', error: new WaitError('AnchoreUnavailable', 'down', 10_000) }, now);
    expect(cond(waiting.status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'AnchoreUnavailable' });
    expect(cond(waiting.status, 'Stalled')).toBeUndefined();
  });

  it.each(['PolicyNotFound', 'AccountNotFound'])(
    'when the binding stalls with %s, then status names no policy and shows no verdicts of it (policy, summary, results, truncated, lastEvaluationTime cleared)',
    (reason) => {
      const before = { ...earlier, policy: { id: 'p1', name: 'Strict', active: false }, account: 'admin', install: 'ops/a', truncated: true, lastEvaluationTime: '2026-12-06T00:00:00Z' };
      const { status } = summarizeBinding(aBinding('b', 'shop', { policyId: 'p1' }, before), { kind: 'problem', error: new StallError(reason, 'gone', 15_000) }, now);
      expect(status).toEqual({
        observedGeneration: 1,
        account: 'admin',
        install: 'ops/a',
        conditions: [
          { type: 'Ready', status: 'False', observedGeneration: 1, reason, message: 'gone', lastTransitionTime: '2026-12-07T10:00:00Z' },
          { type: 'Stalled', status: 'True', observedGeneration: 1, reason, message: 'gone', lastTransitionTime: '2026-12-07T10:00:00Z' },
        ],
      });
    },
  );

  describe('while Anchore is unavailable', () => {
    const failing = {
      ...earlier,
      summary: { workloads: 1, images: 1, passed: 0, failed: 1, warned: 0, pending: 0, errors: 0 },
      results: [r('a', 'fail')],
      policy: { id: 'p1', name: 'Strict', active: true },
      lastEvaluationTime: '2026-12-07T08:00:00Z',
      conditions: [
        { type: 'Ready', status: 'True' as const, observedGeneration: 1, reason: 'Evaluated', message: '1 image(s)…', lastTransitionTime: '2026-12-01T00:00:00Z' },
        { type: 'Compliant', status: 'False' as const, observedGeneration: 1, reason: 'PolicyFailed', message: '1 image(s) fail policy Strict', lastTransitionTime: '2026-12-02T00:00:00Z' },
      ],
    };
    const lastSuccess = new Date('2026-12-07T09:30:00Z');
    const kept = 'From the last successful evaluation at 2026-12-07T09:30:00Z (Anchore is unavailable now): 1 image(s) fail policy Strict';
    const outcomes = [
      ['evaluation', evaluated([r('a', 'fail')], { unavailable: 'HTTP 503' })],
      ['policy', { kind: 'problem', error: new WaitError('AnchoreUnavailable', 'Anchore is unavailable: HTTP 503', 10_000) }],
    ] as const;

    it.each(outcomes)('when the %s step meets the outage, then Compliant keeps the last verdict, saying from when, and its transition time', (_step, outcome) => {
      const { status } = summarizeBinding(aBinding('b', 'shop', {}, failing), outcome, now, lastSuccess);
      expect(cond(status, 'Ready')).toMatchObject({ status: 'False', reason: 'AnchoreUnavailable' });
      expect(cond(status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'AnchoreUnavailable' });
      expect(cond(status, 'Compliant')).toEqual({ type: 'Compliant', status: 'False', observedGeneration: 1, reason: 'PolicyFailed', message: kept, lastTransitionTime: '2026-12-02T00:00:00Z' });
      // These results come from the evaluation before the outage, and say so.
      expect(status.lastEvaluationTime).toBe('2026-12-07T08:00:00Z');
      expect(status.policy).toEqual(failing.policy);
    });

    it.each(outcomes)('when the %s step meets it again on a retry, then the status is the same (nothing to write)', (_step, outcome) => {
      const first = summarizeBinding(aBinding('b', 'shop', {}, failing), outcome, now, lastSuccess).status;
      // A later retry, even by a restarted process that no longer knows the last success: the same words.
      const again = summarizeBinding(aBinding('b', 'shop', {}, first), outcome, new Date('2026-12-07T10:05:00Z')).status;
      expect(sameStatus(first, again)).toBe(true);
    });

    it('when this process saw no successful evaluation, then the time is the status lastEvaluationTime', () => {
      const { status } = summarizeBinding(aBinding('b', 'shop', {}, failing), outcomes[1][1], now);
      expect(cond(status, 'Compliant')).toMatchObject({ message: expect.stringMatching(/^From the last successful evaluation at 2026-12-07T08:00:00Z /) });
    });

    it('when the last verdict was for an earlier generation or unknown, then no Compliant is kept', () => {
      const spec = aBinding('b', 'shop', {}, failing);
      expect(cond(summarizeBinding({ ...spec, generation: 2 }, outcomes[1][1], now, lastSuccess).status, 'Compliant')).toBeUndefined();
      const unknown = {
        ...failing,
        conditions: [{ type: 'Compliant', status: 'Unknown' as const, observedGeneration: 1, reason: 'NoMatchingImages', message: 'selects nothing', lastTransitionTime: '2026-12-02T00:00:00Z' }],
      };
      expect(cond(summarizeBinding(aBinding('b', 'shop', {}, unknown), outcomes[1][1], now, lastSuccess).status, 'Compliant')).toBeUndefined();
    });

    it('when Anchore answers again, then Compliant is the fresh verdict in its own words', () => {
      const down = summarizeBinding(aBinding('b', 'shop', {}, failing), outcomes[0][1], now, lastSuccess).status;
      const { status } = summarizeBinding(aBinding('b', 'shop', {}, down), evaluated([r('a', 'fail')]), now);
      expect(cond(status, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: '1 image(s) fail policy Strict', lastTransitionTime: '2026-12-02T00:00:00Z' });
      expect(status.lastEvaluationTime).toBe('2026-12-07T10:00:00Z');
    });
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

/** A schema node as the tests walk it. */
interface Node {
  type?: string;
  maxLength?: number;
  maxItems?: number;
  enum?: string[];
  format?: string;
  properties?: Record<string, Node>;
  items?: Node;
  additionalProperties?: Node | boolean;
}
const STATUS = BINDING_STATUS_SCHEMA as Node;
const at = (...path: string[]): Node => path.reduce<Node>((n, k) => (k === '[]' ? (n.items as Node) : (n.properties?.[k] as Node)), STATUS);
const codePoints = (s: string): number => [...s].length;

/** A value of `schema` past every limit it declares: strings twice too long (with multi-byte characters), lists too long. */
function oversized(schema: Node, depth = 0): unknown {
  switch (schema.type) {
    case 'string':
      if (schema.enum) return schema.enum[0];
      if (schema.format === 'date-time') return '2026-12-07T10:00:00Z';
      return schema.maxLength === undefined ? 'text' : 'é😀x'.repeat(schema.maxLength);
    case 'integer':
      return 1;
    case 'boolean':
      return false;
    case 'array':
      return Array.from({ length: (schema.maxItems ?? 1) + 7 }, () => oversized(schema.items ?? {}, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (const [k, p] of Object.entries(schema.properties ?? {})) out[k] = oversized(p, depth + 1);
      if (typeof schema.additionalProperties === 'object') out['extra'] = oversized(schema.additionalProperties, depth + 1);
      return out;
    }
  }
}

/** Every place `value` breaks a maxLength or maxItems of `schema` (what the apiserver would answer 422 for). */
function violations(value: unknown, schema: Node, path = 'status'): string[] {
  if (typeof value === 'string') return schema.maxLength !== undefined && codePoints(value) > schema.maxLength ? [`${path}: ${codePoints(value)} > ${schema.maxLength}`] : [];
  if (Array.isArray(value)) {
    const own = schema.maxItems !== undefined && value.length > schema.maxItems ? [`${path}: ${value.length} items > ${schema.maxItems}`] : [];
    return [...own, ...value.flatMap((x, i) => (schema.items ? violations(x, schema.items, `${path}[${i}]`) : []))];
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => {
      const child = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      return child ? violations(v, child, `${path}.${k}`) : [];
    });
  }
  return [];
}

describe('status bounded to the CRD schema', () => {
  it('when a text is longer than its limit, then it is cut to exactly the limit, ending with how many characters were left out', () => {
    const { text, dropped } = cutText('a'.repeat(1000), 100);
    expect(codePoints(text)).toBe(100);
    expect(text).toMatch(/^a+… \(\d+ more characters\)$/);
    expect(dropped).toBe(1000 - (100 - '… (924 more characters)'.length));
    expect(text.endsWith(`… (${dropped} more characters)`)).toBe(true);
    expect(cutText('short', 100)).toEqual({ text: 'short', dropped: 0 });
  });

  it('when a text has characters outside the BMP, then they count as one each, as the apiserver counts, and are never split', () => {
    // 100 emoji are 200 UTF-16 units but 100 characters: they fit a limit of 100.
    expect(cutText('😀'.repeat(100), 100)).toEqual({ text: '😀'.repeat(100), dropped: 0 });
    const { text } = cutText('😀'.repeat(500), 100);
    expect(codePoints(text)).toBe(100);
    expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('when the count needs one digit more, then the cut still lands exactly on the limit', () => {
    for (let n = 90; n < 140; n++) {
      const { text, dropped } = cutText('x'.repeat(n), 30);
      expect({ n, length: codePoints(text), says: text.endsWith(`(${dropped} more characters)`), adds: text.length - `… (${dropped} more characters)`.length + dropped }).toEqual({
        n,
        length: 30,
        says: true,
        adds: n,
      });
    }
    // A limit too small for the count: an ellipsis alone.
    expect(cutText('abcdefgh', 4)).toEqual({ text: 'abc…', dropped: 5 });
  });

  it('when a status breaks every limit the schema declares, then bounded it breaks none — limits read from src/crds/schema.ts', () => {
    const over = oversized(STATUS) as BindingStatus;
    expect(violations(over, STATUS).length).toBeGreaterThan(5);
    const { status, cuts } = boundStatus(over);
    expect(violations(status, STATUS)).toEqual([]);
    expect(cuts.length).toBeGreaterThan(5);
    // Exactly at the limits, not below them.
    expect(codePoints(status.conditions?.[0]?.message ?? '')).toBe(at('conditions', '[]', 'message').maxLength);
    expect(status.conditions).toHaveLength(at('conditions').maxItems as number);
    expect(status.results?.[0]?.topFindings).toHaveLength(at('results', '[]', 'topFindings').maxItems as number);
  });

  it('when a status is bounded twice, then the second time changes nothing (no write churn)', () => {
    const once = boundStatus(oversized(STATUS) as BindingStatus);
    const twice = boundStatus(once.status);
    expect(twice.status).toEqual(once.status);
    expect(twice.cuts).toEqual([]);
    expect(sameStatus(once.status, twice.status)).toBe(true);
  });

  it('when a list of names is too long, then its last entry says how many more; a list of results cut short sets truncated', () => {
    const maxWorkloads = at('results', '[]', 'workloads').maxItems as number;
    const maxResults = at('results').maxItems as number;
    const workloads = Array.from({ length: maxWorkloads + 15 }, (_, i) => `shop/Deployment/w${i}`);
    const results = Array.from({ length: maxResults + 3 }, (_, i) => r(`img-${i}`, 'pass', i === 0 ? { workloads } : {}));
    const { status, cuts } = boundStatus({ results });
    expect(status.results).toHaveLength(maxResults);
    expect(status.truncated).toBe(true);
    expect(status.results?.[0]?.workloads).toEqual([...workloads.slice(0, maxWorkloads - 1), `… and ${15 + 1} more`]);
    expect(cuts).toEqual(
      expect.arrayContaining([
        { path: 'status.results', dropped: 3, unit: 'items' },
        { path: 'status.results[0].workloads', dropped: 16, unit: 'items' },
      ]),
    );
    // Within limits, nothing changes and nothing is added.
    const small = { results: [r('a', 'pass', { workloads: ['shop/Deployment/a'] })] };
    expect(boundStatus(small)).toEqual({ status: small, cuts: [] });
  });

  it('when a binding selects more than any message can hold, then its summarized status, bounded, fits and ends with the count', () => {
    const values = Array.from({ length: 64 }, (_, j) => `v-${j}`.padEnd(63, 'x'));
    const spec: BindingSpec = {
      podSelector: { matchExpressions: Array.from({ length: 32 }, (_, i) => ({ key: `k${i}`, operator: 'In' as const, values })) },
      images: { include: Array.from({ length: 100 }, (_, i) => `ghcr.io/${i}/`.padEnd(512, 'g')) },
    };
    const b = aBinding('huge', 'shop', spec);
    const { status: summarized } = summarizeBinding(
      b,
      { kind: 'evaluated', compiled: { mode: 'evaluate', intervalMs: 60_000 }, results: [], workloads: 0, accounts: new Set(), policies: new Map() },
      new Date(),
    );
    expect(violations(summarized, STATUS).length).toBe(2);
    const { status } = boundStatus(summarized);
    expect(violations(status, STATUS)).toEqual([]);
    for (const c of status.conditions ?? []) expect(c.message).toMatch(/^(No running image matches|This binding selects no running image) .*… \(\d+ more characters\)$/);
  });

  it('when results carry more workloads and longer messages than the schema allows, then the results list bounds each entry before counting its bytes', () => {
    const big = Array.from({ length: 3 }, (_, i) => r(`i${i}`, 'error', { message: 'x'.repeat(5000), workloads: Array.from({ length: 40 }, (_, j) => `ns/Deployment/w${j}`) }));
    const { results, truncated } = boundResults(big);
    expect(truncated).toBe(false);
    expect(violations({ results }, STATUS)).toEqual([]);
    expect(results[0]?.message).toMatch(/… \(\d+ more characters\)$/);
  });
});

describe('binding status: known-exploited vulnerabilities', () => {
  const r = (image: string, result: BindingImageResult['result'], kev?: string[]): BindingImageResult => ({ image, result, ...(kev ? { knownExploited: { count: kev.length, ids: kev } } : {}) });

  it('the Compliant message names the failing images that run known-exploited vulnerabilities, with at most three ids', () => {
    expect(exploitedNote([r('a', 'fail'), r('b', 'pass', ['CVE-1'])])).toBe('');
    expect(exploitedNote([r('a', 'fail', ['CVE-1', 'CVE-2']), r('b', 'fail', ['CVE-2', 'CVE-3', 'CVE-4']), r('c', 'fail')])).toBe(
      '; 2 of them run known-exploited vulnerabilities (CVE-1, CVE-2, CVE-3, …)',
    );
  });

  it('the summary counts images with known-exploited vulnerabilities, and when results are cut, those are kept first among the failing', () => {
    const many = Array.from({ length: MAX_RESULTS + 20 }, (_, i) => r(`img-${String(i).padStart(3, '0')}`, 'fail', i >= MAX_RESULTS ? ['CVE-9'] : undefined));
    expect(summarize(many, 1).knownExploited).toBe(20);
    expect(summarize([r('a', 'fail')], 1)).not.toHaveProperty('knownExploited');
    const { results, truncated } = boundResults(many);
    expect(truncated).toBe(true);
    expect(results.slice(0, 20).every((x) => x.knownExploited?.count === 1)).toBe(true);
  });
});
