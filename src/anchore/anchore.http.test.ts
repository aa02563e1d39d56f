import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AnchoreHttpClient, type AnchoreHttpConfig, normaliseBaseUrl, operationsInSpec, parseRetryAfter } from './anchore.http.ts';
import { AnchoreError } from './errors.ts';

const log = createLogger({ level: 'silent', pretty: false });
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const clients: AnchoreHttpClient[] = [];

function client(sim: AnchoreSimulator, over: Partial<AnchoreHttpConfig> = {}): AnchoreHttpClient {
  const c = new AnchoreHttpClient({
    url: sim.url,
    auth: { type: 'basic', username: 'admin', password: 'foobar' },
    log,
    retry: { attempts: 3, backoff: { baseMs: 20, maxMs: 100, jitter: 0 }, maxRetryAfterMs: 5000 },
    ...over,
  });
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<AnchoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AnchoreError);
    return err as AnchoreError;
  }
  throw new Error('expected an AnchoreError');
}

describe('AnchoreHttpClient against the simulator', () => {
  let sim: AnchoreSimulator;
  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 20, analyzing_ms: 50 },
        accounts: [
          { name: 'admin', users: [{ username: 'admin', password: 'foobar' }], api_keys: [{ name: 'ci', value: 'ak-secret' }] },
          { name: 'team-a', users: [{ username: 'team-a-user', password: 'team-a-pass' }] },
        ],
      },
    });
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sim.stop();
  });

  it('when the server is V2, then version() reports api "2" and the service version', async () => {
    await expect(client(sim).version()).resolves.toEqual({ service: '5.26.0', api: '2', db: expect.any(String) });
  });

  it('when an image is added by digest, then Anchore gets a digest source with the tag, scoped to the account, and a re-add returns the same image', async () => {
    const c = client(sim);
    const first = await c.addImage('team-a', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}`, annotations: { a: 'b' } });
    expect(first.image_digest).toBe(DIGEST);
    const again = await c.addImage('team-a', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    expect(again.image_digest).toBe(DIGEST);
    const posts = sim.requests({ method: 'POST', path: '/v2/images' });
    expect(posts).toHaveLength(2);
    expect(posts[0]?.account).toBe('team-a');
    expect(posts[0]?.body).toEqual({
      source: { digest: { pull_string: `docker.io/library/nginx@${DIGEST}`, tag: 'docker.io/library/nginx:1.25' } },
      annotations: { a: 'b' },
      image_type: 'docker',
    });
    expect(posts[0]?.query).toMatchObject({ auto_subscribe: 'false' });
    expect(sim.images('team-a')).toHaveLength(1);
    expect(sim.images('admin')).toHaveLength(0);
  });

  it('when analysis finishes, then getImage and listImages report it as analyzed with its tags', async () => {
    const c = client(sim);
    await c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    let status = '';
    for (let i = 0; i < 50 && status !== 'analyzed'; i++) {
      status = (await c.getImage('admin', DIGEST)).analysis_status;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe('analyzed');
    const list = await c.listImages('admin');
    expect(list).toEqual([expect.objectContaining({ image_digest: DIGEST, analysis_status: 'analyzed', full_tags: ['docker.io/library/nginx:1.25'] })]);
  });

  it('when an image is added by tag, then a tag source is sent', async () => {
    const img = await client(sim).addImage('admin', { tag: 'docker.io/library/alpine:3.20' });
    expect(img.image_digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })[0]?.body).toMatchObject({ source: { tag: { pull_string: 'docker.io/library/alpine:3.20' } } });
  });

  it('when the image does not exist, then getImage fails with kind not-found', async () => {
    const e = await rejection(client(sim).getImage('admin', DIGEST));
    expect(e.kind).toBe('not-found');
    expect(e.status).toBe(404);
  });

  it('when the password is wrong, then the error is kind auth (401) and names no credential', async () => {
    const e = await rejection(client(sim, { auth: { type: 'basic', username: 'admin', password: 'wrong-pw' } }).listImages('admin'));
    expect(e.kind).toBe('auth');
    expect(e.status).toBe(401);
    expect(e.message).not.toContain('wrong-pw');
  });

  it('when a non-admin user acts as another account, then the error is kind auth (403)', async () => {
    const e = await rejection(client(sim, { auth: { type: 'basic', username: 'team-a-user', password: 'team-a-pass' } }).listImages('admin'));
    expect(e.kind).toBe('auth');
    expect(e.status).toBe(403);
    expect(e.message).toContain('Not authorized');
  });

  it('when an API key is used, then Basic _api_key auth works', async () => {
    await expect(client(sim, { auth: { type: 'apikey', key: 'ak-secret' } }).listImages('admin')).resolves.toEqual([]);
    expect(sim.requests({ path: '/v2/images' })[0]?.user).toBeDefined();
  });

  it('when OAuth is used, then one token serves many calls, and an expired token is replaced once on 401', async () => {
    const c = client(sim, { auth: { type: 'oauth', username: 'admin', password: 'foobar' } });
    await c.listImages('admin');
    await c.listImages('admin');
    expect(sim.requests({ path: '/v2/oauth/token' })).toHaveLength(1);
    sim.expireTokens();
    await expect(c.listImages('admin')).resolves.toEqual([]);
    const tokenCalls = sim.requests({ path: '/v2/oauth/token' });
    expect(tokenCalls.length).toBe(2);
    expect(sim.requests({ path: '/v2/images' }).map((r) => r.status)).toEqual([200, 200, 401, 200]);
  });

  it('when OAuth credentials are revoked, then the call fails with kind auth instead of looping', async () => {
    const c = client(sim, { auth: { type: 'oauth', username: 'admin', password: 'foobar' } });
    await c.listImages('admin');
    sim.revokeCredentials('admin');
    sim.expireTokens({ includeRefresh: true });
    const e = await rejection(c.listImages('admin'));
    expect(e.kind).toBe('auth');
    expect(sim.requests({ path: '/v2/oauth/token' }).length).toBeLessThanOrEqual(3);
  });

  it('when Anchore answers 503 with Retry-After twice, then the client waits as told and succeeds', async () => {
    sim.setFaults([{ path: '/v2/images', status: 503, errorRate: 1, retryAfterSeconds: 1, count: 2 }]);
    const t0 = Date.now();
    await expect(client(sim).listImages('admin')).resolves.toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(sim.requests({ path: '/v2/images' }).map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('when every attempt fails with 500, then it gives up after the configured attempts with kind unavailable', async () => {
    sim.setFaults([{ path: '/v2/images', status: 500, errorRate: 1 }]);
    const e = await rejection(client(sim).listImages('admin'));
    expect(e.kind).toBe('unavailable');
    expect(e.retryable).toBe(true);
    expect(sim.requests({ path: '/v2/images' })).toHaveLength(3);
  });

  it.each([
    ['an HTML login page', { htmlLogin: true }, /expected JSON.*login page/],
    ['truncated JSON', { truncatedJson: true }, /not valid JSON/],
    ['a connection reset', { reset: true }, /cannot reach Anchore/],
  ])('when Anchore (or a proxy) answers with %s, then the error is kind unavailable with a clear message', async (_name, fault, re) => {
    sim.setFaults([{ path: '/v2/images', ...fault }]);
    const e = await rejection(client(sim, { retry: { attempts: 1 } }).listImages('admin'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(re);
  });

  it('when many calls are made, then no more than `concurrency` are in flight at Anchore', async () => {
    sim.setFaults([{ path: '/v2/images', latencyMs: 100 }]);
    const c = client(sim, { concurrency: 3 });
    await Promise.all(Array.from({ length: 9 }, () => c.listImages('admin')));
    const reqs = sim.requests({ path: '/v2/images' });
    expect(reqs).toHaveLength(9);
    // The simulator counts the requests it is serving at each arrival, so this is exact whatever the machine's load.
    expect(Math.max(...reqs.map((r) => r.inFlight))).toBe(3);
  });

  it('when an inventory is posted, then Anchore receives it under the account and answers 201', async () => {
    await client(sim).postKubernetesInventory('team-a', { cluster_name: 'c1', timestamp: '2026-01-01T00:00:00Z', namespaces: [], nodes: [], pods: [], containers: [] });
    expect(sim.inventories('team-a')).toHaveLength(1);
    expect(sim.requests({ path: '/v2/kubernetes-inventory' })[0]?.status).toBe(201);
  });

  it('when an invalid inventory is posted, then the error is kind rejected (400)', async () => {
    const e = await rejection(client(sim).postKubernetesInventory('admin', { cluster_name: '', timestamp: 'yesterday', namespaces: [], nodes: [], pods: [], containers: [] }));
    expect(e.kind).toBe('rejected');
    expect(e.status).toBe(400);
  });

  it('when the integration is registered and reports health, then Anchore records both', async () => {
    const c = client(sim);
    const uuid = await c.registerIntegration('admin', {
      registration_id: 'r1', registration_instance_id: 'i1', type: 'k8s_inventory_agent', name: 'n', version: '0.1.0',
      username: 'admin', health_report_interval: 60, cluster_name: 'c1',
    });
    await c.sendHealthReport('admin', uuid, { uptime: 1, health_report_interval: 60, errors: [], accounts: {} });
    expect(sim.integrations()).toEqual([expect.objectContaining({ uuid })]);
    const e = await rejection(c.sendHealthReport('admin', 'no-such-uuid', { uptime: 1, health_report_interval: 60, errors: [], accounts: {} }));
    expect(e.kind).toBe('not-found');
  });

  it('when the server publishes its openapi.json, then capabilities() names missing operations', async () => {
    await expect(client(sim).capabilities()).resolves.toEqual({ specAvailable: true, missingRequired: [], missingOptional: [] });
    const sim2 = await startSimulator({ config: { openapi_missing: ['add_image', 'register_integration'] } });
    try {
      const caps = await client(sim2).capabilities();
      expect(caps.missingRequired).toEqual(['POST /images']);
      expect(caps.missingOptional).toEqual(['POST /system/integrations/registration']);
    } finally {
      await sim2.stop();
    }
  });

  it('when policies are listed, then exactly one is active and getPolicy finds it; an unknown id is not-found', async () => {
    const c = client(sim);
    const policies = await c.listPolicies('admin');
    expect(policies.filter((p) => p.active)).toHaveLength(1);
    const active = policies.find((p) => p.active);
    await expect(c.getPolicy('admin', active?.policy_id ?? '')).resolves.toMatchObject({ policy_id: active?.policy_id, active: true });
    expect((await rejection(c.getPolicy('admin', 'no-such-policy'))).kind).toBe('not-found');
  });

  it('when an image is analyzed, then checkImage returns the verdict, and a forced fail comes back with its stop findings', async () => {
    const c = client(sim);
    await c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    expect((await rejection(c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25'))).kind).toBe('not-found');
    for (let i = 0; i < 50 && (await c.getImage('admin', DIGEST)).analysis_status !== 'analyzed'; i++) await new Promise((r) => setTimeout(r, 20));
    sim.setVerdict(DIGEST, { status: 'fail', final_action: 'stop', findings: 3 });
    const check = await c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25');
    expect(check).toMatchObject({ status: 'fail', final_action: 'stop', image_digest: DIGEST });
    expect(check.findings.length).toBeGreaterThan(0);
    expect(check.findings[0]?.action).toBe('stop');
    const q = sim.requests({ path: `/v2/images/${DIGEST}/check` }).pop()?.query;
    expect(q).toMatchObject({ tag: 'docker.io/library/nginx:1.25' });
    sim.setVerdict(DIGEST, { status: 'pass', final_action: 'go' });
    await expect(c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25')).resolves.toMatchObject({ status: 'pass', final_action: 'go', findings: [] });
    expect((await rejection(c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25', 'no-such-policy'))).kind).toBe('not-found');
  });

  it('when vulnerabilities are set, then they come back with normalised severities and fixes', async () => {
    const c = client(sim);
    await c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    for (let i = 0; i < 50 && (await c.getImage('admin', DIGEST)).analysis_status !== 'analyzed'; i++) await new Promise((r) => setTimeout(r, 20));
    sim.setVulnerabilities(DIGEST, [
      { vuln: 'CVE-1', severity: 'Critical', fix: '1.2.3', package: 'openssl' },
      { vuln: 'CVE-2', severity: 'Low', package: 'zlib' },
    ]);
    const v = await c.vulnerabilities('admin', DIGEST);
    expect(v).toEqual([
      { id: 'CVE-1', severity: 'Critical', package: expect.stringContaining('openssl'), fix: '1.2.3' },
      { id: 'CVE-2', severity: 'Low', package: expect.stringContaining('zlib') },
    ]);
  });

  it('when the server is Enterprise 4.x (no V2), then version() reports no api version', async () => {
    const v1 = await startSimulator({ config: { api_version: '' } });
    try {
      const v = await client(v1).version();
      expect(v.api).toBeUndefined();
    } finally {
      await v1.stop();
    }
  });
});

describe('AnchoreHttpClient TLS', () => {
  let sim: AnchoreSimulator;
  let ca: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = join(dir, 'cert.pem');
    sim = await startSimulator({ tls: { cert: readFileSync(ca, 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') } });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('when the CA file is given, then the certificate is verified and calls succeed', async () => {
    expect(sim.url.startsWith('https://')).toBe(true);
    await expect(client(sim, { caFile: ca }).listImages('admin')).resolves.toEqual([]);
  });

  it('when no CA is given for a self-signed server, then verification fails (TLS is verified by default)', async () => {
    const e = await rejection(client(sim, { retry: { attempts: 1 } }).listImages('admin'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/SELF_SIGNED|certificate/i);
  });

  it('when insecure mode is explicitly enabled, then calls succeed and a warning is logged', async () => {
    const lines: string[] = [];
    const warnLog = createLogger({ level: 'warn', pretty: false }, { write: (s: string) => void lines.push(s) });
    await expect(client(sim, { insecureSkipTlsVerify: true, log: warnLog }).listImages('admin')).resolves.toEqual([]);
    expect(lines.join('')).toContain('TLS verification of Anchore is DISABLED');
  });
});

describe('helpers', () => {
  it.each([
    ['https://a:8228', 'https://a:8228'],
    ['https://a:8228/', 'https://a:8228'],
    ['https://a:8228/v2', 'https://a:8228'],
    ['https://a:8228/v2/', 'https://a:8228'],
    ['http://gw/anchore/v2', 'http://gw/anchore'],
  ])('when the URL is %s, then the base is %s', (raw, base) => {
    expect(normaliseBaseUrl(raw)).toBe(base);
  });

  it('when Retry-After is seconds or a date, then it parses to seconds', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThanOrEqual(9);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('when a spec uses servers /v2 with bare paths or full /v2 paths, then operations are found either way', () => {
    const a = operationsInSpec({ servers: [{ url: '/v2' }], paths: { '/images/{image_digest}': { get: {} } } });
    const b = operationsInSpec({ paths: { '/v2/images/{digest}': { get: {} } } });
    expect([...a]).toEqual(['GET /images/{}']);
    expect([...b]).toEqual(['GET /images/{}']);
  });
});
