import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { SEVERITIES } from '../anchore/anchore.port.ts';
import { type BindingInfo, type BindingKind, bindingKey } from '../crds/types.ts';
import type { Store, WorkloadRef } from '../kube/cluster.port.ts';
import type { RunningImage } from '../model/running-images.ts';
import type { VulnerabilitySummary } from '../model/vulnerability-summary.ts';
import { registerFindingsMetrics } from './findings-metrics.ts';
import { DEFAULT_MAX_SERIES, FINDINGS_TIERS, METRIC, OperatorMetrics } from '../telemetry/metrics.ts';

/** Samples of one metric in a text scrape. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}
function value(text: string, line: string): number | undefined {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

const counts = (n: number) => Object.fromEntries(SEVERITIES.map((s) => [s, n])) as VulnerabilitySummary['bySeverity'];

/**
 * The shape of issue 23: `images` running images, `imagesPerWorkload` of them per Deployment, `cves` filtered CVEs per
 * image (per-CVE series on), one namespaced and one cluster binding, both Ready and failing on some workloads.
 */
function cluster(o: { images: number; imagesPerWorkload: number; cves: number; maxSeries?: number }) {
  const metrics = new OperatorMetrics(undefined, { defaultMetrics: false, ...(o.maxSeries === undefined ? {} : { maxSeries: o.maxSeries }) });
  const running = new Map<string, RunningImage>();
  const vulns = new Map<string, VulnerabilitySummary>();
  const workloads = new Map<string, { workload: WorkloadRef; keys: Set<string> }>();
  for (let i = 0; i < o.images; i++) {
    const key = `admin/sha256:${i}`;
    const workload: WorkloadRef = { kind: 'Deployment', namespace: 'shop', name: `app-${Math.floor(i / o.imagesPerWorkload)}` };
    const image = { tag: `registry.example/app-${i}:1`, digest: `sha256:${i}`, repository: `registry.example/app-${i}` };
    running.set(key, { key, account: 'admin', image, firstWorkload: workload, tags: new Map() });
    const cves = Array.from({ length: o.cves }, (_, c) => ({ id: `CVE-2025-${i}-${c}`, severity: 'Critical' as const, package: 'openssl', fix: '3.0.1' }));
    vulns.set(key, { bySeverity: counts(o.cves), fixableBySeverity: counts(o.cves), cves, fetchedAt: 0 });
    const w = workloads.get(workload.name) ?? { workload, keys: new Set<string>() };
    w.keys.add(key);
    workloads.set(workload.name, w);
  }
  const binding = (kind: BindingKind, name: string, namespace?: string): BindingInfo => ({
    key: bindingKey(kind, name, namespace),
    resourceVersion: '1',
    kind,
    name,
    ...(namespace === undefined ? {} : { namespace }),
    uid: name,
    generation: 1,
    spec: {},
    status: {
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Evaluated', message: '', lastTransitionTime: '' },
        { type: 'Compliant', status: 'False', reason: 'PolicyFailed', message: '', lastTransitionTime: '' },
      ],
      summary: { workloads: workloads.size, images: o.images, passed: o.images - 10, failed: 10, warned: 0, pending: 0, errors: 0 },
    },
  });
  const bindings = [binding('AnchorePolicyBinding', 'shop', 'shop'), binding('ClusterAnchorePolicyBinding', 'all')];
  const failing = (n: number) => new Map([...workloads.values()].slice(0, n).map((w) => [w.workload.name, { workload: w.workload, images: [...w.keys].slice(0, 1) }]));
  const store: Store<BindingInfo> = { resource: 'bindings', get: () => undefined, list: () => bindings.values(), size: bindings.length, hasSynced: true, on: () => undefined };
  registerFindingsMetrics({
    metrics,
    images: { running, workloadImages: () => workloads },
    vulnerabilities: { get: (k) => vulns.get(k), entries: () => vulns.entries() },
    bindings: {
      owns: () => true,
      failuresByWorkload: new Map([
        [bindings[0]?.key ?? '', failing(10)],
        [bindings[1]?.key ?? '', failing(5)],
      ]),
      lastEvaluated: new Map(bindings.map((b) => [b.key, Date.now()])),
    },
    bindingStores: [store],
    queues: [],
    cveSeries: true,
    isLeader: () => true,
  });
  // Series each metric would have with no budget at all.
  const full = {
    [METRIC.imageFixableVulnerabilities]: o.images * SEVERITIES.length,
    [METRIC.workloadVulnerabilities]: workloads.size * SEVERITIES.length,
    [METRIC.bindingImages]: 2 * 5,
    [METRIC.bindingReady]: 2,
    [METRIC.bindingCompliant]: 2,
    [METRIC.bindingLastEvaluation]: 2,
    [METRIC.workloadPolicyFailures]: Math.min(10, workloads.size) + Math.min(5, workloads.size),
    [METRIC.imageVulnerabilities]: o.images * SEVERITIES.length,
    [METRIC.vulnerabilityInfo]: o.images * o.cves,
  };
  const critical = Object.entries(full)
    .filter(([name]) => FINDINGS_TIERS[name] === 'critical')
    .reduce((a, [, n]) => a + n, 0);
  return { metrics, full, critical };
}

