import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import type { AnchoreApi } from '../anchore/anchore.port.ts';
import { createLogger } from '../telemetry/logger.ts';
import { FakeAnchore } from '../testing/fake-anchore.ts';
import { ManualClock } from '../testing/manual-clock.ts';
import { IntegrationController } from './integration.controller.ts';

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('IntegrationController', () => {
  let sim: AnchoreSimulator | undefined;
  let anchore: AnchoreHttpClient | undefined;
  let ctl: IntegrationController | undefined;
  afterEach(async () => {
    ctl?.stop();
    await anchore?.close();
    await sim?.stop();
    [ctl, anchore, sim] = [undefined, undefined, undefined];
  });

  const options = (anchore: AnchoreApi, lines: string[]): ConstructorParameters<typeof IntegrationController>[0] => ({
    anchore,
    account: 'admin',
    username: 'admin',
    clusterName: 'c1',
    registrationId: 'reg-1',
    instanceId: 'pod-1',
    version: '0.1.0',
    healthIntervalMs: 50,
    accounts: ['admin', 'team-a', 'admin'],
    namespaces: ['shop-*'],
    configuration: { inventory: { interval_seconds: 300 } },
    inventoryStatus: () => [
      { account: 'admin', batchCount: 1, batches: [{ index: 1, sentAt: new Date() }], lastSuccessfulIndex: 1, lastAttempt: new Date() },
      // Never attempted yet: not in the report (the spec wants batch_size ≥ 1).
      { account: 'team-a', batchCount: 0, batches: [], lastSuccessfulIndex: -1 },
    ],
    log: createLogger({ level: 'info', pretty: false }, { write: (s: string) => void lines.push(s) }),
  });

  /** Against the simulator over HTTP: what is sent must match the API's contract. */
  async function setup(integrations_enabled: boolean, lines: string[]): Promise<IntegrationController> {
    sim = await startSimulator({ config: { integrations_enabled } });
    anchore = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log: createLogger({ level: 'silent', pretty: false }) });
    ctl = new IntegrationController(options(anchore, lines));
    ctl.start();
    return ctl;
  }

  it('when Anchore supports integrations, then it registers once and keeps sending health reports', async () => {
    const c = await setup(true, []);
    await until(() => (sim?.integrations()[0]?.healthReports.length ?? 0) >= 3);
    expect(c.uuid).toBeDefined();
    expect(sim?.integrations()).toHaveLength(1);
    expect(sim?.integrations()[0]?.registration).toMatchObject({
      registration_id: 'reg-1',
      registration_instance_id: 'pod-1',
      type: 'k8s_inventory_agent',
      cluster_name: 'c1',
      explicitly_account_bound: ['admin', 'team-a'],
      namespaces: ['shop-*'],
      configuration: { inventory: { interval_seconds: 300 } },
      started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      uptime: expect.any(Number),
      // The spec's range, whatever the (test-fast) timer.
      health_report_interval: 30,
    });
    const report = sim?.integrations()[0]?.healthReports[0]?.body as { health_data: { account_k8s_inventory_reports: Record<string, unknown> } };
    expect(Object.keys(report.health_data.account_k8s_inventory_reports)).toEqual(['admin']);
    expect(report.health_data.account_k8s_inventory_reports.admin).toMatchObject({
      batch_size: 1,
      last_successful_index: 1,
      has_errors: false,
      batches: [{ batch_index: 1, send_timestamp: expect.any(String) }],
    });
    expect(sim?.contractViolations()).toEqual([]);
  });

  it('when Anchore is older than 5.11 (404 there), then it logs once and stops trying', async () => {
    jest.useFakeTimers();
    try {
      const fake = new FakeAnchore();
      fake.down('registerIntegration', 'not-found');
      const lines: string[] = [];
      const c = (ctl = new IntegrationController(options(fake, lines)));
      c.start();
      // Forty health intervals of fake time: evidence enough that it would have tried again.
      await jest.advanceTimersByTimeAsync(40 * 50);
      expect(c.supported).toBe(false);
      expect(fake.callsOf('registerIntegration')).toHaveLength(1);
      expect(fake.healthReports).toEqual([]);
      expect(lines.filter((l) => l.includes('does not support integration registration'))).toHaveLength(1);
    } finally {
      ctl?.stop();
      ctl = undefined;
      jest.useRealTimers();
    }
  });

  it('on fake time: a health report every interval after the previous one ended, uptime from the injected clock, a failed one retried at the next interval, none after stop', async () => {
    const clock = new ManualClock(Date.parse('2026-12-08T00:00:00Z'));
    const fake = new FakeAnchore();
    const c = (ctl = new IntegrationController({ ...options(fake, []), healthIntervalMs: 60_000, clock }));
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    c.start();
    await settle();
    expect(fake.callsOf('registerIntegration')).toHaveLength(1);
    expect(fake.healthReports).toHaveLength(1);
    clock.advance(59_999);
    await settle();
    expect(fake.healthReports).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(fake.healthReports).toHaveLength(2);
    expect(fake.healthReports[1]).toMatchObject({ report: { uptime: 60 } });
    fake.down('sendHealthReport', 'unavailable');
    clock.advance(60_000);
    await settle();
    fake.heal('sendHealthReport');
    clock.advance(60_000);
    await settle();
    expect(fake.healthReports).toHaveLength(3);
    c.stop();
    clock.advance(600_000);
    await settle();
    expect(fake.healthReports).toHaveLength(3);
    expect(fake.callsOf('registerIntegration')).toHaveLength(1);
  });
});
