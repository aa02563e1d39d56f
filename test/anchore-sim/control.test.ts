import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { call, digestOf, digestSource, uidOf } from './test-client.ts';

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

/** Control calls carry no Anchore credentials. */
function ctl(method: string, path: string, json?: unknown): ReturnType<typeof call> {
  return call(sim.url, method, path, json === undefined ? { auth: undefined } : { auth: undefined, json });
}

describe('control endpoints (/_sim)', () => {
  it('when requests were made, then GET /_sim/requests lists them with filters, and DELETE clears them', async () => {
    await call(sim.url, 'GET', '/v2/images');
    await call(sim.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1'), account: 'team-a' });
    const all = (await ctl('GET', '/_sim/requests')).body;
    expect(all.map((r: any) => `${r.method} ${r.path} ${r.status}`)).toEqual(['GET /v2/images 200', 'POST /v2/images 200']);
    expect(all[1]).toMatchObject({ seq: expect.any(Number), time: expect.any(Number), account: 'team-a', user: 'admin', query: {}, durationMs: expect.any(Number) });
    expect(all[1].body).toEqual(digestSource('nginx', digestOf('a'), 'nginx:1'));
    expect((await ctl('GET', '/_sim/requests?method=POST')).body).toHaveLength(1);
    expect((await ctl('GET', '/_sim/requests?account=team-a')).body).toHaveLength(1);
    expect((await ctl('GET', `/_sim/requests?path=${encodeURIComponent('re:^/v2/im')}`)).body).toHaveLength(2);
    expect((await ctl('GET', `/_sim/requests?since=${all[0].seq}`)).body).toHaveLength(1);
    expect((await ctl('DELETE', '/_sim/requests')).status).toBe(204);
    expect((await ctl('GET', '/_sim/requests')).body).toEqual([]);
  });

  it('when control endpoints are called, then they are neither recorded nor faulted', async () => {
    await ctl('PUT', '/_sim/faults', [{ status: 500 }]);
    expect((await ctl('GET', '/_sim/state')).status).toBe(200);
    expect(sim.requests()).toEqual([]);
  });

  it('when PUT /_sim/faults sends rules with a re: path, then they apply; GET lists them; DELETE removes them', async () => {
    const put = await ctl('PUT', '/_sim/faults', [{ path: 're:^/v2/images', status: 503, retryAfterSeconds: 3, count: 5 }]);
    expect(put).toMatchObject({ status: 200, body: { rules: 1 } });
    const res = await call(sim.url, 'GET', '/v2/images');
    expect([res.status, res.headers['retry-after']]).toEqual([503, '3']);
    expect((await ctl('GET', '/_sim/faults')).body).toEqual([{ path: 're:^/v2/images', status: 503, retryAfterSeconds: 3, count: 5, remaining: 4 }]);
    expect((await ctl('DELETE', '/_sim/faults')).status).toBe(204);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when PUT /_sim/faults sends an invalid rule, then 400', async () => {
    expect((await ctl('PUT', '/_sim/faults', [{ latencyMs: -1 }])).status).toBe(400);
    expect((await ctl('PUT', '/_sim/faults', { not: 'an array' })).status).toBe(400);
  });

  it('when GET /_sim/state is called, then it shows images, inventory counts, the last inventory and integrations', async () => {
    await call(sim.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1') });
    await call(sim.url, 'POST', '/v2/kubernetes-inventory', { json: { cluster_name: 'prod', timestamp: '2024-01-01T00:00:00Z', namespaces: [{ uid: uidOf('n'), name: 'web' }] } });
    const state = (await ctl('GET', '/_sim/state')).body;
    expect(state.accounts.admin).toMatchObject({
      images: [expect.objectContaining({ image_digest: digestOf('a') })],
      inventories: 1,
      last_inventory: { cluster_name: 'prod', namespaces: 1, pods: 0, containers: 0 },
    });
    expect(state.accounts['team-a']).toEqual({ images: [], inventories: 0, last_inventory: null });
    expect(state.integrations).toEqual([]);
  });

  it('when POST /_sim/reset is called, then images and the log are gone', async () => {
    await call(sim.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1') });
    expect((await ctl('POST', '/_sim/reset')).status).toBe(204);
    expect(sim.images('admin')).toEqual([]);
    expect(sim.requests()).toEqual([]);
  });

  it('when PUT /_sim/verdicts/{digest} is called, then /check reports that verdict until it is deleted', async () => {
    await call(sim.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1') });
    const check = async (): Promise<any> => (await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`)).body.evaluations[0];
    const generated = await check();
    const forced = generated.final_action === 'stop' ? { status: 'pass', final_action: 'warn', findings: 2 } : { status: 'fail', final_action: 'stop', findings: 3 };
    expect((await ctl('PUT', `/_sim/verdicts/${digestOf('a')}`, forced)).status).toBe(204);
    const after = await check();
    expect([after.status, after.final_action, after.number_of_findings]).toEqual([forced.status, forced.final_action, forced.findings]);
    expect((await ctl('DELETE', `/_sim/verdicts/${digestOf('a')}`)).status).toBe(204);
    expect((await check()).final_action).toBe(generated.final_action);
    expect((await ctl('PUT', `/_sim/verdicts/${digestOf('a')}`, { status: 'maybe', final_action: 'go' })).status).toBe(400);
    expect((await ctl('PUT', '/_sim/verdicts/not-a-digest', forced)).status).toBe(400);
  });

  it('when the other hooks are called over HTTP, then they act like their programmatic twins', async () => {
    await call(sim.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1') });
    expect((await ctl('PUT', `/_sim/vulnerabilities/${digestOf('a')}`, [{ vuln: 'CVE-1', severity: 'High' }])).status).toBe(204);
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/all`)).body.vulnerabilities.map((v: any) => v.vuln)).toEqual(['CVE-1']);
    expect((await ctl('PUT', '/_sim/accounts/admin/active-policy', { policy_id: 'strict' })).status).toBe(204);
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`)).body.policy_id).toBe('strict');
    expect((await ctl('PUT', '/_sim/accounts/admin/active-policy', { policy_id: 'nope' })).status).toBe(404);
    const tok = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { username: 'admin', password: 'foobar' } });
    expect((await ctl('POST', '/_sim/tokens/expire')).status).toBe(204);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } })).status).toBe(401);
    expect((await ctl('POST', '/_sim/users/team-a-user/revoke')).status).toBe(204);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { user: 'team-a-user', password: 'team-a-pass' } })).status).toBe(401);
    expect((await ctl('GET', '/_sim/config')).body.seed).toBe(42);
  });

  it('when a control path is unknown, then 404', async () => {
    expect((await ctl('GET', '/_sim/nope')).status).toBe(404);
  });
});
