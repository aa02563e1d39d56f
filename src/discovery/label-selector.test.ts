import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { compileLabelSelector, parseLabelSelectorString, selectorToString } from './label-selector.ts';
import type { LabelMatcher, LabelSelector, LabelSelectorRequirement } from './label-selector.ts';

function parsed(s: string): LabelMatcher {
  const r = parseLabelSelectorString(s);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function compiled(sel: LabelSelector | undefined | null): LabelMatcher {
  const r = compileLabelSelector(sel);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('parseLabelSelectorString', () => {
  const cases: { selector: string; labels: Record<string, string> | undefined; want: boolean }[] = [
    { selector: '', labels: undefined, want: true },
    { selector: '   ', labels: { a: 'b' }, want: true },
    { selector: 'a=b', labels: { a: 'b' }, want: true },
    { selector: 'a=b', labels: { a: 'c' }, want: false },
    { selector: 'a=b', labels: {}, want: false },
    { selector: 'a=b', labels: undefined, want: false },
    { selector: 'a==b', labels: { a: 'b' }, want: true },
    { selector: 'a = b', labels: { a: 'b' }, want: true },
    { selector: 'a!=b', labels: { a: 'c' }, want: true },
    { selector: 'a!=b', labels: {}, want: true },
    { selector: 'a!=b', labels: { a: 'b' }, want: false },
    { selector: 'a=', labels: { a: '' }, want: true },
    { selector: 'a=', labels: { a: 'x' }, want: false },
    { selector: 'a=,b', labels: { a: '', b: '1' }, want: true },
    { selector: 'a in (x, y)', labels: { a: 'y' }, want: true },
    { selector: 'a in (x,y)', labels: { a: 'z' }, want: false },
    { selector: 'a in (x,y)', labels: {}, want: false },
    { selector: 'a in (x,)', labels: { a: '' }, want: true },
    { selector: 'a in (,)', labels: { a: '' }, want: true },
    { selector: 'a notin (x)', labels: { a: 'y' }, want: true },
    { selector: 'a notin (x)', labels: {}, want: true },
    { selector: 'a notin (x)', labels: { a: 'x' }, want: false },
    { selector: 'a', labels: { a: '' }, want: true },
    { selector: 'a', labels: {}, want: false },
    { selector: '!a', labels: {}, want: true },
    { selector: '! a', labels: { a: 'x' }, want: false },
    { selector: 'n>3', labels: { n: '4' }, want: true },
    { selector: 'n>3', labels: { n: '3' }, want: false },
    { selector: 'n<3', labels: { n: '-10' }, want: true },
    { selector: 'n<3', labels: { n: 'x' }, want: false },
    { selector: 'n>3', labels: {}, want: false },
    { selector: 'n>9223372036854775806', labels: { n: '9223372036854775807' }, want: true },
    { selector: 'a in (in, notin)', labels: { a: 'notin' }, want: true },
    { selector: 'a=in', labels: { a: 'in' }, want: true },
    { selector: 'constructor', labels: {}, want: false },
    { selector: '!toString', labels: {}, want: true },
    { selector: 'example.com/team=web', labels: { 'example.com/team': 'web' }, want: true },
    { selector: 'A_b.c-D=E.f_G-1', labels: { 'A_b.c-D': 'E.f_G-1' }, want: true },
    {
      selector: 'a=b,c!=d,e in (x, y),f notin (z),g,!h',
      labels: { a: 'b', c: 'x', e: 'y', f: 'q', g: '' },
      want: true,
    },
    {
      selector: 'a=b,c!=d,e in (x, y),f notin (z),g,!h',
      labels: { a: 'b', c: 'x', e: 'y', f: 'q', g: '', h: '1' },
      want: false,
    },
    { selector: '\ta=b ,\nc', labels: { a: 'b', c: 'd' }, want: true },
  ];

  it.each(cases)('when "$selector" meets $labels, then it matches: $want', ({ selector, labels, want }) => {
    expect(parsed(selector)(labels)).toBe(want);
  });

  const invalid: { selector: string; reason: string }[] = [
    { selector: 'a in x', reason: "invalid label selector \"a in x\": found 'x', expected '(' after 'in'" },
    { selector: 'a in (x', reason: "missing ')'" },
    { selector: 'a in ()', reason: "values set can't be empty" },
    { selector: 'a notin ()', reason: "values set can't be empty" },
    { selector: 'a in (x y)', reason: "found 'y' in the value list of key \"a\", expected ',' or ')'" },
    { selector: 'a in (x,=)', reason: "found '='" },
    { selector: '=a', reason: "found '=', expected '!', a label key or end of string" },
    { selector: 'a,', reason: "found end of string, expected a label key after ','" },
    { selector: 'a,,b', reason: "found ',', expected a label key after ','" },
    { selector: ',a', reason: "found ','" },
    { selector: 'a b', reason: 'found \'b\' after key "a"' },
    { selector: 'a=b=c', reason: "found '=', expected ',' or end of string" },
    { selector: 'a=(b)', reason: 'found \'(\', expected a value for key "a"' },
    { selector: '!a=b', reason: "found '=', expected ',' or end of string" },
    { selector: '!', reason: 'found end of string, expected a label key' },
    { selector: '!!a', reason: "found '!', expected a label key" },
    { selector: 'in', reason: "found 'in'" },
    { selector: 'n>x', reason: "for '>' and '<' the value must be a single integer" },
    { selector: 'n>', reason: 'must be a single integer' },
    { selector: 'n>9223372036854775808', reason: 'must be a single integer' },
    { selector: 'a=b c', reason: "found 'c', expected ',' or end of string" },
    { selector: '-a', reason: 'label key "-a": the name part must consist of alphanumerics' },
    { selector: 'a/b/c', reason: 'label key "a/b/c" may contain at most one \'/\'' },
    { selector: '/a', reason: "the prefix before '/' must not be empty" },
    { selector: 'a/', reason: 'the name part must not be empty' },
    { selector: 'Example.com/a', reason: 'prefix must be a lowercase DNS subdomain' },
    { selector: 'ex_ample.com/a', reason: 'prefix must be a lowercase DNS subdomain' },
    { selector: `${'p'.repeat(254)}/a`, reason: 'must be no more than 253 characters' },
    { selector: 'k'.repeat(64), reason: 'must be no more than 63 characters' },
    { selector: `a=${'v'.repeat(64)}`, reason: 'must be no more than 63 characters' },
    { selector: 'a=-v', reason: 'label value "-v" must be empty or consist of alphanumerics' },
    { selector: 'a in (ok, b@d)', reason: 'label value "b@d"' },
    { selector: 'x'.repeat(5000), reason: 'the limit is 4096' },
  ];

  it.each(invalid)('when parsing "$selector", then it fails saying "$reason"', ({ selector, reason }) => {
    const r = parseLabelSelectorString(selector);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when given a non-string, then it fails instead of throwing', () => {
    expect(parseLabelSelectorString(undefined as unknown as string).ok).toBe(false);
  });
});

describe('compileLabelSelector', () => {
  const cases: { name: string; sel: LabelSelector | undefined | null; labels: Record<string, string> | undefined; want: boolean }[] = [
    { name: 'undefined selector', sel: undefined, labels: { a: 'b' }, want: true },
    { name: 'null selector', sel: null, labels: undefined, want: true },
    { name: 'empty selector', sel: {}, labels: {}, want: true },
    { name: 'empty lists', sel: { matchLabels: {}, matchExpressions: [] }, labels: {}, want: true },
    { name: 'matchLabels hit', sel: { matchLabels: { app: 'web', tier: 'front' } }, labels: { app: 'web', tier: 'front', x: 'y' }, want: true },
    { name: 'matchLabels miss', sel: { matchLabels: { app: 'web', tier: 'front' } }, labels: { app: 'web' }, want: false },
    { name: 'In hit', sel: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }] }, labels: { env: 'prod' }, want: true },
    { name: 'In miss', sel: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, labels: { env: 'dev' }, want: false },
    { name: 'NotIn absent', sel: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels: {}, want: true },
    { name: 'NotIn hit', sel: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels: { env: 'prod' }, want: false },
    { name: 'Exists', sel: { matchExpressions: [{ key: 'scan', operator: 'Exists' }] }, labels: { scan: '' }, want: true },
    { name: 'Exists with empty values', sel: { matchExpressions: [{ key: 'scan', operator: 'Exists', values: [] }] }, labels: {}, want: false },
    { name: 'DoesNotExist', sel: { matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] }, labels: { other: '1' }, want: true },
    {
      name: 'labels and expressions combined',
      sel: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] },
      labels: { app: 'web', skip: 'true' },
      want: false,
    },
    { name: 'prototype keys are not labels', sel: { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, labels: {}, want: false },
  ];

  it.each(cases)('when the selector is $name, then it matches: $want', ({ sel, labels, want }) => {
    expect(compiled(sel)(labels)).toBe(want);
  });

  const invalid: { name: string; sel: unknown; reason: string }[] = [
    { name: 'In without values', sel: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, reason: 'matchExpressions[0].values must be non-empty when operator is In' },
    { name: 'NotIn with missing values', sel: { matchExpressions: [{ key: 'a', operator: 'NotIn' }] }, reason: 'must be non-empty when operator is NotIn' },
    { name: 'Exists with values', sel: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, reason: 'values may not be specified when operator is Exists' },
    { name: 'DoesNotExist with values', sel: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] }, reason: 'when operator is DoesNotExist' },
    { name: 'an unknown operator', sel: { matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] }, reason: 'matchExpressions[0].operator "in" is not a valid selector operator' },
    { name: 'a Gt operator', sel: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, reason: 'not a valid selector operator' },
    { name: 'an invalid key', sel: { matchLabels: { 'bad key': 'x' } }, reason: 'matchLabels: label key "bad key"' },
    { name: 'an invalid value', sel: { matchLabels: { a: 'bad value' } }, reason: 'label value "bad value"' },
    { name: 'a non-string value', sel: { matchLabels: { a: 1 } }, reason: 'matchLabels["a"] must be a string, got number' },
    { name: 'an invalid expression value', sel: { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', '-no'] }] }, reason: 'matchExpressions[0]: label value "-no"' },
    { name: 'non-string values', sel: { matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] }, reason: 'values must be a list of strings' },
    { name: 'a missing key', sel: { matchExpressions: [{ operator: 'Exists' }] }, reason: 'matchExpressions[0].key must be a string' },
    { name: 'an empty key', sel: { matchExpressions: [{ key: '', operator: 'Exists' }] }, reason: 'label key must not be empty' },
    { name: 'matchExpressions not a list', sel: { matchExpressions: { key: 'a' } }, reason: 'matchExpressions must be a list' },
    { name: 'an expression that is not an object', sel: { matchExpressions: ['a'] }, reason: 'matchExpressions[0] must be an object' },
    { name: 'matchLabels a list', sel: { matchLabels: ['a'] }, reason: 'matchLabels must be a map' },
    { name: 'a string', sel: 'a=b', reason: 'expected an object' },
  ];

  it.each(invalid)('when the selector has $name, then it fails saying "$reason"', ({ sel, reason }) => {
    const r = compileLabelSelector(sel as LabelSelector);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });
});