describe('findings series budget (issue 23: the budget must not silence the shipped alerts)', () => {
  it('when 1,500 images with per-CVE series exceed the budget, then every binding and workload series is still scraped and only per-CVE series are cut', async () => {
    const probe = cluster({ images: 1500, imagesPerWorkload: 10, cves: 4 });
    // Room for the critical and per-image series and 500 per-CVE ones: only per-CVE series must be cut.
    const maxSeries = probe.critical + probe.full[METRIC.imageVulnerabilities] + 500;
    const { metrics, full } = cluster({ images: 1500, imagesPerWorkload: 10, cves: 4, maxSeries });
    const text = await metrics.registry.metrics();
    for (const name of [
      METRIC.bindingReady,
      METRIC.bindingCompliant,
      METRIC.workloadPolicyFailures,
      METRIC.bindingImages,
      METRIC.bindingLastEvaluation,
      METRIC.workloadVulnerabilities,
      METRIC.imageFixableVulnerabilities,
      METRIC.imageVulnerabilities,
    ]) {
      expect([name, samples(text, name).length]).toEqual([name, full[name]]);
    }
    expect(value(text, `${METRIC.bindingReady}{kind="AnchorePolicyBinding",namespace="shop",binding="shop",reason="Evaluated"}`)).toBe(1);
    expect(value(text, `${METRIC.bindingCompliant}{kind="ClusterAnchorePolicyBinding",namespace="",binding="all"}`)).toBe(0);
    expect(samples(text, METRIC.vulnerabilityInfo)).toHaveLength(500);
    const cut = full[METRIC.vulnerabilityInfo] - 500;
    // What was dropped, said three ways: by metric (counter), by tier (gauge the alert reads), and what was kept.
    expect(value(text, `${METRIC.seriesDropped}{metric="${METRIC.vulnerabilityInfo}"}`)).toBe(cut);
    for (const name of Object.keys(full).filter((n) => n !== METRIC.vulnerabilityInfo)) expect([name, value(text, `${METRIC.seriesDropped}{metric="${name}"}`)]).toEqual([name, 0]);
    expect(value(text, `${METRIC.seriesCut}{tier="cve"}`)).toBe(cut);
    expect(value(text, `${METRIC.seriesCut}{tier="image"}`)).toBe(0);
    expect(value(text, `${METRIC.seriesCut}{tier="account"}`)).toBe(0);
    expect(value(text, `${METRIC.seriesExported}{tier="critical"}`)).toBe(probe.critical);
    expect(probe.critical).toBe(9_931); // the figure in docs/reliability.md
    expect(value(text, `${METRIC.seriesExported}{tier="cve"}`)).toBe(500);
    expect(metrics.budget.used).toBe(maxSeries);
  });

  it('when the critical series alone exceed the budget (default 10,000), then they are all exported and every per-image and per-CVE series is cut', async () => {
    const { metrics, full, critical } = cluster({ images: 1700, imagesPerWorkload: 10, cves: 4 });
    expect(critical).toBe(11_251); // above DEFAULT_MAX_SERIES; the figure in docs/reliability.md
    expect(critical).toBeGreaterThan(DEFAULT_MAX_SERIES);
    const text = await metrics.registry.metrics();
    for (const [name, n] of Object.entries(full).filter(([x]) => FINDINGS_TIERS[x] === 'critical')) expect([name, samples(text, name).length]).toEqual([name, n]);
    expect(samples(text, METRIC.imageVulnerabilities)).toEqual([]);
    expect(samples(text, METRIC.vulnerabilityInfo)).toEqual([]);
    expect(value(text, `${METRIC.seriesCut}{tier="image"}`)).toBe(full[METRIC.imageVulnerabilities]);
    expect(value(text, `${METRIC.seriesCut}{tier="cve"}`)).toBe(full[METRIC.vulnerabilityInfo]);
    expect(value(text, `${METRIC.seriesExported}{tier="critical"}`)).toBe(critical);
    expect(value(text, METRIC.seriesBudget)).toBe(DEFAULT_MAX_SERIES);
  });

  it('when the cluster fits the budget, then nothing is cut and the drop gauges read 0', async () => {
    const { metrics, full } = cluster({ images: 20, imagesPerWorkload: 4, cves: 2 });
    const text = await metrics.registry.metrics();
    for (const [name, n] of Object.entries(full)) expect([name, samples(text, name).length]).toEqual([name, n]);
    for (const tier of ['account', 'image', 'cve']) expect(value(text, `${METRIC.seriesCut}{tier="${tier}"}`)).toBe(0);
  });
});

