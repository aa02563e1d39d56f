import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATIONS } from '../anchore-sim/contract/operations.ts';
import { DEFAULT_POLICY_ID } from '../anchore-sim/index.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, eventually, getJson, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';

/*
 * The operator's whole conversation with Anchore held to the published V2 contract, in both directions: the strict
 * simulator checks every request the operator sends and every answer it gives against the fixture
 * (test/anchore-sim/contract), and this suite fails on any violation. The scenario touches every operation the
 * operator uses: discovery and registration, batched inventories for several accounts (one of them missing, so the
 * inventory falls back to the default account), integration registration and health reports, vulnerability reads,
 * and a policy binding's evaluation — once with Basic auth and once with OAuth.
 */

/** Operations the operator calls that are outside the published spec document (docs/anchore-contract.md). */
const OUTSIDE_SPEC = [{ method: 'GET', re: /^\/v2\/openapi\.json$/, id: 'openapi' }];

const matchers = OPERATIONS.map((o) => ({
  id: o.operationId,
  method: o.method,
  re: new RegExp(`^${o.path.replace(/\{[^}]+\}/g, '[^/]+').replace(/\//g, '\\/')}$`),
}));

function operationOf(method: string, path: string): string | undefined {
  return [...matchers, ...OUTSIDE_SPEC].find((m) => m.method === method && m.re.test(path))?.id;
}

interface AccountReport {
  account_name: string;
  batch_size: number;
  last_successful_index: number;
  has_errors: boolean;
  batches: Array<{ batch_index: number; send_timestamp: string; error?: string }>;
}
type HealthBody = { health_data: { errors?: string[]; account_k8s_inventory_reports?: Record<string, AccountReport> } };

describe.each([['basic'], ['oauth']])('Anchore contract, both directions, %s auth (real cluster, strict simulator)', (authMode) => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const cluster = uniqueName('contract');
  const [nsA, nsB, nsT, nsG] = ['ca', 'cb', 'ct', 'cg'].map((p) => uniqueName(p)) as [string, string, string, string];

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 50, analyzing_ms: 150 },
        policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }], 'team-a': [{ policy_id: 'team-a-default', name: 'Team A', active: true }] },
      },
    });
    expect(sim.config.strict).toBe(true);
    for (const ns of [nsA, nsB, nsT, nsG]) await apply(namespaceManifest(ns));
    await apply(
      deployment(nsA, 'web', 2, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'cache', image: 'redis:7.2' },
      ]),
    );
    await apply(deployment(nsB, 'api', 1, [{ name: 'api', image: 'ghcr.io/stefanprodan/podinfo:6.7.0' }]));
    await apply(deployment(nsT, 'job', 1, [{ name: 'worker', image: 'busybox:1.36' }]));
    await apply(deployment(nsG, 'lost', 1, [{ name: 'app', image: 'nginx:1.27' }]));
    await waitForRunningPods(nsA, 'app=web', 2);
    await waitForRunningPods(nsB, 'app=api', 1);
    await waitForRunningPods(nsT, 'app=job', 1);
    await waitForRunningPods(nsG, 'app=lost', 1);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: cluster,
        ANCHORE_AUTH_MODE: authMode,
        NAMESPACES_INCLUDE: [nsA, nsB, nsT, nsG].join(','),
        ACCOUNT_ROUTES: `team-a:${nsT};ghost-account:${nsG}`,
        // Small enough that each namespace is its own batch: the admin account's report has several.
        INVENTORY_BATCH_BYTES: '1500',
      }),
      (cfg) => {
        cfg.integration.healthIntervalMs = 500;
      },
    );
    await apply(JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name: 'all', namespace: nsA }, spec: {} }));
  });
  afterAll(async () => {
    await operator?.stop();
    // Rejects if the simulator itself answered against the spec.
    await sim?.stop();
    await kubectl(['delete', 'namespace', nsA, nsB, nsT, nsG, '--wait=false', '--ignore-not-found']);
  });

  const reports = (): HealthBody[] =>
    sim
      .integrations()
      .filter((i) => (i.registration as { cluster_name?: string }).cluster_name === cluster)
      .flatMap((i) => i.healthReports.map((h) => h.body as HealthBody));

  it('when the operator runs a full scenario, then every request conforms and every operation it uses was exercised', async () => {
    // The binding evaluates (get_image_policy_check_by_digest) and goes Ready.
    await eventually(
      async () => {
        const b = await getJson<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(['anchorepolicybinding', 'all', '-n', nsA]);
        return b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      30_000,
      250,
    );
    // A health report after the inventories: admin with several batches, all through, numbered from 1.
    const report = await eventually(
      () => {
        const r = reports()
          .reverse()
          .find((h) => {
            const a = h.health_data.account_k8s_inventory_reports ?? {};
            return (a['admin']?.batch_size ?? 0) >= 2 && a['team-a'] !== undefined && a['ghost-account'] !== undefined;
          });
        return r;
      },
      30_000,
      100,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; contract violations: ${JSON.stringify(sim.contractViolations().slice(0, 3))}`);
    });
    const accounts = report.health_data.account_k8s_inventory_reports ?? {};
    const admin = accounts['admin'] as AccountReport;
    expect(admin.batches.map((b) => b.batch_index)).toEqual(Array.from({ length: admin.batch_size }, (_, i) => i + 1));
    expect(admin).toMatchObject({ account_name: 'admin', has_errors: false, last_successful_index: admin.batch_size });
    expect(accounts['team-a']).toMatchObject({ account_name: 'team-a', batch_size: 1, last_successful_index: 1, has_errors: false });
    // The missing account: its batch notes the error, its inventory went to the default account instead.
    expect(accounts['ghost-account']).toMatchObject({ account_name: 'ghost-account', has_errors: true });
    expect(accounts['ghost-account']?.batches[0]?.error).toMatch(/ghost-account/);
    expect(sim.inventories('admin').some((r) => r.body.cluster_name === cluster && (r.body.namespaces ?? []).some((n) => n.name === nsG))).toBe(true);
    // Vulnerability counts for the findings metrics.
    await eventually(() => sim.requests({ method: 'GET', path: /^\/v2\/images\/sha256:[a-f0-9]{64}\/vuln\/all$/ }).length > 0, 30_000, 100);

    const called = new Map<string, number>();
    const unknown: string[] = [];
    for (const r of sim.requests()) {
      const id = operationOf(r.method, r.path);
      if (id === undefined) unknown.push(`${r.method} ${r.path}`);
      else called.set(id, (called.get(id) ?? 0) + 1);
    }
    expect(unknown).toEqual([]);
    const expected = [
      'add_image',
      'get_image',
      'list_images',
      'post_kubernetes_inventory',
      'register_integration',
      'handle_health_report',
      'get_image_policy_check_by_digest',
      'list_policies',
      'get_image_vulnerabilities_by_digest',
      ...(authMode === 'oauth' ? ['get_oauth_token'] : []),
    ];
    expect(expected.filter((id) => !called.has(id))).toEqual([]);
    // Both directions: no request the simulator refused or would have, no answer against the spec.
    expect(sim.contractViolations()).toEqual([]);
    // And nothing the operator sent was refused for any other reason.
    expect(
      sim
        .requests()
        .filter((r) => r.status === 400 || r.status === 415 || r.status === 422)
        .map((r) => `${r.method} ${r.path} ${r.status}`),
    ).toEqual([]);
  });
});
