import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { AnchoreHttpClient, type AnchoreHttpConfig } from './anchore.http.ts';
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

  it('when the connection is reset, then the error is kind unavailable with a clear message', async () => {
    sim.setFaults([{ path: '/v2/images', reset: true }]);
    const e = await rejection(client(sim, { retry: { attempts: 1 } }).listImages('admin'));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/cannot reach Anchore/);
  });

  describe('hostile answers', () => {
    /** A client whose attempts are recorded by the operator's real metrics (and as raw onRequest events). */
    function metered(over: Partial<AnchoreHttpConfig> = {}) {
      const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
      const events: Array<{ operation: string; status: number; errorKind?: string }> = [];
      const c = client(sim, {
        retry: { attempts: 1 },
        onRequest: (e) => {
          events.push({ operation: e.operation, status: e.status, ...(e.errorKind ? { errorKind: e.errorKind } : {}) });
          metrics.anchoreRequest(e);
        },
        ...over,
      });
      const series = async (): Promise<string[]> => (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('anchore_operator_anchore_requests_total{'));
      return { c, events, series };
    }

    const validImage = { image_digest: DIGEST, analysis_status: 'analyzed', image_status: 'active', image_detail: [] };

    it.each([
      ['an HTML login page', { htmlLogin: true }, /expected JSON but got text\/html.*login page/],
      ['truncated JSON', { truncatedJson: true }, /not valid JSON \(\d+ bytes; truncated\?\)/],
      ['an object where the list belongs (wrong types)', { wrongTypes: true }, /"items" is an object, not an array of images/],
      ['a bare number', { body: 42 }, /expected a JSON object, got the number 42/],
    ])('when GET /v2/images answers 200 with %s, then listImages fails with kind protocol, once in the metrics as code 200 error protocol, never as a success', async (_name, fault, re) => {
      sim.setFaults([{ path: '/v2/images', ...fault }]);
      const m = metered();
      const e = await rejection(m.c.listImages('admin'));
      expect(e.kind).toBe('protocol');
      expect(e.retryable).toBe(true);
      expect(e.message).toMatch(/^list_images: unexpected response: /);
      expect(e.message).toMatch(re);
      expect(m.events).toEqual([{ operation: 'list_images', status: 200, errorKind: 'protocol' }]);
      expect(await m.series()).toEqual(['anchore_operator_anchore_requests_total{operation="list_images",code="200",error="protocol"} 1']);
    });

    it('when a malformed answer comes and goes, then the call is retried and the good answer is used', async () => {
      sim.setFaults([{ path: '/v2/images', truncatedJson: true, count: 1 }]);
      const m = metered({ retry: { attempts: 2, backoff: { baseMs: 10, maxMs: 10, jitter: 0 } } });
      await expect(m.c.listImages('admin')).resolves.toEqual([]);
      expect(m.events.map((e) => e.errorKind ?? 'ok')).toEqual(['protocol', 'ok']);
      expect(await m.series()).toEqual([
        'anchore_operator_anchore_requests_total{operation="list_images",code="200",error="protocol"} 1',
        'anchore_operator_anchore_requests_total{operation="list_images",code="200"} 1',
      ]);
    });

    it('when POST /v2/images answers with swapped types (a numeric image_digest), then addImage fails with kind protocol naming the field, and the metrics count it', async () => {
      sim.setFaults([{ method: 'POST', path: '/v2/images', wrongTypes: true }]);
      const m = metered();
      const e = await rejection(m.c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` }));
      expect(e.kind).toBe('protocol');
      expect(e.message).toBe('add_image: unexpected response: image_digest is the number 71, not a sha256 digest');
      expect(await m.series()).toEqual(['anchore_operator_anchore_requests_total{operation="add_image",code="200",error="protocol"} 1']);
    });

    it.each([
      ['an image without analysis_status', { image_digest: DIGEST }, /analysis_status of sha256:a+b+.* is missing, not a string/],
      ['an image with a numeric analysis_status', { image_digest: DIGEST, analysis_status: 3 }, /analysis_status of .* is the number 3, not a string/],
      ['an image whose image_digest is "latest"', { image_digest: 'latest', analysis_status: 'analyzed' }, /image_digest is the string "latest", not a sha256 digest/],
      ['an empty list', [], /expected an image object, got missing/],
      ['JSON null', null, /expected an image object, got null/],
    ])('when POST /v2/images answers %s, then addImage fails with kind protocol', async (_name, body, re) => {
      sim.setFaults([{ method: 'POST', path: '/v2/images', body }]);
      const m = metered();
      const e = await rejection(m.c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` }));
      expect(e.kind).toBe('protocol');
      expect(e.message).toMatch(re);
      expect(m.events).toEqual([{ operation: 'add_image', status: 200, errorKind: 'protocol' }]);
    });

    it('when the image list holds entries of the wrong types next to good ones, then the good ones are returned and the rest ignored with one warning', async () => {
      const lines: string[] = [];
      const warnLog = createLogger({ level: 'warn', pretty: false }, { write: (s: string) => void lines.push(s) });
      sim.setFaults([{ path: '/v2/images', body: { items: [{ image_digest: 7, analysis_status: 'analyzed' }, 'junk', validImage] } }]);
      const m = metered({ log: warnLog });
      await expect(m.c.listImages('admin')).resolves.toEqual([expect.objectContaining({ image_digest: DIGEST, analysis_status: 'analyzed' })]);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ dropped: 2, example: 'image_digest is the number 7, not a sha256 digest', msg: expect.stringContaining('cannot read') });
    });

    it('when Anchore streams 200 MB of JSON, then the client stops at the 64 MiB limit of list_images and fails with kind protocol saying so', async () => {
      sim.setFaults([{ path: '/v2/images', hugeBodyBytes: 200 * 1024 * 1024 }]);
      const m = metered();
      const e = await rejection(m.c.listImages('admin'));
      expect(e.kind).toBe('protocol');
      expect(e.message).toBe('list_images: unexpected response: response body exceeds the 64 MiB limit for list_images; stopped reading there');
      expect(await m.series()).toEqual(['anchore_operator_anchore_requests_total{operation="list_images",code="200",error="protocol"} 1']);
    });

    it('when the body never ends, then the call fails at the configured maxResponseBytes instead of reading forever', async () => {
      sim.setFaults([{ path: '/v2/images', hugeBodyBytes: Number.MAX_SAFE_INTEGER }]);
      const t0 = Date.now();
      const e = await rejection(metered({ maxResponseBytes: 1024 * 1024 }).c.listImages('admin'));
      expect(e.kind).toBe('protocol');
      expect(e.message).toMatch(/exceeds the 1 MiB limit \(maxResponseBytes\); stopped reading there/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    });

    it('when the content-length announces more than maxResponseBytes, then the body is not read at all', async () => {
      sim.setFaults([{ path: '/v2/images', body: { items: [], pad: 'x'.repeat(2 * 1024 * 1024) } }]);
      const e = await rejection(metered({ maxResponseBytes: 1024 * 1024 }).c.listImages('admin'));
      expect(e.kind).toBe('protocol');
      expect(e.message).toMatch(/response body of 20971\d\d bytes \(content-length\) exceeds the 1 MiB limit \(maxResponseBytes\); not read/);
    });

    it('when an error answer is too large to read, then it is still classified by its status and Retry-After', async () => {
      sim.setFaults([{ path: '/v2/images', status: 503, body: { message: 'x'.repeat(2 * 1024 * 1024) }, count: 1 }]);
      const m = metered({ maxResponseBytes: 1024 * 1024 });
      const e = await rejection(m.c.listImages('admin'));
      expect({ kind: e.kind, status: e.status }).toEqual({ kind: 'unavailable', status: 503 });
      expect(m.events).toEqual([{ operation: 'list_images', status: 503, errorKind: 'unavailable' }]);
    });

    it('when an image reports an analysis_status this client does not know, then it reads as unknown (not final) with one warning per value', async () => {
      const lines: string[] = [];
      const warnLog = createLogger({ level: 'warn', pretty: false }, { write: (s: string) => void lines.push(s) });
      sim.setFaults([{ path: `/v2/images/${DIGEST}`, body: { ...validImage, analysis_status: 'queued_for_magic' } }]);
      const m = metered({ log: warnLog });
      await expect(m.c.getImage('admin', DIGEST)).resolves.toMatchObject({ image_digest: DIGEST, analysis_status: 'unknown' });
      await expect(m.c.getImage('admin', DIGEST)).resolves.toMatchObject({ analysis_status: 'unknown' });
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ analysis_status: 'queued_for_magic', digest: DIGEST, msg: expect.stringContaining('treating it as not final') });
      expect(m.events.every((e) => e.errorKind === undefined)).toBe(true);
    });

    it.each([
      ['final_action "maybe" with status pass', { status: 'pass', final_action: 'maybe' }, /final_action is the string "maybe", not go, warn or stop; the verdict cannot be read/],
      ['no final_action', { status: 'pass' }, /final_action is missing/],
      ['a numeric final_action', { status: 'fail', final_action: 1 }, /final_action is the number 1/],
    ])('when a policy check answers %s, then checkImage fails with kind protocol instead of reading a verdict', async (_name, result, re) => {
      sim.setFaults([
        {
          path: `/v2/images/${DIGEST}/check`,
          body: {
            policy_id: 'p1',
            image_digest: DIGEST,
            evaluated_tag: 'docker.io/library/nginx:1.25',
            evaluations: [{ ...result, final_action_reason: 'policy_evaluation', details: { findings: [] } }],
          },
        },
      ]);
      const m = metered();
      const e = await rejection(m.c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25'));
      expect(e.kind).toBe('protocol');
      expect(e.message).toMatch(re);
      expect(await m.series()).toEqual(['anchore_operator_anchore_requests_total{operation="get_image_policy_check_by_digest",code="200",error="protocol"} 1']);
    });

    it('when a policy check answers an unknown finding action, then the verdict is still read and that finding is marked unknown', async () => {
      sim.setFaults([
        {
          path: `/v2/images/${DIGEST}/check`,
          body: { policy_id: 'p1', evaluations: [{ status: 'fail', final_action: 'stop', details: { findings: [{ gate: 'g', trigger: 't', action: 'perhaps', message: 'm' }] } }] },
        },
      ]);
      await expect(metered().c.checkImage('admin', DIGEST, 'docker.io/library/nginx:1.25')).resolves.toMatchObject({
        status: 'fail',
        final_action: 'stop',
        findings: [{ gate: 'g', trigger: 't', action: 'unknown', message: 'm' }],
      });
    });

    it('when Anchore answers an error status, then the metrics carry its kind next to the code', async () => {
      sim.setFaults([{ path: '/v2/images', status: 503, count: 1 }]);
      const m = metered();
      await rejection(m.c.listImages('admin'));
      await rejection(m.c.getImage('admin', DIGEST));
      expect((await m.series()).sort()).toEqual([
        'anchore_operator_anchore_requests_total{operation="get_image",code="404",error="not-found"} 1',
        'anchore_operator_anchore_requests_total{operation="list_images",code="503",error="unavailable"} 1',
      ]);
    });
  });

  it('when calls exceed the rate limit, then each call costs one token: 21 calls at 20/s with a burst of 1 take about a second', async () => {
    const c = client(sim, { ratePerSecond: 20, burst: 1 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 21 }, () => c.listImages('admin')));
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(950);
    // Two tokens per call would need two seconds.
    expect(ms).toBeLessThan(1_800);
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
      registration_id: 'r1',
      registration_instance_id: 'i1',
      type: 'k8s_inventory_agent',
      name: 'n',
      version: '0.1.0',
      username: 'admin',
      health_report_interval: 60,
      cluster_name: 'c1',
      started_at: '2026-12-06T00:00:00Z',
      uptime: 0.5,
      explicitly_account_bound: ['admin', 'team-a'],
      namespaces: ['shop-*'],
      configuration: { inventory: { interval_seconds: 300 } },
    });
    const accounts = {
      admin: {
        report_timestamp: '2026-12-06T00:00:01Z',
        batch_size: 2,
        last_successful_index: 2,
        has_errors: false,
        batches: [
          { batch_index: 1, send_timestamp: '2026-12-06T00:00:01Z' },
          { batch_index: 2, send_timestamp: '2026-12-06T00:00:01Z' },
        ],
      },
    };
    await c.sendHealthReport('admin', uuid, { uptime: 1, health_report_interval: 60, errors: [], accounts });
    expect(sim.integrations()).toEqual([expect.objectContaining({ uuid })]);
    const [sent] = sim.integrations()[0]?.healthReports ?? [];
    expect(sent?.body).toMatchObject({ health_data: { account_k8s_inventory_reports: { admin: { ...accounts.admin, account_name: 'admin', sent_as_user: 'admin' } } } });
    expect(sim.contractViolations()).toEqual([]);
    const e = await rejection(c.sendHealthReport('admin', '00000000-0000-4000-8000-000000000000', { uptime: 1, health_report_interval: 60, errors: [], accounts: {} }));
    expect(e.kind).toBe('not-found');
  });

  it('when x-anchore-account names an account Anchore does not have, then the error is kind account-not-found', async () => {
    const e = await rejection(client(sim).listImages('no-such-account'));
    expect(e.kind).toBe('account-not-found');
    expect(e.status).toBe(404);
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

  it('when vulnerabilities are set, then they come back with normalised severities, fixes, known-exploited flags and EPSS', async () => {
    const c = client(sim);
    await c.addImage('admin', { tag: 'docker.io/library/nginx:1.25', digestPullString: `docker.io/library/nginx@${DIGEST}` });
    for (let i = 0; i < 50 && (await c.getImage('admin', DIGEST)).analysis_status !== 'analyzed'; i++) await new Promise((r) => setTimeout(r, 20));
    sim.setVulnerabilities(DIGEST, [
      { vuln: 'CVE-1', severity: 'Critical', fix: '1.2.3', package: 'openssl', is_kev: true, epss: 0.91 },
      { vuln: 'CVE-2', severity: 'Low', package: 'zlib', is_kev: false, epss: 0.0004 },
      { vuln: 'GHSA-aaaa-bbbb-cccc', severity: 'High', package: 'lodash', is_kev: false },
    ]);
    const v = await c.vulnerabilities('admin', DIGEST);
    expect(v).toEqual([
      { id: 'CVE-1', severity: 'Critical', package: expect.stringContaining('openssl'), fix: '1.2.3', kev: true, epss: 0.91 },
      { id: 'CVE-2', severity: 'Low', package: expect.stringContaining('zlib'), epss: 0.0004 },
      { id: 'GHSA-aaaa-bbbb-cccc', severity: 'High', package: expect.stringContaining('lodash') },
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
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
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

  it('when no CA is given for a self-signed server, then verification fails (TLS is verified by default) with the cause and the fix, not retried', async () => {
    const e = await rejection(client(sim, { retry: { attempts: 4 } }).listImages('admin'));
    expect(e.kind).toBe('tls');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/not signed by a CA the operator trusts: set ANCHORE_CA_FILE .*\((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/);
  });

  it('when insecure mode is explicitly enabled, then calls succeed and a warning is logged', async () => {
    const lines: string[] = [];
    const warnLog = createLogger({ level: 'warn', pretty: false }, { write: (s: string) => void lines.push(s) });
    await expect(client(sim, { insecureSkipTlsVerify: true, log: warnLog }).listImages('admin')).resolves.toEqual([]);
    expect(lines.join('')).toContain('TLS verification of Anchore is DISABLED');
  });
});