/** Every expression of an alerting or recording rule in a Prometheus rule file. */
function ruleExpressions(file: string): Array<{ rule: string; expr: string }> {
  const doc = parseYaml(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ rule: r.alert ?? r.record ?? '?', expr: String(r.expr) })));
}

describe('series tiers and the shipped alert rules', () => {
  const files = ['deploy/monitoring/prometheus-rules.yaml', 'deploy/helm/anchore-operator/files/prometheus-rules.yaml'];
  const known = new Set<string>(Object.values(METRIC));

  it.each(files)('when %s is read, then every findings metric an alert or recording rule references is in the critical tier (never cut by the budget)', (file) => {
    const referenced = new Map<string, string>();
    for (const { rule, expr } of ruleExpressions(file)) {
      for (const m of expr.matchAll(/\banchore_operator_[a-z0-9_]+/g)) referenced.set(m[0].replace(/_(bucket|sum|count)$/, ''), rule);
    }
    // A typo or a metric that does not exist would never fire: every name must be one the operator exports.
    expect([...referenced.keys()].filter((n) => !known.has(n))).toEqual([]);
    const cuttable = [...referenced].filter(([name]) => FINDINGS_TIERS[name] !== undefined && FINDINGS_TIERS[name] !== 'critical').map(([name, rule]) => `${rule}: ${name} (${FINDINGS_TIERS[name]})`);
    expect(cuttable).toEqual([]);
    // Not vacuous: the findings alerts and the drop alert are among them.
    expect([...referenced.keys()]).toEqual(expect.arrayContaining([METRIC.workloadPolicyFailures, METRIC.imageFixableVulnerabilities, METRIC.seriesCut]));
  });

  it('when the findings metrics are registered, then each has the tier FINDINGS_TIERS declares and binding- and workload-level ones are critical', () => {
    const { metrics } = cluster({ images: 1, imagesPerWorkload: 1, cves: 1 });
    for (const name of [METRIC.bindingImages, METRIC.bindingReady, METRIC.bindingCompliant, METRIC.bindingLastEvaluation, METRIC.workloadPolicyFailures, METRIC.workloadVulnerabilities]) {
      expect([name, metrics.budget.tierOf(name)]).toEqual([name, 'critical']);
    }
    expect(metrics.budget.tierOf(METRIC.imageVulnerabilities)).toBe('image');
    expect(metrics.budget.tierOf(METRIC.vulnerabilityInfo)).toBe('cve');
  });

  it('when a findings gauge has no declared tier, then registering it throws', () => {
    const m = new OperatorMetrics(undefined, { defaultMetrics: false });
    expect(() => m.findingsGauge('anchore_operator_undeclared', 'x', [], () => [])).toThrow(/FINDINGS_TIERS/);
  });
});

