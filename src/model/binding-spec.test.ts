import { describe, expect, it } from '@jest/globals';
import type { BindingSpec } from '../crds/types.ts';
import { aBinding } from '../testing/factories.ts';
import { DEFAULT_REEVALUATE_MS, checkVerdict, compileBinding } from './binding-spec.ts';

const labels: Record<string, Record<string, string>> = { 'team-a': { team: 'a' }, 'team-b': { team: 'b' } };
const compile = (spec: BindingSpec, namespace?: string) => compileBinding(aBinding('b', namespace, spec), (ns) => labels[ns]);
const img = (tag: string, repository = tag.replace(/:[^:/]+$/, '')) => ({ tag, repository });

describe('compileBinding (the compile step)', () => {
  it('when a spec says nothing, then it evaluates every pod of its namespace hourly, failing on stop, audit only, fail-open', () => {
    const c = compile({}, 'team-a');
    if (!c.ok) throw new Error(c.problem.message);
    expect({ ...c.value, selects: undefined, covers: undefined }).toEqual({
      intervalMs: DEFAULT_REEVALUATE_MS,
      mode: 'evaluate',
      failOn: 'stop',
      enforcement: 'audit',
      failurePolicy: 'open',
      selects: undefined,
      covers: undefined,
    });
    expect([c.value.selects({ namespace: 'team-a', labels: {} }), c.value.selects({ namespace: 'team-b', labels: {} })]).toEqual([true, false]);
    expect(c.value.covers(img('docker.io/library/nginx:1.27'))).toBe(true);
  });

  it('when podSelector and image globs are set, then only matching pods and covered images count', () => {
    const c = compile({ podSelector: { matchLabels: { app: 'web' } }, images: { include: ['docker.io/library/*'], exclude: ['**/*:debug'] } }, 'team-a');
    if (!c.ok) throw new Error(c.problem.message);
    expect([c.value.selects({ namespace: 'team-a', labels: { app: 'web' } }), c.value.selects({ namespace: 'team-a', labels: { app: 'db' } })]).toEqual([true, false]);
    expect([c.value.covers(img('docker.io/library/nginx:1.27')), c.value.covers(img('docker.io/library/nginx:debug')), c.value.covers(img('ghcr.io/org/app:1'))]).toEqual([true, false, false]);
  });

  it('when a cluster binding names namespaces and a namespaceSelector, then a pod must be in a namespace both allow', () => {
    const c = compile({ namespaces: ['team-*'], namespaceSelector: { matchLabels: { team: 'a' } } });
    if (!c.ok) throw new Error(c.problem.message);
    expect(['team-a', 'team-b', 'other'].map((namespace) => c.value.selects({ namespace, labels: {} }))).toEqual([true, false, false]);
  });

  it.each([
    { spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'In' as const, values: [] }] } }, reason: 'InvalidSelector', says: 'spec.podSelector' },
    { spec: { reevaluateInterval: '30s' }, reason: 'InvalidSpec', says: 'spec.reevaluateInterval "30s" must be a duration of at least 1m' },
    { spec: { reevaluateInterval: 'soon' }, reason: 'InvalidSpec', says: 'spec.reevaluateInterval "soon"' },
    { spec: { images: { exclude: ['*:debug'] } }, reason: 'InvalidSpec', says: 'spec.images.exclude: invalid image exclusion "*:debug"' },
  ])('when the spec is $spec, then it is refused with $reason naming the field', ({ spec, reason, says }) => {
    const c = compile(spec, 'team-a');
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.problem).toEqual({ reason, message: expect.stringContaining(says) });
  });

  it('when a cluster binding has a bad namespaceSelector, then it is refused with InvalidSelector', () => {
    const c = compile({ namespaceSelector: { matchLabels: { 'bad key!': 'x' } } });
    expect(c.ok ? undefined : c.problem.reason).toBe('InvalidSelector');
  });
});

describe('checkVerdict', () => {
  it.each([
    { check: { final_action: 'go', status: 'pass' }, failOn: 'stop', want: 'pass' },
    { check: { final_action: 'stop', status: 'fail' }, failOn: 'stop', want: 'fail' },
    { check: { final_action: 'go', status: 'fail' }, failOn: 'stop', want: 'fail' },
    { check: { final_action: 'warn', status: 'pass' }, failOn: 'stop', want: 'warn' },
    { check: { final_action: 'warn', status: 'pass' }, failOn: 'warn', want: 'fail' },
  ] as const)('when Anchore says $check with failOn $failOn, then the image is $want', ({ check, failOn, want }) => {
    expect(checkVerdict(check, failOn)).toBe(want);
  });
});
