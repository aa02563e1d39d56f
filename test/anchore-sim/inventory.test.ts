import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { INTEGRATION_TYPE, startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { TEAM_A, call, digestOf, uidOf } from './test-client.ts';

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator();
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

/** A small report: one namespace per entry, one pod with one container per image. */
function report(cluster: string, namespaces: Record<string, Array<[string, string]>>, timestamp = '2024-05-01T10:00:00Z'): Record<string, unknown> {
  const body = { cluster_name: cluster, timestamp, namespaces: [] as unknown[], pods: [] as unknown[], containers: [] as unknown[], nodes: [] };
  for (const [ns, images] of Object.entries(namespaces)) {
    body.namespaces.push({ uid: uidOf(`ns-${ns}`), name: ns, labels: {}, annotations: {} });
    images.forEach(([tag, digest], i) => {
      body.pods.push({ uid: uidOf(`pod-${ns}-${i}`), name: `p${i}`, namespace_uid: uidOf(`ns-${ns}`) });
      body.containers.push({ id: `containerd://${ns}${i}`, name: 'c', image_tag: tag, image_digest: digest, pod_uid: uidOf(`pod-${ns}-${i}`) });
    });
  }
  return body;
}

async function postInventory(body: unknown, opts: { account?: string; contentType?: string } = {}): Promise<{ status: number; text: string; body: any }> {
  return call(sim.url, 'POST', '/v2/kubernetes-inventory', { json: body, ...opts });
}

describe('POST /v2/kubernetes-inventory', () => {
  it('when the report is valid, then 201 with an empty body and the report is recorded', async () => {
    const body = report('prod', { web: [['docker.io/nginx:1.25', digestOf('a')]] });
    const res = await postInventory(body);
    expect(res.status).toBe(201);
    expect(res.text).toBe('');
    const stored = sim.inventories('admin');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ account: 'admin', receivedAt: expect.any(Number), body });
  });

  it('when cluster_name or timestamp is missing, then 400', async () => {
    expect((await postInventory({ timestamp: '2024-01-01T00:00:00Z' })).status).toBe(400);
    expect((await postInventory({ cluster_name: 'c' })).status).toBe(400);
  });

  it('when the timestamp is not RFC3339, then 400', async () => {
    expect((await postInventory({ cluster_name: 'c', timestamp: '2024-01-01 00:00' })).status).toBe(400);
  });

  it('when a container has a blank image_tag, then 400', async () => {
    const body = report('c', { web: [['  ', digestOf('a')]] });
    const res = await postInventory(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('image_tag');
  });

  it('when a pod has no namespace_uid, then 400', async () => {
    const res = await postInventory({ cluster_name: 'c', timestamp: '2024-01-01T00:00:00Z', pods: [{ uid: uidOf('p'), name: 'p' }] });
    expect(res.status).toBe(400);
  });

  it('when the content type is not JSON, then 415', async () => {
    const res = await call(sim.url, 'POST', '/v2/kubernetes-inventory', { raw: JSON.stringify(report('c', {})), contentType: 'text/plain' });
    expect(res.status).toBe(415);
    expect(sim.inventories('admin')).toHaveLength(0);
  });

  it('when unknown members are sent (serverVersionMetadata), then they are tolerated', async () => {
    const res = await postInventory({ ...report('c', {}), serverVersionMetadata: { major: '1', minor: '30' } });
    expect(res.status).toBe(201);
  });

  it('when x-anchore-account is sent by an admin, then the report lands in that account', async () => {
    await postInventory(report('c', { a: [['x:1', digestOf('a')]] }), { account: 'team-a' });
    expect(sim.inventories('team-a')).toHaveLength(1);
    expect(sim.inventories('admin')).toHaveLength(0);
    const items = await call(sim.url, 'GET', '/v2/inventories', { auth: TEAM_A });
    expect(items.body.items).toHaveLength(1);
  });
});

