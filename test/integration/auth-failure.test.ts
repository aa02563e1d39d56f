import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REEVALUATE_ANNOTATION } from '../../src/crds/types.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, eventually, getJson, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';

interface Binding {
  metadata: { generation: number };
  status?: { observedGeneration?: number; conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}

const PASSWORD = 'oauth-Secret-77c1e0';

/*
 * OAuth against the simulator: expired access tokens are refreshed without anyone noticing; revoked credentials
 * surface as a Stalled binding with reason AuthFailed and a log line — and the password never shows.
 */
describe('Anchore credentials: OAuth expiry and revocation (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('auth');
  const get = (name: string) => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
  const ready = (b: Binding) => b.status?.conditions?.find((c) => c.type === 'Ready');

  beforeAll(async () => {
    sim = await startSimulator({
      config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: PASSWORD }], api_keys: [] }], analysis: { queued_ms: 50, analyzing_ms: 100 } },
    });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('auth'),
        NAMESPACES_INCLUDE: ns,
        ANCHORE_AUTH_MODE: 'oauth',
        ANCHORE_PASSWORD: PASSWORD,
        INTEGRATION_ENABLED: 'false',
        POLICY_POLL_SECONDS: '0',
      }),
    );
    await apply(deployment(ns, 'web', 1, [{ name: 'nginx', image: 'nginx:1.27' }]));
    await waitForRunningPods(ns, 'app=web', 1);
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the access token expires, then the operator refreshes it and the binding still evaluates', async () => {
    sim.expireTokens();
    await apply(
      JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name: 'first', namespace: ns }, spec: { podSelector: { matchLabels: { app: 'web' } } } }),
    );
    const b = await eventually(
      async () => {
        const x = await get('first');
        return ready(x)?.status === 'True' ? x : undefined;
      },
      30_000,
      250,
    );
    expect(ready(b)?.reason).toBe('Evaluated');
    expect(sim.requests({ method: 'POST', path: '/v2/oauth/token' }).length).toBeGreaterThanOrEqual(2);
  });

  it('when the credentials are revoked, then the next fresh evaluation leaves the binding Stalled with reason AuthFailed and the log says why, without the password', async () => {
    sim.revokeCredentials('admin');
    sim.expireTokens({ includeRefresh: true });
    // Ask for a fresh evaluation (no cached policy list or verdict), as a user would.
    await kubectl(['annotate', 'anchorepolicybinding', 'first', '-n', ns, `${REEVALUATE_ANNOTATION}=${Date.now()}`, '--overwrite']);
    const b = await eventually(
      async () => {
        const x = await get('first');
        return x.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True') ? x : undefined;
      },
      60_000,
      250,
    );
    const stalled = b.status!.conditions!.find((c) => c.type === 'Stalled')!;
    expect(stalled.reason).toBe('AuthFailed');
    expect(ready(b)).toMatchObject({ status: 'False', reason: 'AuthFailed' });
    expect(stalled.message).toMatch(/Anchore refused the operator/);
    const logs = operator.logs.join('');
    expect(logs).toMatch(/AuthFailed|refused/);
    expect(logs).not.toContain(PASSWORD);
    expect(JSON.stringify(b)).not.toContain(PASSWORD);
  });
});
