import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { ADMIN, TEAM_A, call, tagSource } from './test-client.ts';

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator({
    config: {
      accounts: [
        { name: 'admin', users: [{ username: 'admin', password: 'foobar' }], api_keys: [{ name: 'ci', value: 'ak-admin-secret' }] },
        {
          name: 'team-a',
          users: [
            { username: 'team-a-user', password: 'team-a-pass' },
            { username: 'team-a-other', password: 'x' },
          ],
        },
        { name: 'team-b', users: [{ username: 'team-b-user', password: 'team-b-pass' }] },
      ],
      token_ttl_seconds: 60,
    },
  });
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

async function passwordGrant(username: string, password: string): Promise<{ status: number; body: any }> {
  return call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'password', username, password, client_id: 'anonymous' } });
}

describe('authentication', () => {
  it('when Basic credentials are right, then the request is served', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: ADMIN });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [] });
  });

  it('when no credentials are sent, then 401 with an error body and a Basic challenge', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: undefined });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ httpcode: 401, message: expect.any(String) });
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('when the password is wrong, then 401', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { user: 'admin', password: 'nope' } });
    expect(res.status).toBe(401);
  });

  it('when an API key is used as _api_key:<value>, then the request acts as the key owner in its account', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { apiKey: 'ak-admin-secret' } });
    expect(res.status).toBe(200);
    const [rec] = sim.requests({ path: '/v2/images' });
    expect(rec).toMatchObject({ user: 'admin', account: 'admin', status: 200 });
  });

  it('when an unknown API key is used, then 401', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { apiKey: 'ak-wrong' } });
    expect(res.status).toBe(401);
  });

  it('when a password grant succeeds, then a bearer TokenResponse is returned and the token authenticates', async () => {
    const tok = await passwordGrant('admin', 'foobar');
    expect(tok.status).toBe(200);
    expect(tok.body).toEqual({ access_token: expect.any(String), expires_in: 60, token_type: 'bearer', refresh_token: expect.any(String) });
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } });
    expect(res.status).toBe(200);
  });

  it('when the grant_type is omitted, then it defaults to password', async () => {
    const res = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { username: 'admin', password: 'foobar' } });
    expect(res.status).toBe(200);
  });

  it('when a password grant has bad credentials, then 403 with invalid_grant', async () => {
    const res = await passwordGrant('admin', 'wrong');
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('when the token request is not form-encoded, then 415', async () => {
    const res = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, json: { username: 'admin', password: 'foobar' } });
    expect(res.status).toBe(415);
  });

  it('when the grant type is unknown, then 400', async () => {
    const res = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'client_credentials' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unsupported_grant_type');
  });

  it('when a refresh grant uses a valid refresh token, then a new working access token is issued', async () => {
    const first = await passwordGrant('admin', 'foobar');
    const refreshed = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'refresh_token', refresh_token: first.body.refresh_token } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(first.body.access_token);
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { bearer: refreshed.body.access_token } });
    expect(res.status).toBe(200);
  });

  it('when a refresh grant uses an unknown refresh token, then 403', async () => {
    const res = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'refresh_token', refresh_token: 'nope' } });
    expect(res.status).toBe(403);
  });

  it('when tokens are expired early, then the access token gets 401 but the refresh grant still works', async () => {
    const tok = await passwordGrant('admin', 'foobar');
    sim.expireTokens();
    const res = await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } });
    expect(res.status).toBe(401);
    const refreshed = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token } });
    expect(refreshed.status).toBe(200);
  });

  it('when refresh tokens are expired too, then the refresh grant answers 403', async () => {
    const tok = await passwordGrant('admin', 'foobar');
    sim.expireTokens({ includeRefresh: true });
    const refreshed = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token } });
    expect(refreshed.status).toBe(403);
  });

  it('when the token TTL is zero, then a fresh token is already expired', async () => {
    const short = await startSimulator({ config: { token_ttl_seconds: 0 } });
    try {
      const tok = await call(short.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { username: 'admin', password: 'foobar' } });
      const res = await call(short.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } });
      expect(res.status).toBe(401);
    } finally {
      await short.stop();
    }
  });

  it('when a user is revoked, then Basic, its API keys and its tokens all get 401', async () => {
    const tok = await passwordGrant('admin', 'foobar');
    sim.revokeCredentials('admin');
    expect((await call(sim.url, 'GET', '/v2/images', { auth: ADMIN })).status).toBe(401);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { apiKey: 'ak-admin-secret' } })).status).toBe(401);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } })).status).toBe(401);
    expect((await passwordGrant('admin', 'foobar')).status).toBe(403);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: TEAM_A })).status).toBe(200);
  });

  it("when a user's password is changed (rotated by an admin), then Basic and the password grant take only the new one", async () => {
    try {
      sim.setPassword('admin', 'rotated');
      expect((await call(sim.url, 'GET', '/v2/images', { auth: ADMIN })).status).toBe(401);
      expect((await call(sim.url, 'GET', '/v2/images', { auth: { user: 'admin', password: 'rotated' } })).status).toBe(200);
      expect((await passwordGrant('admin', 'foobar')).status).toBe(403);
      expect((await passwordGrant('admin', 'rotated')).status).toBe(200);
      expect(() => sim.setPassword('nobody', 'x')).toThrow('no user "nobody"');
    } finally {
      sim.setPassword('admin', 'foobar');
    }
  });

  it('when reset, then revocations are forgotten', async () => {
    sim.revokeCredentials('admin');
    sim.reset();
    expect((await call(sim.url, 'GET', '/v2/images', { auth: ADMIN })).status).toBe(200);
  });

  it('when /version and /health are called without credentials, then they answer 200', async () => {
    for (const path of ['/version', '/v2/version', '/health', '/v2/health']) {
      const res = await call(sim.url, 'GET', path, { auth: undefined });
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });
});

