import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { compileGlobs, MAX_GLOB_LENGTH } from './glob.ts';

function matcher(patterns: string[]): (value: string) => boolean {
  const r = compileGlobs(patterns);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('compileGlobs', () => {
  const cases: { patterns: string[]; value: string; want: boolean }[] = [
    { patterns: [], value: '', want: false },
    { patterns: [], value: 'anything', want: false },
    { patterns: ['kube-system'], value: 'kube-system', want: true },
    { patterns: ['kube-system'], value: 'kube-system2', want: false },
    { patterns: ['kube-*'], value: 'kube-system', want: true },
    { patterns: ['kube-*'], value: 'kube-', want: true },
    { patterns: ['kube-*'], value: 'kube', want: false },
    { patterns: ['*-system'], value: 'kube-system', want: true },
    { patterns: ['*'], value: '', want: true },
    { patterns: ['*'], value: 'a/b', want: false },
    { patterns: ['**'], value: 'a/b/c', want: true },
    { patterns: ['**'], value: '', want: true },
    { patterns: ['***'], value: 'a/b', want: true },
    { patterns: ['?'], value: 'a', want: true },
    { patterns: ['?'], value: '', want: false },
    { patterns: ['?'], value: 'ab', want: false },
    { patterns: ['?'], value: '/', want: false },
    { patterns: ['a?c'], value: 'abc', want: true },
    { patterns: ['a?c'], value: 'a/c', want: false },
    { patterns: ['docker.io/library/*'], value: 'docker.io/library/nginx', want: true },
    { patterns: ['docker.io/library/*'], value: 'docker.io/library/nginx:1.25', want: true },
    { patterns: ['docker.io/*'], value: 'docker.io/library/nginx', want: false },
    { patterns: ['docker.io/**'], value: 'docker.io/library/nginx:1.25', want: true },
    { patterns: ['**/nginx:*'], value: 'docker.io/library/nginx:1.25', want: true },
    { patterns: ['**/nginx:*'], value: 'docker.io/library/nginx', want: false },
    { patterns: ['*/*/nginx'], value: 'docker.io/library/nginx', want: true },
    { patterns: ['*/*/nginx'], value: 'docker.io/nginx', want: false },
    { patterns: ['registry.k8s.io/**'], value: 'registry.k8s.io/pause:3.9', want: true },
    { patterns: ['registry.k8s.io/**'], value: 'registry.k8s.io.evil.com/pause', want: false },
    { patterns: ['a**b'], value: 'a/x/y/b', want: true },
    { patterns: ['a*b'], value: 'a/x/b', want: false },
    { patterns: ['ab*ba'], value: 'aba', want: false },
    { patterns: ['ab*ba'], value: 'abba', want: true },
    { patterns: ['[abc]'], value: '[abc]', want: true },
    { patterns: ['[abc]'], value: 'a', want: false },
    { patterns: ['a.b'], value: 'axb', want: false },
    { patterns: ['a\\*'], value: 'a\\xyz', want: true },
    { patterns: ['(a|b)+'], value: '(a|b)+', want: true },
    { patterns: ['x', 'y*'], value: 'yes', want: true },
    { patterns: ['x', 'y*'], value: 'no', want: false },
    { patterns: ['*a*b*c'], value: 'xaybzc', want: true },
    { patterns: ['*a*b*c'], value: 'xaybz/c', want: false },
    { patterns: ['**a**b**c'], value: 'x/a/y/b/z/c', want: true },
    { patterns: ['*?*'], value: '', want: false },
    { patterns: ['*?*'], value: 'q', want: true },
    { patterns: ['ns-??-*'], value: 'ns-eu-prod', want: true },
    { patterns: ['ns-??-*'], value: 'ns-e-prod', want: false },
    { patterns: ['é*'], value: 'éa', want: true },
  ];

  it.each(cases)('when $patterns is matched against "$value", then the result is $want', ({ patterns, value, want }) => {
    expect(matcher(patterns)(value)).toBe(want);
  });

  const invalid: { patterns: unknown; reason: string }[] = [
    { patterns: [''], reason: 'invalid glob pattern at index 0: it is empty' },
    { patterns: ['a', 5], reason: 'invalid glob pattern at index 1: expected a string, got number' },
    { patterns: ['a', null], reason: 'got null' },
    { patterns: ['x'.repeat(MAX_GLOB_LENGTH + 1)], reason: `the limit is ${MAX_GLOB_LENGTH}` },
    { patterns: 'kube-*', reason: 'expected a list of strings' },
    { patterns: Array.from({ length: 1001 }, () => 'a'), reason: 'the limit is 1000' },
  ];

  it.each(invalid)('when compiling $patterns, then it fails saying "$reason"', ({ patterns, reason }) => {
    const r = compileGlobs(patterns as string[]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when the matcher is given a non-string, then it answers false', () => {
    expect(matcher(['**'])(undefined as unknown as string)).toBe(false);
  });

  const pathological: { pattern: string; value: string }[] = [
    { pattern: `${'a*'.repeat(20)}b`, value: 'a'.repeat(4096) },
    { pattern: `${'a**'.repeat(20)}b`, value: 'a'.repeat(4096) },
    { pattern: `${'*a'.repeat(30)}*b`, value: 'a/'.repeat(2048) },
    { pattern: `${'?*'.repeat(40)}x`, value: 'y'.repeat(4096) },
    { pattern: '*a'.repeat(MAX_GLOB_LENGTH / 2), value: 'a'.repeat(4096) },
    { pattern: '**a'.repeat(Math.floor(MAX_GLOB_LENGTH / 3)), value: 'a'.repeat(4000) },
  ];

  it.each(pathological)('when a pathological pattern ($pattern.length chars) meets a long value, then matching finishes fast', ({ pattern, value }) => {
    const m = matcher([pattern]);
    const start = performance.now();
    for (let i = 0; i < 5; i++) m(value);
    expect(performance.now() - start).toBeLessThan(1500);
  });

  it('when matching 10,000 image names against a handful of globs, then it takes milliseconds', () => {
    const m = matcher(['registry.k8s.io/**', 'docker.io/library/busybox:*', '**/pause:*', 'quay.io/*/sidecar*']);
    const values = Array.from({ length: 10_000 }, (_, i) => `ghcr.io/org-${i % 97}/service-${i}:v${i % 13}`);
    const start = performance.now();
    let hits = 0;
    for (const v of values) if (m(v)) hits++;
    expect(hits).toBe(0);
    expect(performance.now() - start).toBeLessThan(500);
  });
});

/** Reference semantics via RegExp, safe only for the tiny inputs generated below. */
function referenceMatch(pattern: string, value: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length;) {
    if (pattern[i] === '*') {
      let j = i;
      while (pattern[j] === '*') j++;
      re += j - i >= 2 ? '[\\s\\S]*' : '[^/]*';
      i = j;
    } else if (pattern[i] === '?') {
      re += '[^/]';
      i++;
    } else {
      re += (pattern[i] ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
    }
  }
  return new RegExp(`${re}$`, 'u').test(value);
}

describe('compileGlobs properties', () => {
  const patternChars = fc.constantFrom('a', 'b', '/', '*', '?', '.', '-');
  const valueChars = fc.constantFrom('a', 'b', '/', '.', '-');

  it('when compared with a regular-expression reference on small inputs, then it agrees', () => {
    fc.assert(
      fc.property(fc.string({ unit: patternChars, minLength: 1, maxLength: 10 }), fc.string({ unit: valueChars, maxLength: 12 }), (pattern, value) => {
        expect(matcher([pattern])(value)).toBe(referenceMatch(pattern, value));
      }),
      { numRuns: 10_000 },
    );
  });

  it('when given arbitrary patterns and values, then compiling and matching never throw', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 5 }), fc.string({ unit: 'binary', maxLength: 60 }), (patterns, value) => {
        const r = compileGlobs(patterns);
        if (!r.ok) {
          expect(r.reason.length).toBeGreaterThan(0);
          return;
        }
        expect(typeof r.value(value)).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });

  it('when a pattern has no wildcards, then it matches exactly itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '/', ':', '.'), minLength: 1, maxLength: 20 }), fc.string({ maxLength: 20 }), (literal, other) => {
        const m = matcher([literal]);
        expect(m(literal)).toBe(true);
        expect(m(other)).toBe(other === literal);
      }),
      { numRuns: 2000 },
    );
  });
});