describe('retention', () => {
  it('when reports exceed the retention budget, then the oldest are dropped, every one reached onInventory, and the store still answers', async () => {
    const seen: string[] = [];
    const small = await startSimulator({ retention: { inventoryReportBytes: 1000, requestBodyMaxBytes: 100 }, onInventory: (r) => seen.push(r.body.timestamp) });
    try {
      const stamps = ['2024-05-01T10:00:00Z', '2024-05-01T10:00:01Z', '2024-05-01T10:00:02Z', '2024-05-01T10:00:03Z'];
      const images: Array<[string, string]> = Array.from({ length: 5 }, (_, i) => [`docker.io/app-${i}:1`, digestOf(`r${i}`)]);
      for (const ts of stamps) expect((await call(small.url, 'POST', '/v2/kubernetes-inventory', { json: report('prod', { web: images }, ts) })).status).toBe(201);
      expect(seen).toEqual(stamps);
      const kept = small.inventories('admin').map((r) => r.body.timestamp);
      expect(kept.length).toBeLessThan(stamps.length);
      expect(kept.at(-1)).toBe(stamps.at(-1));
      // Request bodies over the size cap are replaced by a note; the entries themselves stay.
      const logged = small.requests({ path: '/v2/kubernetes-inventory' });
      expect(logged).toHaveLength(stamps.length);
      expect(logged.every((r) => typeof r.body === 'string' && r.body.includes('dropped from the request log'))).toBe(true);
      const listed = await call(small.url, 'GET', '/v2/inventories');
      expect(listed.status).toBe(200);
      expect(listed.body.length ?? listed.body.items?.length).toBeGreaterThan(0);
    } finally {
      await small.stop();
    }
  });
});

