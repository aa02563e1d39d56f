import { describe, expect, it } from '@jest/globals';
import type { PolicyCheck, PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingImageResult, BindingSpec } from '../crds/types.ts';
import { compileBinding } from '../model/binding-spec.ts';
import type { CatalogEntry } from '../model/image-catalog.ts';
import { emptyCounts, summariseVulnerabilities, type VulnerabilitySummary } from '../model/vulnerability-summary.ts';
import { aBinding } from '../testing/factories.ts';
import { type EvaluateDeps, evaluateImages } from './binding-evaluate.ts';
import type { ImageGroup } from './binding-select.ts';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const policy: PolicyRecord = { policy_id: 'default', name: 'Default', active: true };

function group(name: string, digest?: string, workloads = 1): ImageGroup {
  const tag = `docker.io/library/${name}:1`;
  const refs = new Map(
    Array.from({ length: workloads }, (_, i) => {
      const w = { kind: 'Deployment', name: `${name}-${String(i).padStart(2, '0')}`, namespace: 'shop' };
      return [`shop/Deployment/${w.name}`, w] as const;
    }),
  );
  return {
    key: `admin|${digest ?? `tag:${tag}`}`,
    account: 'admin',
    namespace: 'shop',
    image: { tag, repository: `docker.io/library/${name}`, ...(digest ? { digest } : {}) },
    workloads: refs,
  };
}

const check = (over: Partial<PolicyCheck>): PolicyCheck => ({
  policy_id: 'default',
  image_digest: '',
  evaluated_tag: '',
  status: 'pass',
  final_action: 'go',
  final_action_reason: 'policy_evaluation',
  number_of_findings: 0,
  findings: [],
  ...over,
});

function harness(
  catalog: Record<string, Partial<CatalogEntry>>,
  o: { check?: (digest: string, maxAgeMs: number) => Promise<PolicyCheck>; gone?: string[]; vulns?: (digest: string) => Promise<VulnerabilitySummary> } = {},
) {
  const rechecked: string[] = [];
  const deps: EvaluateDeps = {
    images: {
      catalog: (k) => (catalog[k] ? { polls: 0, tags: new Set(), digest: '', analysis: 'analyzed', ...catalog[k] } : undefined),
      reRegistering: (k) => o.gone?.includes(k) ?? false,
      recheck: (k) => rechecked.push(k) > 0,
    },
    cache: {
      check: async (_account, _policy, digest, _tag, maxAgeMs) => (o.check ? o.check(digest, maxAgeMs) : check({ image_digest: digest })),
      vulnerabilities: async (_account, digest) => (o.vulns ? o.vulns(digest) : { bySeverity: { ...emptyCounts(), High: 2, Low: 1 }, fixableBySeverity: emptyCounts(), fetchedAt: 0 }),
    },
  };
  return { deps, rechecked };
}

async function run(h: ReturnType<typeof harness>, groups: ImageGroup[], spec: BindingSpec = {}, previous: BindingImageResult[] = [], maxAgeMs = 3_600_000) {
  const b = aBinding('b', 'shop', spec, { results: previous });
  const c = compileBinding(b, () => undefined);
  if (!c.ok) throw new Error(c.problem.message);
  return evaluateImages(h.deps, b, c.value, groups, new Map([['admin', policy]]), maxAgeMs);
}

