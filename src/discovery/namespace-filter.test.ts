import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { compileNamespaceFilter } from './namespace-filter.ts';
import type { NamespaceFilterConfig } from './namespace-filter.ts';

describe('compileNamespaceFilter', () => {
  const cases: { name: string; cfg: NamespaceFilterConfig; ns: string; labels?: Record<string, string>; want: boolean }[] = [
    { name: 'the config is empty', cfg: {}, ns: 'anything', want: true },
    { name: 'include lists are empty', cfg: { include: [], exclude: [] }, ns: 'default', want: true },
    { name: 'the namespace is included by name', cfg: { include: ['team-a'] }, ns: 'team-a', want: true },
    { name: 'the namespace is not included', cfg: { include: ['team-a'] }, ns: 'team-b', want: false },
    { name: 'the namespace is included by glob', cfg: { include: ['team-*'] }, ns: 'team-b', want: true },
    { name: 'the namespace is excluded by name', cfg: { exclude: ['kube-system'] }, ns: 'kube-system', want: false },
    { name: 'the namespace is excluded by glob', cfg: { exclude: ['kube-*'] }, ns: 'kube-public', want: false },
    { name: 'include and exclude both match (exclude wins)', cfg: { include: ['team-*'], exclude: ['team-secret'] }, ns: 'team-secret', want: false },
    { name: 'include matches and exclude does not', cfg: { include: ['team-*'], exclude: ['team-secret'] }, ns: 'team-open', want: true },
    { name: 'the label selector matches', cfg: { labelSelector: 'scan=true' }, ns: 'a', labels: { scan: 'true' }, want: true },
    { name: 'the label selector does not match', cfg: { labelSelector: 'scan=true' }, ns: 'a', labels: { scan: 'false' }, want: false },
    { name: 'the namespace has no labels and the selector needs one', cfg: { labelSelector: 'scan' }, ns: 'a', want: false },
    { name: 'the selector excludes an opt-out label', cfg: { labelSelector: '!anchore.example.com/skip' }, ns: 'a', labels: { 'anchore.example.com/skip': '' }, want: false },
    { name: 'the name is included but the selector fails', cfg: { include: ['a'], labelSelector: 'env in (prod)' }, ns: 'a', labels: { env: 'dev' }, want: false },
    { name: 'the name is excluded although the selector matches', cfg: { exclude: ['a'], labelSelector: 'env' }, ns: 'a', labels: { env: 'x' }, want: false },
    { name: 'the selector string is empty', cfg: { labelSelector: '' }, ns: 'a', want: true },
  ];

  it.each(cases)('when $name, then the namespace is watched: $want', ({ cfg, ns, labels, want }) => {
    const r = compileNamespaceFilter(cfg);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value(ns, labels)).toBe(want);
  });

  const invalid: { name: string; cfg: unknown; reason: string }[] = [
    { name: 'an include pattern is empty', cfg: { include: [''] }, reason: 'invalid namespace filter include: invalid glob pattern at index 0: it is empty' },
    { name: 'an exclude pattern is not a string', cfg: { exclude: [3] }, reason: 'invalid namespace filter exclude: invalid glob pattern at index 0: expected a string' },
    { name: 'include is not a list', cfg: { include: 'team-*' }, reason: 'invalid namespace filter include: invalid glob list' },
    {
      name: 'the selector is malformed',
      cfg: { labelSelector: 'env in prod' },
      reason: "invalid namespace filter labelSelector: invalid label selector \"env in prod\": found 'prod', expected '(' after 'in'",
    },
    { name: 'the config is not an object', cfg: null, reason: 'invalid namespace filter: expected an object' },
  ];

  it.each(invalid)('when $name, then compiling fails saying "$reason"', ({ cfg, reason }) => {
    const r = compileNamespaceFilter(cfg as NamespaceFilterConfig);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when called with a non-string name, then it answers false', () => {
    const r = compileNamespaceFilter({});
    expect(r.ok && r.value(undefined as unknown as string, undefined)).toBe(false);
  });
});

describe('compileNamespaceFilter properties', () => {
  const nsName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?$/);

  it('when a namespace matches an exclude pattern, then it is never watched, whatever else is configured', () => {
    fc.assert(
      fc.property(nsName, fc.array(fc.constantFrom('*', 'team-*', 'a*', '*-x', '?*'), { maxLength: 3 }), (ns, include) => {
        const r = compileNamespaceFilter({ include, exclude: [ns] });
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value(ns, {})).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('when given arbitrary configs, then compiling and filtering never throw', () => {
    fc.assert(
      fc.property(
        fc.record({ include: fc.array(fc.string(), { maxLength: 3 }), exclude: fc.array(fc.string(), { maxLength: 3 }), labelSelector: fc.string({ maxLength: 30 }) }, { requiredKeys: [] }),
        fc.string({ maxLength: 20 }),
        (cfg, ns) => {
          const r = compileNamespaceFilter(cfg);
          if (!r.ok) {
            expect(r.reason.length).toBeGreaterThan(0);
            return;
          }
          expect(typeof r.value(ns, { a: 'b' })).toBe('boolean');
        },
      ),
      { numRuns: 3000 },
    );
  });
});
