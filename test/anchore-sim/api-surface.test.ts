import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent } from 'undici';
import { startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { call, digestOf } from './test-client.ts';

const REQUIRED_OPERATION_IDS = [
  'ping',
  'version_check',
  'add_image',
  'list_images',
  'get_image',
  'get_image_vulnerability_types',
  'get_image_vulnerabilities_by_digest',
  'get_image_policy_check_by_digest',
  'list_policies',
  'get_policy',
  'post_kubernetes_inventory',
  'list_inventories',
  'register_integration',
  'handle_health_report',
  'get_oauth_token',
];

function operationIds(doc: any): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) out.set(op.operationId, `${method.toUpperCase()} ${path}`);
  }
  return out;
}

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator();
});

afterAll(async () => {
  await sim.stop();
});

describe('basic endpoints', () => {
  it('when pinging /v2/, then the JSON string "v2" is returned', async () => {
    const res = await call(sim.url, 'GET', '/v2/');
    expect(res.status).toBe(200);
    expect(res.body).toBe('v2');
  });

  it('when asking for the version at the root or under /v2, then the ServiceVersion is returned', async () => {
    for (const path of ['/version', '/v2/version']) {
      const res = await call(sim.url, 'GET', path, { auth: undefined });
      expect(res.body).toMatchObject({ service: { version: '5.26.0' }, api: { version: '2' }, db: { schema_version: '5260' } });
    }
  });

  it('when asking for /v2/health, then 200 with an empty body', async () => {
    const res = await call(sim.url, 'GET', '/v2/health', { auth: undefined });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
  });

  it('when asking for /v2/status, then a StatusResponse is returned (auth required)', async () => {
    expect((await call(sim.url, 'GET', '/v2/status', { auth: undefined })).status).toBe(401);
    const res = await call(sim.url, 'GET', '/v2/status');
    expect(res.body).toMatchObject({ available: true, busy: false, up: true, version: '5.26.0' });
  });

  it('when a path is unknown, then 404 problem+json', async () => {
    const res = await call(sim.url, 'GET', '/v2/system/status');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.body).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: expect.stringContaining('The requested URL was not found on the server') });
  });

  it('when the method is wrong, then 405 problem+json with Allow', async () => {
    const res = await call(sim.url, 'PUT', '/v2/images');
    expect(res.status).toBe(405);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers.allow).toBe('POST, GET');
    expect(res.body).toMatchObject({ status: 405, title: 'Method Not Allowed' });
  });

  it('when an Anchore-Request-Id is sent, then it is echoed in the engine error body and as a header', async () => {
    const res = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}`, { headers: { 'anchore-request-id': 'req-123' } });
    expect(res.status).toBe(404);
    expect(res.body.anchore_request_id).toBe('req-123');
    expect(res.headers['anchore-request-id']).toBe('req-123');
  });
});

describe('error shapes', () => {
  it('when error_shape is engine, then errors are {message, httpcode, detail}', async () => {
    const res = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}`);
    expect(res.body).toEqual({ message: expect.any(String), httpcode: 404, detail: expect.objectContaining({ error_codes: [] }) });
  });

  it('when error_shape is spec, then errors are {code, error_type, message, detail}', async () => {
    const spec = await startSimulator({ config: { error_shape: 'spec' } });
    try {
      const res = await call(spec.url, 'GET', `/v2/images/${digestOf('a')}`);
      expect(res.body).toEqual({ code: 404, error_type: 'not_found', message: expect.any(String), detail: expect.any(Object) });
    } finally {
      await spec.stop();
    }
  });

  it('when error_shape is alternate, then consecutive errors switch between the engine and spec shapes', async () => {
    const alt = await startSimulator({ config: { error_shape: 'alternate' } });
    try {
      const shapes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await call(alt.url, 'GET', `/v2/images/${digestOf('a')}`);
        shapes.push('httpcode' in res.body ? 'engine' : 'code' in res.body ? 'spec' : 'other');
      }
      expect(shapes).toEqual(['engine', 'spec', 'engine', 'spec']);
    } finally {
      await alt.stop();
    }
  });
});

describe('openapi.json', () => {
  it('when fetched without credentials, then it lists every operationId the operator checks', async () => {
    const res = await call(sim.url, 'GET', '/v2/openapi.json', { auth: undefined });
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    const ids = operationIds(res.body);
    for (const id of REQUIRED_OPERATION_IDS) expect({ id, present: ids.has(id) }).toEqual({ id, present: true });
    expect(ids.get('get_image_policy_check_by_digest')).toBe('GET /images/{image_digest}/check');
    expect(ids.get('ping')).toBe('GET /');
  });

  it('when openapi_missing names operations, then they are left out (and still served)', async () => {
    const partial = await startSimulator({ config: { openapi_missing: ['post_kubernetes_inventory', 'get_oauth_token'] } });
    try {
      const ids = operationIds((await call(partial.url, 'GET', '/v2/openapi.json')).body);
      expect(ids.has('post_kubernetes_inventory')).toBe(false);
      expect(ids.has('get_oauth_token')).toBe(false);
      expect(ids.has('add_image')).toBe(true);
      const res = await call(partial.url, 'POST', '/v2/kubernetes-inventory', { json: { cluster_name: 'c', timestamp: '2024-01-01T00:00:00Z' } });
      expect(res.status).toBe(201);
    } finally {
      await partial.stop();
    }
  });

  it('when integrations are disabled, then the integration operations are left out', async () => {
    const old = await startSimulator({ config: { integrations_enabled: false } });
    try {
      const ids = operationIds((await call(old.url, 'GET', '/v2/openapi.json')).body);
      expect(ids.has('register_integration')).toBe(false);
      expect(ids.has('handle_health_report')).toBe(false);
      expect(ids.has('list_images')).toBe(true);
    } finally {
      await old.stop();
    }
  });
});

describe('older servers', () => {
  it('when api_version is empty (Enterprise 4.x), then /version reports no API version and /v2 paths answer 404', async () => {
    const v1 = await startSimulator({ config: { api_version: '', service_version: '4.9.3' } });
    try {
      const version = await call(v1.url, 'GET', '/version', { auth: undefined });
      expect(version.body.service.version).toBe('4.9.3');
      expect(version.body.api.version).toBeUndefined();
      expect((await call(v1.url, 'GET', '/v2/images')).status).toBe(404);
      expect((await call(v1.url, 'GET', '/v2/version')).status).toBe(404);
    } finally {
      await v1.stop();
    }
  });
});

describe('TLS', () => {
  it('when started with a certificate, then it serves HTTPS', async () => {
    const cert = readFileSync(new URL('./fixtures/test-only-tls.crt', import.meta.url), 'utf8');
    const key = readFileSync(new URL('./fixtures/test-only-tls.key', import.meta.url), 'utf8');
    const secure = await startSimulator({ tls: { cert, key } });
    const dispatcher = new Agent({ connect: { ca: cert } });
    try {
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await call(secure.url, 'GET', '/v2/', { dispatcher });
      expect(res.body).toBe('v2');
    } finally {
      await dispatcher.close();
      await secure.stop();
    }
  });
});