describe('x-anchore-account scoping', () => {
  it('when an admin acts as another account, then the image lands in that account', async () => {
    const res = await call(sim.url, 'POST', '/v2/images', { auth: ADMIN, account: 'team-a', json: tagSource('alpine:3.19') });
    expect(res.status).toBe(200);
    expect(res.body.account_name).toBe('team-a');
    expect(sim.images('team-a')).toHaveLength(1);
    expect(sim.images('admin')).toHaveLength(0);
    expect(sim.requests({ account: 'team-a' })).toHaveLength(1);
  });

  it('when images are listed, then each account sees only its own', async () => {
    await call(sim.url, 'POST', '/v2/images', { auth: TEAM_A, json: tagSource('alpine:3.19') });
    expect((await call(sim.url, 'GET', '/v2/images', { auth: TEAM_A })).body.items).toHaveLength(1);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: ADMIN })).body.items).toHaveLength(0);
    expect((await call(sim.url, 'GET', '/v2/images', { auth: ADMIN, account: 'team-a' })).body.items).toHaveLength(1);
  });

  it('when a non-admin names its own account, then the request is served', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: TEAM_A, account: 'team-a' });
    expect(res.status).toBe(200);
  });

  it('when a non-admin names another account, then 403 with the RBAC message', async () => {
    const res = await call(sim.url, 'GET', '/v2/images', { auth: TEAM_A, account: 'team-b' });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ message: 'Not authorized. Requires permissions: domain=team-b action=listImages target=', httpcode: 403, detail: { error_codes: [] } });
  });

  it('when a non-admin names an unknown account, then 403 (not 404)', async () => {
    const res = await call(sim.url, 'POST', '/v2/kubernetes-inventory', { auth: TEAM_A, account: 'ghost', json: { cluster_name: 'c', timestamp: '2024-01-01T00:00:00Z' } });
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('action=syncInventory');
  });

  it('when an admin names an unknown account, then 404 "User account not found"', async () => {
    const res = await call(sim.url, 'POST', '/v2/kubernetes-inventory', { auth: ADMIN, account: 'ghost', json: { cluster_name: 'c', timestamp: '2024-01-01T00:00:00Z' } });
    expect(res.status).toBe(404);
    expect(res.body.message).toContain('User account not found');
  });
});
