import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { FakeAnchore } from '../testing/fake-anchore.ts';
import { ReportsController } from './reports.controller.ts';

const log = createLogger({ level: 'silent', pretty: false });
const DIGEST = `sha256:${'cd'.repeat(32)}`;

describe('Reports GraphQL metrics', () => {
  let sim: AnchoreSimulator;
  let anchore: AnchoreHttpClient;
  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 }, reports_page_size: 2 } });
    anchore = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log });
    await anchore.addImage('admin', { tag: 'docker.io/library/nginx:1.27', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    sim.setVulnerabilities(DIGEST, [
      { vuln: 'CVE-1', severity: 'Critical', package: 'a' },
      { vuln: 'CVE-2', severity: 'Critical', package: 'b' },
      { vuln: 'CVE-3', severity: 'Low', package: 'c' },
    ]);
  });
  afterAll(async () => {
    await anchore.close();
    await sim.stop();
  });

  it('when the catalogue spans several pages, then the client follows nextToken to the end', async () => {
    sim.clearRequests();
    const metrics = await anchore.reportMetrics('admin');
    expect(metrics.map((m) => m.id)).toContain('vulnerabilities.tags.all.critical');
    expect(metrics).toHaveLength(7);
    expect(sim.requests({ path: '/v2/reports/graphql' })).toHaveLength(4);
  });

  it('when metric data is read for a day, then every hourly point arrives across pages', async () => {
    const end = new Date();
    const points = await anchore.reportMetricData('admin', 'vulnerabilities.tags.all.critical', new Date(end.getTime() - 6 * 3_600_000), end);
    expect(points.length).toBeGreaterThanOrEqual(5);
    expect(points.every((p) => p.value === 2)).toBe(true);
  });

  it('when the metric id is unknown, then the GraphQL error becomes a not-found error', async () => {
    const err = await anchore.reportMetricData('admin', 'no.such.metric', new Date(Date.now() - 3_600_000), new Date()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnchoreError);
    expect((err as AnchoreError).kind).toBe('not-found');
  });
});

describe('ReportsController (Anchore in memory)', () => {
  it('when the collector runs, then the selected metrics are exported with the value of their newest point; an account that fails keeps its previous values', async () => {
    const anchore = new FakeAnchore();
    anchore.reportCatalog.push(
      { id: 'vulnerabilities.tags.all.critical', name: 'Critical', metricType: 'gauge' },
      { id: 'vulnerabilities.tags.all.low', name: 'Low', metricType: 'gauge' },
      { id: 'tags.analyzed.all', name: 'Analyzed', metricType: 'gauge' },
    );
    const hoursAgo = (h: number): string => new Date(Date.now() - h * 3_600_000).toISOString();
    anchore.reportPoints.set('vulnerabilities.tags.all.critical', [
      { collectedAt: hoursAgo(2), value: 5 },
      { collectedAt: hoursAgo(1), value: 2 },
    ]);
    anchore.reportPoints.set('vulnerabilities.tags.all.low', [{ collectedAt: hoursAgo(1), value: 1 }]);
    anchore.reportPoints.set('tags.analyzed.all', [{ collectedAt: hoursAgo(1), value: 9 }]);
    anchore.fail('reportMetrics', 'unavailable');
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const c = new ReportsController({ anchore, accounts: () => ['team-a', 'admin'], metrics: ['vulnerabilities.*'], intervalMs: 60_000, log, operatorMetrics: metrics });
    c.start();
    for (let i = 0; i < 200 && c.rounds === 0; i++) await new Promise((r) => setTimeout(r, 5));
    c.stop();
    const text = await metrics.registry.metrics();
    expect(text).toContain('anchore_operator_anchore_report_metric{account="admin",metric="vulnerabilities.tags.all.critical"} 2');
    expect(text).toContain('anchore_operator_anchore_report_metric{account="admin",metric="vulnerabilities.tags.all.low"} 1');
    expect(text).not.toContain('metric="tags.analyzed.all"');
    expect(text).not.toContain('account="team-a"');
    expect(text).toMatch(/anchore_operator_anchore_report_metric_collected_timestamp_seconds\{account="admin",metric="vulnerabilities.tags.all.critical"\} \d+/);
    // Only the selected metrics' data was read.
    expect(anchore.callsOf('reportMetricData').map((x) => x.subject)).toEqual(['vulnerabilities.tags.all.critical', 'vulnerabilities.tags.all.low']);
  });
});