describe('selectorToString', () => {
  it.each([
    { sel: {}, want: '' },
    { sel: { matchLabels: { b: '2', a: '1' } }, want: 'a=1,b=2' },
    {
      sel: {
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['front', 'back', 'front'] },
          { key: 'legacy', operator: 'DoesNotExist' },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'scan', operator: 'Exists' },
        ],
      },
      want: 'app=web,env notin (dev),!legacy,scan,tier in (back,front)',
    },
    { sel: { matchLabels: { a: '' } }, want: 'a=' },
  ] as { sel: LabelSelector; want: string }[])('when rendering $sel, then it gives "$want"', ({ sel, want }) => {
    expect(selectorToString(sel)).toBe(want);
  });

  it('when the selector is malformed, then it renders best-effort without throwing', () => {
    expect(selectorToString({ matchExpressions: [null, { key: 'a', operator: 'Bogus', values: 'x' }] } as unknown as LabelSelector)).toBe('a Bogus ()');
    expect(selectorToString(null as unknown as LabelSelector)).toBe('');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const keys = ['app', 'tier', 'example.com/team', 'k8s.io/x_y', 'n'] as const;
const valueArb = fc.constantFrom('', 'a', 'b', 'web', 'v1.2_3-x');
const labelsArb = fc.dictionary(fc.constantFrom(...keys), valueArb, { maxKeys: 5 });
const requirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.array(valueArb, { minLength: 1, maxLength: 3 }) }),
  fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
);
const selectorArb: fc.Arbitrary<LabelSelector> = fc.record(
  { matchLabels: fc.dictionary(fc.constantFrom(...keys), valueArb, { maxKeys: 3 }), matchExpressions: fc.array(requirementArb, { maxLength: 4 }) },
  { requiredKeys: [] },
);