describe('GET /v2/inventories', () => {
  it('when reports were posted, then items carry kubernetes type, cluster/namespace context, tag and digest', async () => {
    await postInventory(report('prod', { web: [['docker.io/nginx:1.25', digestOf('a')]], db: [['docker.io/postgres:16', digestOf('b')]] }));
    const res = await call(sim.url, 'GET', '/v2/inventories');
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual(
      expect.arrayContaining([
        {
          inventory_type: 'kubernetes',
          context: 'prod/web',
          image_tag: 'docker.io/nginx:1.25',
          image_digest: digestOf('a'),
          created_at: expect.any(String),
          last_updated: expect.any(String),
          last_seen: '2024-05-01T10:00:00Z',
        },
        expect.objectContaining({ context: 'prod/db', image_digest: digestOf('b') }),
      ]),
    );
    expect(res.body.items).toHaveLength(2);
  });

  it('when filtering by image_digest or context, then only matching items are listed', async () => {
    await postInventory(
      report('prod', {
        web: [
          ['nginx:1', digestOf('a')],
          ['redis:7', digestOf('b')],
        ],
        db: [['nginx:1', digestOf('a')]],
      }),
    );
    const byDigest = await call(sim.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`);
    expect(byDigest.body.items.map((i: any) => i.context).sort()).toEqual(['prod/db', 'prod/web']);
    const byContext = await call(sim.url, 'GET', '/v2/inventories?context=prod/db');
    expect(byContext.body.items.map((i: any) => i.image_digest)).toEqual([digestOf('a')]);
    const both = await call(sim.url, 'GET', `/v2/inventories?context=prod/web&image_digest=${digestOf('b')}`);
    expect(both.body.items).toHaveLength(1);
    expect((await call(sim.url, 'GET', '/v2/inventories?inventory_type=ecs')).body.items).toEqual([]);
    expect((await call(sim.url, 'GET', '/v2/inventories?inventory_type=vm')).status).toBe(400);
  });

  it('when a later report contains a namespace, then it replaces that namespace only', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }));
    await postInventory(report('prod', { web: [['nginx:2', digestOf('c')]] }, '2024-05-01T10:05:00Z'));
    const items = (await call(sim.url, 'GET', '/v2/inventories')).body.items;
    expect(items.map((i: any) => `${i.context} ${i.image_tag}`).sort()).toEqual(['prod/db postgres:16', 'prod/web nginx:2']);
    expect((await call(sim.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`)).body.items).toEqual([]);
  });

  it('when a namespace is sent in two parts with overwrite on (the default), then only the last part stays: the first is erased', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }));
    await postInventory(report('prod', { web: [['redis:7', digestOf('c')]] }, '2024-05-01T10:05:00Z'));
    const items = (await call(sim.url, 'GET', '/v2/inventories')).body.items;
    expect(items.map((i: any) => `${i.context} ${i.image_tag}`).sort()).toEqual(['prod/db postgres:16', 'prod/web redis:7']);
  });

  it('when inventory_ingest_overwrite is off, then a namespace sent in two parts keeps both and nothing is removed', async () => {
    const keep = await startSimulator({ config: { inventory_ingest_overwrite: false } });
    try {
      const post = (body: unknown): Promise<{ status: number }> => call(keep.url, 'POST', '/v2/kubernetes-inventory', { json: body });
      expect((await post(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }))).status).toBe(201);
      expect((await post(report('prod', { web: [['redis:7', digestOf('c')]] }, '2024-05-01T10:05:00Z'))).status).toBe(201);
      expect((await post(report('prod', { db: [] }, '2024-05-01T10:06:00Z'))).status).toBe(201);
      const items = (await call(keep.url, 'GET', '/v2/inventories')).body.items;
      expect(items.map((i: any) => `${i.context} ${i.image_tag}`).sort()).toEqual(['prod/db postgres:16', 'prod/web nginx:1', 'prod/web redis:7']);
      expect((await call(keep.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`)).body.items).toHaveLength(1);
    } finally {
      await keep.stop();
    }
  });

  it('when a namespace is reported empty, then its items disappear', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }));
    await postInventory(report('prod', { web: [] }));
    expect((await call(sim.url, 'GET', '/v2/inventories')).body.items).toEqual([]);
  });

  it('when the same image is reported again, then created_at is kept and last_seen moves', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }, '2024-05-01T10:00:00Z'));
    const first = (await call(sim.url, 'GET', '/v2/inventories')).body.items[0];
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }, '2024-05-01T11:00:00Z'));
    const second = (await call(sim.url, 'GET', '/v2/inventories')).body.items[0];
    expect(second.created_at).toBe(first.created_at);
    expect(second.last_seen).toBe('2024-05-01T11:00:00Z');
  });
});

describe('integrations', () => {
  const registration = {
    registration_id: 'deploy-uid',
    registration_instance_id: 'pod-1',
    type: INTEGRATION_TYPE,
    username: 'admin',
    health_report_interval: 60,
    name: 'anchore-operator',
    version: '0.1.0',
  };

  it('when registering, then 201 with an Integration carrying a uuid; registering again, then 200 with the same uuid', async () => {
    const first = await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: registration });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), type: INTEGRATION_TYPE, registration_id: 'deploy-uid', account_name: 'admin' });
    const again = await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: registration });
    expect(again.status).toBe(200);
    expect(again.body.uuid).toBe(first.body.uuid);
    const other = await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: { ...registration, registration_instance_id: 'pod-2' } });
    expect(other.status).toBe(201);
    expect(other.body.uuid).not.toBe(first.body.uuid);
    expect(sim.integrations()).toHaveLength(2);
  });

  it('when a required field is missing or the type is wrong, then 400', async () => {
    const { username: _u, ...noUser } = registration;
    expect((await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: noUser })).status).toBe(400);
    expect((await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: { ...registration, type: 'other' } })).status).toBe(400);
  });

  it('when a health report is sent for a known uuid, then 201 and it is recorded; for an unknown uuid, then 404', async () => {
    const reg = await call(sim.url, 'POST', '/v2/system/integrations/registration', { json: registration });
    const health = {
      uuid: uidOf('report-1'),
      protocol_version: 1,
      timestamp: '2024-05-01T10:00:00Z',
      uptime: 12.5,
      health_report_interval: 60,
      health_data: { type: INTEGRATION_TYPE, version: 1, errors: [] },
    };
    const ok = await call(sim.url, 'POST', `/v2/system/integrations/${reg.body.uuid}/health-report`, { json: health });
    expect(ok.status).toBe(201);
    expect(ok.text).toBe('');
    const [rec] = sim.integrations();
    expect(rec?.healthReports).toEqual([{ receivedAt: expect.any(Number), body: health }]);
    expect(rec?.integration.last_seen).toEqual(expect.any(String));
    const missing = await call(sim.url, 'POST', '/v2/system/integrations/00000000-0000-4000-8000-000000000000/health-report', { json: health });
    expect(missing.status).toBe(404);
  });

  it('when integrations are disabled, then both endpoints answer 404 problem+json', async () => {
    const old = await startSimulator({ config: { integrations_enabled: false } });
    try {
      const res = await call(old.url, 'POST', '/v2/system/integrations/registration', { json: registration });
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.body).toMatchObject({ status: 404, title: 'Not Found' });
      expect((await call(old.url, 'POST', '/v2/system/integrations/abc/health-report', { json: {} })).status).toBe(404);
    } finally {
      await old.stop();
    }
  });
});
