import { afterEach, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import { createLogger } from '../telemetry/logger.ts';
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
  });

  async function setup(integrations_enabled: boolean, lines: string[]): Promise<IntegrationController> {
    sim = await startSimulator({ config: { integrations_enabled } });
    const log = createLogger({ level: 'info', pretty: false }, { write: (s: string) => void lines.push(s) });
    anchore = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log });
    ctl = new IntegrationController({
      anchore, account: 'admin', username: 'admin', clusterName: 'c1', registrationId: 'reg-1', instanceId: 'pod-1',
      version: '0.1.0', healthIntervalMs: 50, inventoryStatus: () => [{ account: 'admin', batches: 1, lastSuccessfulIndex: 0, errors: [], lastAttempt: new Date() }], log,
    });
    ctl.start();
    return ctl;
  }

  it('when Anchore supports integrations, then it registers once and keeps sending health reports', async () => {
    const c = await setup(true, []);
    await until(() => (sim?.integrations()[0]?.healthReports.length ?? 0) >= 3);
    expect(c.uuid).toBeDefined();
    expect(sim?.integrations()).toHaveLength(1);
    expect(sim?.integrations()[0]?.registration).toMatchObject({ registration_id: 'reg-1', registration_instance_id: 'pod-1', type: 'k8s_inventory_agent', cluster_name: 'c1' });
  });

  it('when Anchore is older than 5.11 (404 there), then it logs once and stops trying', async () => {
    const lines: string[] = [];
    const c = await setup(false, lines);
    await until(() => !c.supported);
    await new Promise((r) => setTimeout(r, 300));
    expect(sim?.requests({ path: '/v2/system/integrations/registration' })).toHaveLength(1);
    expect(lines.filter((l) => l.includes('does not support integration registration'))).toHaveLength(1);
  });
});