/** Direct reading of the Kubernetes semantics, to check the compiled matchers against. */
function reference(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key] ?? '';
    const ok = e.operator === 'In' ? has && (e.values ?? []).includes(value) : e.operator === 'NotIn' ? !has || !(e.values ?? []).includes(value) : e.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

describe('label selector properties', () => {
  it('when a structured selector is rendered and re-parsed, then both forms agree with the Kubernetes semantics', () => {
    fc.assert(
      fc.property(selectorArb, labelsArb, (sel, labels) => {
        const direct = compiled(sel);
        const viaString = parseLabelSelectorString(selectorToString(sel));
        expect(viaString.ok).toBe(true);
        if (!viaString.ok) return;
        const want = reference(sel, labels);
        expect(direct(labels)).toBe(want);
        expect(viaString.value(labels)).toBe(want);
      }),
      { numRuns: 5000 },
    );
  });

  it('when given arbitrary strings, then parsing never throws and failures have reasons', () => {
    const selectorish = fc.string({ unit: fc.constantFrom('a', 'b', '=', '!', ',', '(', ')', ' ', 'in', 'notin', '/', '.', '-', '>', '<', '1'), maxLength: 40 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), selectorish), labelsArb, (s, labels) => {
        const r = parseLabelSelectorString(s);
        if (!r.ok) {
          expect(r.reason.length).toBeGreaterThan(0);
          return;
        }
        expect(typeof r.value(labels)).toBe('boolean');
        expect(typeof r.value(undefined)).toBe('boolean');
      }),
      { numRuns: 5000 },
    );
  });

  it('when given arbitrary objects, then compiling never throws and failures have reasons', () => {
    fc.assert(
      fc.property(fc.anything(), (sel) => {
        const r = compileLabelSelector(sel as LabelSelector);
        if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
        expect(() => selectorToString(sel as LabelSelector)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('when a long adversarial selector is parsed, then it finishes fast', () => {
    const inputs = ['a in ('.padEnd(4000, ','), `${'a,'.repeat(1999)}a`, '!'.repeat(4000), `a in (${'x,'.repeat(1990)}x)`, '='.repeat(4000)];
    const start = performance.now();
    for (let i = 0; i < 20; i++) for (const s of inputs) parseLabelSelectorString(s);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});