describe('known-exploited and EPSS series', () => {
  it('when some running images have known-exploited vulnerabilities, then only they and their workloads get a KEV series, and every scored workload its highest EPSS', async () => {
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const running = new Map<string, RunningImage>();
    const vulns = new Map<string, VulnerabilitySummary>();
    const workloads = new Map<string, { workload: WorkloadRef; keys: Set<string> }>();
    const add = (i: number, workload: string, v: Partial<VulnerabilitySummary>): void => {
      const key = `admin/sha256:${i}`;
      const w: WorkloadRef = { kind: 'Deployment', namespace: 'shop', name: workload };
      running.set(key, { key, account: 'admin', image: { tag: `registry.example/app-${i}:1`, digest: `sha256:${i}`, repository: `registry.example/app-${i}` }, firstWorkload: w, tags: new Map() });
      vulns.set(key, { bySeverity: counts(1), fixableBySeverity: counts(0), fetchedAt: 0, ...v });
      const entry = workloads.get(workload) ?? { workload: w, keys: new Set<string>() };
      entry.keys.add(key);
      workloads.set(workload, entry);
    };
    // web runs two images sharing one KEV id; api none; legacy an image summarised before KEV was read (no fields).
    add(1, 'web', { knownExploited: ['CVE-2024-3094', 'CVE-2023-1'], knownExploitedCount: 2, maxEpss: { id: 'CVE-2024-3094', score: 0.86 } });
    add(2, 'web', { knownExploited: ['CVE-2024-3094'], knownExploitedCount: 1, maxEpss: { id: 'CVE-2024-3094', score: 0.86 } });
    add(3, 'api', { knownExploited: [], knownExploitedCount: 0, maxEpss: { id: 'CVE-2022-9', score: 0.002 } });
    add(4, 'legacy', {});
    registerFindingsMetrics({
      metrics,
      images: { running, workloadImages: () => workloads },
      vulnerabilities: { get: (k) => vulns.get(k), entries: () => vulns.entries() },
      bindings: { owns: () => true, failuresByWorkload: new Map(), lastEvaluated: new Map() },
      bindingStores: [],
      queues: [],
      cveSeries: false,
      isLeader: () => true,
    });
    const text = await metrics.registry.metrics();
    expect(samples(text, METRIC.imageKnownExploited).sort()).toEqual([
      `${METRIC.imageKnownExploited}{account="admin",image="registry.example/app-1:1",digest="sha256:1"} 2`,
      `${METRIC.imageKnownExploited}{account="admin",image="registry.example/app-2:1",digest="sha256:2"} 1`,
    ]);
    // Distinct ids across the workload's images: 2, not 3.
    expect(samples(text, METRIC.workloadKnownExploited)).toEqual([`${METRIC.workloadKnownExploited}{namespace="shop",kind="Deployment",workload="web"} 2`]);
    expect(samples(text, METRIC.workloadMaxEpss).sort()).toEqual([
      `${METRIC.workloadMaxEpss}{namespace="shop",kind="Deployment",workload="api"} 0.002`,
      `${METRIC.workloadMaxEpss}{namespace="shop",kind="Deployment",workload="web"} 0.86`,
    ]);
    expect(metrics.budget.tierOf(METRIC.workloadKnownExploited)).toBe('critical');
    expect(metrics.budget.tierOf(METRIC.workloadMaxEpss)).toBe('image');
  });
});