describe('binding evaluate step', () => {
  it('when images are in every analysis state, then each gets its result in group order', async () => {
    const groups = [group('passing', d('1')), group('failing', d('2')), group('analyzing', d('3')), group('broken', d('4')), group('unregistered', d('5'))];
    const h = harness(
      {
        [`admin|${d('1')}`]: { digest: d('1') },
        [`admin|${d('2')}`]: { digest: d('2') },
        [`admin|${d('3')}`]: { digest: d('3'), analysis: 'analyzing' },
        [`admin|${d('4')}`]: { digest: d('4'), analysis: 'analysis_failed' },
      },
      {
        check: async (digest) =>
          digest === d('2')
            ? check({ status: 'fail', final_action: 'stop', number_of_findings: 3, findings: [{ gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: 'CVE-1 critical' }] as never })
            : check({}),
      },
    );
    const e = await run(h, groups);
    expect(e.results.map((r) => [r.result, r.reason])).toEqual([
      ['pass', 'policy_evaluation'],
      ['fail', 'policy_evaluation'],
      ['pending', 'AnalysisPending'],
      ['error', 'AnalysisFailed'],
      ['pending', 'AnalysisPending'],
    ]);
    expect(e.results[1]).toMatchObject({ finalAction: 'stop', findings: 3, topFindings: [{ gate: 'vulnerabilities', action: 'stop' }] });
    expect(e.unavailable).toBeUndefined();
  });

  it('when a tag-only image is known to Anchore, then its result names the digest Anchore holds', async () => {
    const g = group('tagged');
    const h = harness({ [g.key]: { digest: d('9') } });
    expect((await run(h, [g])).results[0]).toMatchObject({ result: 'pass', digest: d('9') });
  });

  it('when many workloads run an image, then its result names all of them, sorted (the status write bounds the list and says how many more)', async () => {
    const g = group('popular', d('1'), 25);
    const h = harness({ [g.key]: { digest: d('1') } });
    const w = (await run(h, [g])).results[0]?.workloads ?? [];
    expect(w).toHaveLength(25);
    expect(w).toEqual([...w].sort());
  });

  it('when Anchore is unavailable, then the previous result stays and the evaluation says so', async () => {
    const g = group('passing', d('1'));
    const h = harness({ [g.key]: { digest: d('1') } }, { check: async () => Promise.reject(new AnchoreError('unavailable', 'check', 'HTTP 503')) });
    const previous: BindingImageResult = { image: g.image.tag, digest: d('1'), result: 'fail', reason: 'policy_evaluation' };
    const e = await run(h, [g, group('other', d('2'))], {}, [previous]);
    expect(e.unavailable).toBe('HTTP 503');
    expect(e.results[0]).toEqual(previous);
  });

  it('when Anchore answers 404 for a check, then the image is rechecked and the policy is looked up again', async () => {
    const g = group('passing', d('1'));
    const h = harness({ [g.key]: { digest: d('1') } }, { check: async () => Promise.reject(new AnchoreError('not-found', 'check', 'HTTP 404')) });
    const e = await run(h, [g]);
    expect(h.rechecked).toEqual([g.key]);
    expect([...e.policyGone]).toEqual(['admin']);
    expect(e.results[0]).toMatchObject({ result: 'pending', reason: 'AnalysisPending' });
  });

  it('when an image vanished from Anchore, then it is pending with ImageNotInAnchore', async () => {
    const g = group('gone', d('1'));
    const e = await run(harness({}, { gone: [g.key] }), [g]);
    expect(e.results[0]).toMatchObject({ result: 'pending', reason: 'ImageNotInAnchore' });
  });

  it('when a check fails otherwise, then that image is an error with the message', async () => {
    const g = group('odd', d('1'));
    const e = await run(harness({ [g.key]: { digest: d('1') } }, { check: async () => Promise.reject(new Error('unexpected body')) }), [g]);
    expect(e.results[0]).toMatchObject({ result: 'error', reason: 'EvaluationError', message: 'unexpected body' });
  });

  it('when the binding is in analyze mode, then results count vulnerabilities instead of checking a policy', async () => {
    const g = group('scanned', d('1'));
    const e = await run(harness({ [g.key]: { digest: d('1') } }, { check: async () => Promise.reject(new Error('must not check')) }), [g], { mode: 'analyze' });
    expect(e.results[0]).toMatchObject({ result: 'pass', reason: 'Analyzed', findings: 3, vulnerabilities: { High: 2, Low: 1 } });
  });

  it('when a fresh evaluation is forced, then the cache is asked for age 0', async () => {
    const g = group('passing', d('1'));
    const ages: number[] = [];
    await run(harness({ [g.key]: { digest: d('1') } }, { check: async (_d, age) => (ages.push(age), check({})) }), [g], {}, [], 0);
    expect(ages).toEqual([0]);
  });
});

describe('binding evaluate step: known-exploited vulnerabilities', () => {
  const vulns = (digest: string): Promise<VulnerabilitySummary> =>
    Promise.resolve(
      summariseVulnerabilities(
        digest === d('2')
          ? [
              { id: 'CVE-2024-3094', severity: 'Critical', package: 'xz-5.6.0', kev: true, epss: 0.86 },
              { id: 'CVE-2023-0001', severity: 'High', package: 'openssl-3', kev: true, epss: 0.4 },
              { id: 'CVE-2022-0002', severity: 'Low', package: 'zlib-1', epss: 0.001 },
            ]
          : [{ id: 'CVE-2022-0002', severity: 'Low', package: 'zlib-1', epss: 0.001 }],
        0,
      ),
    );

  it('when a failing image has known-exploited vulnerabilities, then its result says how many, names them most severe first, and gives the highest EPSS; a passing one is not looked up', async () => {
    let reads = 0;
    const h = harness(
      { 'admin|sha256:2222222222222222222222222222222222222222222222222222222222222222': { digest: d('2') }, [`admin|${d('1')}`]: { digest: d('1') }, [`admin|${d('2')}`]: { digest: d('2') } },
      {
        check: async (digest) => check({ image_digest: digest, ...(digest === d('2') ? { status: 'fail', final_action: 'stop' } : {}) }),
        vulns: (digest) => (reads++, vulns(digest)),
      },
    );
    const { results } = await run(h, [group('ok', d('1')), group('bad', d('2'))]);
    expect(results[1]).toMatchObject({ result: 'fail', knownExploited: { count: 2, ids: ['CVE-2024-3094', 'CVE-2023-0001'] }, maxEpss: 0.86 });
    expect(results[0]).not.toHaveProperty('knownExploited');
    expect(reads).toBe(1);
  });

  it('when the vulnerability read fails, then the verdict stands without the exploitation fields', async () => {
    const h = harness(
      { [`admin|${d('2')}`]: { digest: d('2') } },
      { check: async (digest) => check({ image_digest: digest, status: 'fail', final_action: 'stop' }), vulns: () => Promise.reject(new AnchoreError('unavailable', 'vulns', 'HTTP 503')) },
    );
    const { results, unavailable } = await run(h, [group('bad', d('2'))]);
    expect(results[0]).toMatchObject({ result: 'fail' });
    expect(results[0]).not.toHaveProperty('knownExploited');
    expect(unavailable).toBeUndefined();
  });
});
