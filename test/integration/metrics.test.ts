import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cachedBinaries } from '../cluster/local-cluster.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { type Sample, parsePrometheusText, scrape, valueOf } from '../support/prometheus.ts';

/* Findings metrics from a live scrape of a known scenario (real cluster, simulator). */
const monitoring = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'monitoring');

/** Metric names an expression text references (histogram series map to their family). */
function referencedMetrics(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/anchore_operator_[a-z_]+/g)) names.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  return names;
}
describe('findings metrics (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('metrics');
  let nginx = '';
  let redis = '';

  beforeAll(async () => {
    // Slow analysis leaves time to plant known vulnerabilities before Anchore "finishes".
    sim = await startSimulator({ config: { analysis: { queued_ms: 500, analyzing_ms: 1500 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('m'), NAMESPACES_INCLUDE: ns }));
    await apply(
      deployment(ns, 'shop', 2, [
        { name: 'web', image: 'nginx:1.27' },
        { name: 'cache', image: 'redis:7.2' },
      ]),
    );
    await apply(deployment(ns, 'edge', 1, [{ name: 'web', image: 'nginx:1.27' }]));
    const pods = await waitForRunningPods(ns, 'app=shop', 2);
    nginx = digestOf(pods[0]?.containers.find((c) => c.name === 'web')?.imageID ?? '') ?? '';
    redis = digestOf(pods[0]?.containers.find((c) => c.name === 'cache')?.imageID ?? '') ?? '';
    sim.setVulnerabilities(nginx, [
      { vuln: 'CVE-A', severity: 'Critical', fix: '1.27.1', package: 'openssl', is_kev: true, epss: 0.9 },
      { vuln: 'CVE-B', severity: 'High', package: 'zlib', is_kev: false, epss: 0.02 },
      { vuln: 'CVE-C', severity: 'High', fix: '2', package: 'curl', is_kev: false, epss: 0.001 },
    ]);
    sim.setVulnerabilities(redis, [{ vuln: 'CVE-D', severity: 'Medium', package: 'libc', is_kev: false, epss: 0.003 }]);
    sim.setVerdict(nginx, { status: 'fail', final_action: 'stop' });
    sim.setVerdict(redis, { status: 'pass', final_action: 'go' });
    await apply(
      JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name: 'shop', namespace: ns }, spec: { podSelector: { matchLabels: { app: 'shop' } } } }),
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  const scrapeUntil = (cond: (s: Sample[]) => boolean) =>
    eventually(
      async () => {
        const s = await scrape(operator.op.metricsPort);
        return cond(s) ? s : undefined;
      },
      30_000,
      250,
    );

  it('when images, vulnerabilities and verdicts are known, then a scrape shows exactly those values', async () => {
    // Waits for the settled scenario: both images evaluated (none pending) and redis's report read. A weaker wait (one
    // verdict in) raced the second image's evaluation on a loaded machine.
    const s = await scrapeUntil(
      (x) =>
        valueOf(x, 'anchore_operator_binding_images', { binding: 'shop', result: 'fail' }) === 1 &&
        valueOf(x, 'anchore_operator_binding_images', { binding: 'shop', result: 'pass' }) === 1 &&
        valueOf(x, 'anchore_operator_binding_images', { binding: 'shop', result: 'pending' }) === 0 &&
        valueOf(x, 'anchore_operator_binding_last_evaluation_timestamp_seconds', { binding: 'shop' }) !== undefined &&
        valueOf(x, 'anchore_operator_binding_compliant', { binding: 'shop' }) !== undefined &&
        valueOf(x, 'anchore_operator_workload_policy_failed_images', { binding: 'shop', workload: 'shop' }) === 1 &&
        valueOf(x, 'anchore_operator_images', { account: 'admin', analysis_status: 'analyzed' }) === 2 &&
        valueOf(x, 'anchore_operator_image_vulnerabilities', { account: 'admin', digest: nginx, severity: 'Critical', image: 'docker.io/library/nginx:1.27' }) === 1 &&
        valueOf(x, 'anchore_operator_image_vulnerabilities', { digest: redis, severity: 'Medium' }) === 1,
    );
    const img = (digest: string, severity: string) => valueOf(s, 'anchore_operator_image_vulnerabilities', { account: 'admin', digest, severity });
    expect([img(nginx, 'Critical'), img(nginx, 'High'), img(nginx, 'Medium'), img(nginx, 'Low')]).toEqual([1, 2, 0, 0]);
    expect(valueOf(s, 'anchore_operator_image_vulnerabilities', { digest: nginx, severity: 'Critical', image: 'docker.io/library/nginx:1.27' })).toBe(1);
    expect(valueOf(s, 'anchore_operator_image_fixable_vulnerabilities', { digest: nginx, severity: 'High' })).toBe(1);
    expect(valueOf(s, 'anchore_operator_image_fixable_vulnerabilities', { digest: nginx, severity: 'Critical' })).toBe(1);
    const wl = (workload: string, severity: string) => valueOf(s, 'anchore_operator_workload_vulnerabilities', { namespace: ns, kind: 'Deployment', workload, severity });
    expect([wl('shop', 'Critical'), wl('shop', 'High'), wl('shop', 'Medium')]).toEqual([1, 2, 1]);
    expect([wl('edge', 'Critical'), wl('edge', 'Medium')]).toEqual([1, 0]);
    const b = { kind: 'AnchorePolicyBinding', namespace: ns, binding: 'shop' };
    expect(['pass', 'fail', 'warn', 'pending', 'error'].map((result) => valueOf(s, 'anchore_operator_binding_images', { ...b, result }))).toEqual([1, 1, 0, 0, 0]);
    expect(valueOf(s, 'anchore_operator_binding_compliant', b)).toBe(0);
    expect(valueOf(s, 'anchore_operator_binding_ready', b)).toBe(1);
    expect(valueOf(s, 'anchore_operator_workload_policy_failed_images', { binding: 'shop', namespace: ns, kind: 'Deployment', workload: 'shop' })).toBe(1);
    expect(valueOf(s, 'anchore_operator_workload_policy_failed_images', { binding: 'shop', workload: 'edge' })).toBeUndefined();
    expect(valueOf(s, 'anchore_operator_binding_last_evaluation_timestamp_seconds', b)).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(valueOf(s, 'anchore_operator_images', { account: 'admin', analysis_status: 'analyzed' })).toBe(2);
    // Known-exploited first: nginx runs CVE-A (on the KEV list), redis nothing known-exploited.
    expect(valueOf(s, 'anchore_operator_image_known_exploited_vulnerabilities', { digest: nginx })).toBe(1);
    expect(valueOf(s, 'anchore_operator_image_known_exploited_vulnerabilities', { digest: redis })).toBeUndefined();
    expect(['shop', 'edge'].map((workload) => valueOf(s, 'anchore_operator_workload_known_exploited_vulnerabilities', { namespace: ns, workload }))).toEqual([1, 1]);
    expect(['shop', 'edge'].map((workload) => valueOf(s, 'anchore_operator_workload_max_epss', { namespace: ns, workload }))).toEqual([0.9, 0.9]);
    expect(valueOf(s, 'anchore_operator_leader')).toBe(1);
    // No label set appears twice (a duplicate would make Prometheus reject the scrape).
    const ids = s.map((x) => `${x.name}${JSON.stringify(Object.entries(x.labels).sort())}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('when the dashboard and the alert rules are read, then every metric they reference is in a live scrape of this scenario', async () => {
    const dashboard = readFileSync(join(monitoring, 'grafana-dashboard.json'), 'utf8');
    const rules = readFileSync(join(monitoring, 'prometheus-rules.yaml'), 'utf8');
    const wanted = new Set([...referencedMetrics(dashboard), ...referencedMetrics(rules)]);
    expect(wanted.size).toBeGreaterThan(10);
    const admission = [...wanted].filter((n) => n.startsWith('anchore_operator_admission_'));
    expect(admission.length).toBeGreaterThanOrEqual(6);
    // Admission is off in this scenario (ADMISSION_ENABLED=false): its families are registered, so the scrape declares
    // them (# TYPE), but they have samples only once a review was answered. Declared is enough for those.
    const missingFromScrape = async (): Promise<string[]> => {
      const text = await (await fetch(`http://127.0.0.1:${operator.op.metricsPort}/metrics`)).text();
      const present = new Set(parsePrometheusText(text).map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
      const declared = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
      return [...wanted].filter((n) => !present.has(n) && !(admission.includes(n) && declared.has(n)));
    };
    // Read until the scenario has produced every series (this test does not rely on the previous one's wait).
    let missing: string[] = [];
    await eventually(async () => (missing = await missingFromScrape()).length === 0, 30_000, 250).catch(() => undefined);
    expect(missing).toEqual([]);
  });

  it('when promtool checks the live scrape, the rules and their unit tests, then everything passes', async () => {
    const promtool = cachedBinaries()?.['PROMTOOL'];
    expect(promtool).toBeDefined();
    const text = await (await fetch(`http://127.0.0.1:${operator.op.metricsPort}/metrics`)).text();
    // promtool exits non-zero on lint findings; ours must have none. prom-client's default process metrics include
    // three gauges named *_total (nodejs_active_{handles,requests,resources}_total) that we cannot rename.
    let lint = '';
    try {
      lint = execFileSync(promtool as string, ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      lint = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    }
    const findings = lint
      .split('\n')
      .filter((l) => l.trim() && !/^anchore_operator_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l.trim()));
    expect(findings).toEqual([]);
    // Every rule in the file is one promtool found (the count is the file's, so adding an alert needs no edit here).
    const rules = (readFileSync(join(monitoring, 'prometheus-rules.yaml'), 'utf8').match(/^\s*- (alert|record): /gm) ?? []).length;
    expect(rules).toBeGreaterThanOrEqual(13);
    expect(execFileSync(promtool as string, ['check', 'rules', join(monitoring, 'prometheus-rules.yaml')], { encoding: 'utf8' })).toContain(`SUCCESS: ${rules} rules found`);
    expect(execFileSync(promtool as string, ['test', 'rules', join(monitoring, 'tests', 'rules.test.yaml')], { encoding: 'utf8' })).toContain('SUCCESS');
  });

  it('when the series budget is far too small, then a second operator still exports every critical series, cuts the per-image and per-CVE ones and says so', async () => {
    const capped = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('cap'),
        NAMESPACES_INCLUDE: ns,
        METRICS_MAX_SERIES: '5',
        METRICS_CVE_SERIES: 'true',
        INVENTORY_ENABLED: 'false',
        INTEGRATION_ENABLED: 'false',
      }),
    );
    try {
      const b = { kind: 'AnchorePolicyBinding', namespace: ns, binding: 'shop' };
      // Settled: both images evaluated and both reports read (image tier: 2 images x 6 severities, nginx's
      // known-exploited series and the two workloads' EPSS cut; nginx's one fixable Critical CVE cut), so every series
      // of the scenario has been computed.
      const s = await eventually(
        async () => {
          const x = await scrape(capped.op.metricsPort);
          const settled =
            valueOf(x, 'anchore_operator_binding_images', { ...b, result: 'pending' }) === 0 &&
            valueOf(x, 'anchore_operator_workload_policy_failed_images', { binding: 'shop', workload: 'shop' }) === 1 &&
            valueOf(x, 'anchore_operator_metrics_series_cut', { tier: 'image' }) === 15 &&
            valueOf(x, 'anchore_operator_metrics_series_cut', { tier: 'cve' }) === 1;
          return settled ? x : undefined;
        },
        30_000,
        250,
      );
      // Critical: what the alerts and the binding and workload views read, all there although the budget is 5.
      expect(valueOf(s, 'anchore_operator_metrics_series_budget')).toBe(5);
      expect(valueOf(s, 'anchore_operator_binding_ready', b)).toBe(1);
      expect(valueOf(s, 'anchore_operator_binding_compliant', b)).toBe(0);
      expect(['pass', 'fail', 'warn', 'pending', 'error'].map((result) => valueOf(s, 'anchore_operator_binding_images', { ...b, result }))).toEqual([1, 1, 0, 0, 0]);
      expect(valueOf(s, 'anchore_operator_binding_last_evaluation_timestamp_seconds', b)).toBeGreaterThan(0);
      expect(valueOf(s, 'anchore_operator_image_fixable_vulnerabilities', { digest: nginx, severity: 'Critical' })).toBe(1);
      expect(valueOf(s, 'anchore_operator_workload_vulnerabilities', { namespace: ns, workload: 'shop', severity: 'High' })).toBe(2);
      const critical = [
        'anchore_operator_image_fixable_vulnerabilities',
        'anchore_operator_workload_vulnerabilities',
        'anchore_operator_binding_images',
        'anchore_operator_binding_ready',
        'anchore_operator_binding_compliant',
        'anchore_operator_workload_policy_failed_images',
        'anchore_operator_binding_last_evaluation_timestamp_seconds',
        'anchore_operator_workload_known_exploited_vulnerabilities',
      ];
      const exported = s.filter((m) => critical.includes(m.name)).length;
      expect(exported).toBeGreaterThan(5);
      expect(valueOf(s, 'anchore_operator_metrics_series_exported', { tier: 'critical' })).toBe(exported);
      // Cut: the per-image and per-CVE series, counted by metric and by tier; no critical metric lost any.
      expect(s.filter((m) => m.name === 'anchore_operator_image_vulnerabilities' || m.name === 'anchore_operator_vulnerability_info')).toEqual([]);
      expect(valueOf(s, 'anchore_operator_metrics_series_dropped_total', { metric: 'anchore_operator_image_vulnerabilities' })).toBeGreaterThanOrEqual(12);
      expect(valueOf(s, 'anchore_operator_metrics_series_dropped_total', { metric: 'anchore_operator_vulnerability_info' })).toBeGreaterThanOrEqual(1);
      expect(critical.map((metric) => valueOf(s, 'anchore_operator_metrics_series_dropped_total', { metric }))).toEqual(critical.map(() => 0));
      expect(valueOf(s, 'anchore_operator_metrics_series_exported', { tier: 'image' })).toBe(0);
      expect(valueOf(s, 'anchore_operator_metrics_series_exported', { tier: 'cve' })).toBe(0);
    } finally {
      await capped.stop();
    }
  });

  it('when a workload is deleted, then its series disappear', async () => {
    await kubectl(['delete', 'deployment', 'edge', '-n', ns]);
    const s = await scrapeUntil((x) => valueOf(x, 'anchore_operator_workload_vulnerabilities', { workload: 'edge', severity: 'Critical' }) === undefined);
    expect(s.some((x) => x.labels['workload'] === 'edge')).toBe(false);
    // Still running elsewhere: the image series stay.
    expect(valueOf(s, 'anchore_operator_image_vulnerabilities', { digest: nginx, severity: 'Critical' })).toBe(1);
    await kubectl(['delete', 'deployment', 'shop', '-n', ns]);
    const gone = await scrapeUntil((x) => valueOf(x, 'anchore_operator_image_vulnerabilities', { digest: nginx, severity: 'Critical' }) === undefined);
    expect(gone.some((x) => x.name === 'anchore_operator_image_vulnerabilities')).toBe(false);
  });
});
