import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { swapTypes } from './faults.ts';
import { parseFaultRules, startSimulator } from './index.ts';
import type { AnchoreSimulator, FaultRule } from './index.ts';
import { call, digestOf, digestSource, tagSource } from './test-client.ts';

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator();
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

async function statuses(n: number, path = '/v2/images'): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await call(sim.url, 'GET', path)).status);
  return out;
}

describe('fault injection', () => {
  it('when a latency rule matches, then the answer is delayed and other paths are not', async () => {
    sim.setFaults([{ path: '/v2/images', latencyMs: 150 }]);
    let t = Date.now();
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    t = Date.now();
    await call(sim.url, 'GET', '/v2/policies');
    expect(Date.now() - t).toBeLessThan(140);
  });

  it('when errorRate is 1 with status 429 and Retry-After, then every match gets 429 with that header and an error body', async () => {
    sim.setFaults([{ path: '/v2/images', errorRate: 1, status: 429, retryAfterSeconds: 7 }]);
    const res = await call(sim.url, 'GET', '/v2/images');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.body).toMatchObject({ httpcode: 429, message: expect.any(String) });
    expect(sim.requests({ path: '/v2/images' }).map((r) => r.status)).toEqual([429]);
  });

  it('when errorRate is fractional, then the outcome sequence is mixed and reproducible after setFaults', async () => {
    const rules: FaultRule[] = [{ path: '/v2/images', errorRate: 0.5, status: 503 }];
    sim.setFaults(rules);
    const first = await statuses(30);
    sim.setFaults(rules);
    const second = await statuses(30);
    expect(second).toEqual(first);
    expect(first.filter((s) => s === 503).length).toBeGreaterThan(5);
    expect(first.filter((s) => s === 200).length).toBeGreaterThan(5);
  });

  it('when errorRate has no status, then injected errors are 500', async () => {
    sim.setFaults([{ errorRate: 1 }]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(500);
  });

  it('when an injected error hits POST /v2/images, then no image is created', async () => {
    sim.setFaults([{ method: 'POST', path: '/v2/images', status: 503 }]);
    expect((await call(sim.url, 'POST', '/v2/images', { json: tagSource('nginx:1') })).status).toBe(503);
    expect(sim.images('admin')).toEqual([]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when inside an outage window, then matching requests get 503; after it, they succeed', async () => {
    const now = Date.now();
    sim.setFaults([{ path: /^\/v2\/images/, outage: { fromMs: now - 10, untilMs: now + 250 } }]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(503);
    expect((await call(sim.url, 'GET', '/v2/policies')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when an outage window lies in the future, then requests are not affected yet', async () => {
    sim.setFaults([{ outage: { fromMs: Date.now() + 60_000, untilMs: Date.now() + 120_000 }, status: 502 }]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when a rule has a count, then it expires after that many hits', async () => {
    sim.setFaults([{ path: '/v2/images', status: 500, count: 2 }]);
    expect(await statuses(4)).toEqual([500, 500, 200, 200]);
  });

  it('when a reset rule matches, then the connection is dropped without a response and logged with status 0', async () => {
    sim.setFaults([{ path: '/v2/images', reset: true, count: 1 }]);
    await expect(call(sim.url, 'GET', '/v2/images')).rejects.toThrow();
    expect(sim.requests({ path: '/v2/images' }).map((r) => r.status)).toEqual([0]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when an htmlLogin rule matches, then 200 text/html login page is served', async () => {
    sim.setFaults([{ htmlLogin: true }]);
    const res = await call(sim.url, 'GET', '/v2/images');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toMatch(/^<!DOCTYPE html>/);
    expect(res.body).toBeUndefined();
  });

  it('when a truncatedJson rule matches, then 200 application/json with a body that does not parse', async () => {
    sim.setFaults([{ truncatedJson: true }]);
    const res = await call(sim.url, 'GET', '/v2/images');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.text.length).toBeGreaterThan(10);
    expect(() => JSON.parse(res.text)).toThrow();
  });

  it('when a rule names a method, then other methods on the path are untouched', async () => {
    sim.setFaults([{ method: 'post', path: '/v2/images', status: 500 }]);
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
    expect((await call(sim.url, 'POST', '/v2/images', { json: tagSource('nginx:1') })).status).toBe(500);
  });

  it('when faults are cleared, then requests are served normally', async () => {
    sim.setFaults([{ status: 500 }]);
    sim.clearFaults();
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
  });

  it('when latency and an error rule both match, then the error arrives after the delay', async () => {
    sim.setFaults([{ latencyMs: 100 }, { status: 502 }]);
    const t = Date.now();
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(502);
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
  });

  it('when a rule is malformed, then setFaults throws', () => {
    expect(() => sim.setFaults([{ errorRate: 2 }])).toThrow(/errorRate/);
    expect(() => parseFaultRules([{ bogus: true }])).toThrow(/bogus/);
    expect(() => parseFaultRules([{ hugeBodyBytes: 0 }])).toThrow(/hugeBodyBytes/);
    expect(() => parseFaultRules([{ hugeBodyBytes: 1.5 }])).toThrow(/hugeBodyBytes/);
    expect(() => parseFaultRules([{ wrongTypes: 'yes' }])).toThrow(/wrongTypes/);
    expect(() => parseFaultRules([{ contentType: 'text/plain' }])).toThrow(/contentType needs body/);
  });

  it('when a body rule matches, then that literal body is served (JSON for values, as-is for strings) and nothing is created', async () => {
    sim.setFaults([
      { method: 'POST', path: '/v2/images', body: { image_digest: digestOf('a') }, count: 1 },
      { path: '/v2/policies', body: 'plain words', contentType: 'text/plain', status: 202 },
    ]);
    const add = await call(sim.url, 'POST', '/v2/images', { json: tagSource('nginx:1') });
    expect(add.status).toBe(200);
    expect(add.headers['content-type']).toBe('application/json');
    expect(add.body).toEqual({ image_digest: digestOf('a') });
    expect(sim.images('admin')).toEqual([]);
    const pol = await call(sim.url, 'GET', '/v2/policies');
    expect({ status: pol.status, type: pol.headers['content-type'], text: pol.text }).toEqual({ status: 202, type: 'text/plain', text: 'plain words' });
  });

  it('when a hugeBodyBytes rule matches, then about that many bytes of a valid image list arrive without content-length', async () => {
    sim.setFaults([{ path: '/v2/images', hugeBodyBytes: 300_000 }]);
    const res = await call(sim.url, 'GET', '/v2/images');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(Buffer.byteLength(res.text)).toBe(300_000);
    expect(Array.isArray(res.body.items)).toBe(true);
    expect(res.body.items.length).toBeGreaterThan(1000);
  });

  it('when a client hangs up on an endless hugeBodyBytes stream, then the simulator stops writing and keeps serving', async () => {
    sim.setFaults([{ path: '/v2/images', hugeBodyBytes: Number.MAX_SAFE_INTEGER, count: 1 }]);
    const res = await request(`${sim.url}/v2/images`, { headers: { authorization: `Basic ${Buffer.from('admin:foobar').toString('base64')}` } });
    let got = 0;
    for await (const chunk of res.body) {
      got += (chunk as Buffer).length;
      if (got > 2 * 1024 * 1024) break; // leaving the loop destroys the stream
    }
    expect(got).toBeGreaterThan(2 * 1024 * 1024);
    // The stream's request is logged once it stopped writing; then the simulator answers normally.
    const deadline = Date.now() + 5000;
    while (sim.requests({ path: '/v2/images' }).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sim.requests({ path: '/v2/images' }).map((r) => r.status)).toEqual([200]);
    expect((await call(sim.url, 'GET', '/v2/images')).body).toEqual({ items: [] });
  });

  it('when a wrongTypes rule matches POST /v2/images and GET /v2/images, then the handler runs but the answers have a numeric image_digest and an object for the list', async () => {
    sim.setFaults([{ path: '/v2/images', wrongTypes: true }]);
    const digest = digestOf('b');
    const add = await call(sim.url, 'POST', '/v2/images', { json: digestSource('docker.io/library/nginx', digest, 'docker.io/library/nginx:1') });
    expect(add.status).toBe(200);
    expect(add.body.image_digest).toBe(digest.length);
    expect(typeof add.body.analysis_status).toBe('number');
    expect(sim.images('admin').map((i) => i.image_digest)).toEqual([digest]);
    const list = await call(sim.url, 'GET', '/v2/images');
    expect(Array.isArray(list.body.items)).toBe(false);
    expect(list.body.items['0'].image_digest).toBe(digest.length);
    // Error answers pass unchanged.
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('c')}`)).status).toBe(404);
  });

  it("when a maxBodyBytes rule is set, then a larger body gets a proxy's 413 text/html and never reaches Anchore, and a smaller one passes", async () => {
    sim.setFaults([{ method: 'POST', path: '/v2/kubernetes-inventory', maxBodyBytes: 2000 }]);
    const report = (pods: number): Record<string, unknown> => ({
      cluster_name: 'c',
      timestamp: '2024-05-01T10:00:00Z',
      namespaces: [{ uid: '00000000-0000-4000-8000-000000000001', name: 'web' }],
      pods: Array.from({ length: pods }, (_, i) => ({ uid: `00000000-0000-4000-8000-1${String(i).padStart(11, '0')}`, name: `p${i}`, namespace_uid: '00000000-0000-4000-8000-000000000001' })),
    });
    const small = JSON.stringify(report(2));
    const large = JSON.stringify(report(40));
    expect(Buffer.byteLength(small)).toBeLessThanOrEqual(2000);
    expect(Buffer.byteLength(large)).toBeGreaterThan(2000);
    const refused = await call(sim.url, 'POST', '/v2/kubernetes-inventory', { raw: large, contentType: 'application/json' });
    expect(refused.status).toBe(413);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.text).toContain('413 Request Entity Too Large');
    expect(sim.inventories('admin')).toEqual([]);
    expect((await call(sim.url, 'POST', '/v2/kubernetes-inventory', { raw: small, contentType: 'application/json' })).status).toBe(201);
    // Other requests are not matched (no body), and the rule did not expire.
    expect((await call(sim.url, 'GET', '/v2/images')).status).toBe(200);
    expect((await call(sim.url, 'POST', '/v2/kubernetes-inventory', { raw: large, contentType: 'application/json' })).status).toBe(413);
    expect(sim.requests({ path: '/v2/kubernetes-inventory' }).map((r) => r.status)).toEqual([413, 201, 413]);
    expect(() => parseFaultRules([{ maxBodyBytes: -1 }])).toThrow(/maxBodyBytes/);
    expect(() => parseFaultRules([{ maxBodyBytes: 1.5 }])).toThrow(/maxBodyBytes/);
  });

  it('when types are swapped, then strings become lengths, numbers strings, booleans yes/no and arrays objects, recursively', () => {
    expect(swapTypes({ a: 'abc', b: 2, c: [true, false, null], d: { e: 'x' } })).toEqual({ a: 3, b: '2', c: { 0: 'yes', 1: 'no', 2: null }, d: { e: 1 } });
  });
});
