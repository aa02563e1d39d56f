import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { INTEGRATION_TYPE, startSimulator } from './index.ts';
import type { AnchoreSimulator, InventoryReport } from './index.ts';
import { InventoryStore } from './inventory.ts';
import { TEAM_A, call, digestOf, uidOf } from './test-client.ts';

const DAY = 86_400_000;

/** Report timestamps relative to a recent whole second (inventory older than inventory_ttl_days is gone). */
const T0 = Math.floor(Date.now() / 1000) * 1000 - DAY;
function at(minutes: number, base = T0): string {
  return new Date(base + minutes * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator();
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

/** A small report: one namespace per entry, one pod with one container per image. */
function report(cluster: string, namespaces: Record<string, Array<[string, string]>>, timestamp = at(0)): Record<string, unknown> {
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
      const stamps = [at(0), at(1), at(2), at(3)];
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
          last_seen: at(0),
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
    await postInventory(report('prod', { web: [['nginx:2', digestOf('c')]] }, at(5)));
    const items = (await call(sim.url, 'GET', '/v2/inventories')).body.items;
    expect(items.map((i: any) => `${i.context} ${i.image_tag}`).sort()).toEqual(['prod/db postgres:16', 'prod/web nginx:2']);
    expect((await call(sim.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`)).body.items).toEqual([]);
  });

  it('when a namespace is sent in two parts with overwrite on (the default), then only the last part stays: the first is erased', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }));
    await postInventory(report('prod', { web: [['redis:7', digestOf('c')]] }, at(5)));
    const items = (await call(sim.url, 'GET', '/v2/inventories')).body.items;
    expect(items.map((i: any) => `${i.context} ${i.image_tag}`).sort()).toEqual(['prod/db postgres:16', 'prod/web redis:7']);
  });

  it('when inventory_ingest_overwrite is off, then a namespace sent in two parts keeps both and nothing is removed', async () => {
    const keep = await startSimulator({ config: { inventory_ingest_overwrite: false } });
    try {
      const post = (body: unknown): Promise<{ status: number }> => call(keep.url, 'POST', '/v2/kubernetes-inventory', { json: body });
      expect((await post(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }))).status).toBe(201);
      expect((await post(report('prod', { web: [['redis:7', digestOf('c')]] }, at(5)))).status).toBe(201);
      expect((await post(report('prod', { db: [] }, at(6)))).status).toBe(201);
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
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }, at(0)));
    const first = (await call(sim.url, 'GET', '/v2/inventories')).body.items[0];
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }, at(60)));
    const second = (await call(sim.url, 'GET', '/v2/inventories')).body.items[0];
    expect(second.created_at).toBe(first.created_at);
    expect(second.last_seen).toBe(at(60));
  });
});

/** The simulator's clock as `POST /_sim/clock` moves it. */
async function clock(target: AnchoreSimulator, advance?: { advance_days?: number; advance_ms?: number }): Promise<{ now: string; offset_ms: number }> {
  const res = advance === undefined ? await call(target.url, 'GET', '/_sim/clock', { auth: undefined }) : await call(target.url, 'POST', '/_sim/clock', { auth: undefined, json: advance });
  expect(res.status).toBe(200);
  return res.body;
}

/** `context image_tag` of every listed item, sorted. */
async function listed(target: AnchoreSimulator, query = ''): Promise<string[]> {
  const res = await call(target.url, 'GET', `/v2/inventories${query}`);
  expect(res.status).toBe(200);
  return res.body.items.map((i: any) => `${i.context} ${i.image_tag}`).sort();
}

describe('retention and replacement (contract §7)', () => {
  it('when overwrite is on and a namespace is only referenced by a pod (not listed in namespaces), then it is present: its items are replaced', async () => {
    // Without the namespace object its name is unknown: the context is named by the pod's namespace_uid.
    const ns = uidOf('ns-unlisted');
    const podsOnly = (image: string, digest: string, timestamp: string): Record<string, unknown> => ({
      cluster_name: 'prod',
      timestamp,
      namespaces: [],
      pods: [{ uid: uidOf(`pod-${image}`), name: 'p', namespace_uid: ns }],
      containers: [{ id: `containerd://${image}`, name: 'c', image_tag: image, image_digest: digest, pod_uid: uidOf(`pod-${image}`) }],
    });
    await postInventory(report('prod', { db: [['postgres:16', digestOf('b')]] }));
    expect((await postInventory(podsOnly('nginx:1', digestOf('a'), at(1)))).status).toBe(201);
    expect(await listed(sim)).toEqual([`prod/${ns} nginx:1`, 'prod/db postgres:16']);
    expect((await postInventory(podsOnly('nginx:2', digestOf('c'), at(2)))).status).toBe(201);
    expect(await listed(sim)).toEqual([`prod/${ns} nginx:2`, 'prod/db postgres:16']);
  });

  it('when overwrite is on and a namespace is listed without pods, then that namespace is cleared and the absent ones stay', async () => {
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }));
    await postInventory(report('prod', { web: [] }, at(5)));
    expect(await listed(sim)).toEqual(['prod/db postgres:16']);
    expect((await call(sim.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`)).body.items).toEqual([]);
    // Another cluster's namespace of the same name is another context.
    await postInventory(report('staging', { db: [] }, at(6)));
    expect(await listed(sim)).toEqual(['prod/db postgres:16']);
  });

  it('when overwrite is on and a namespace stops being reported, then it keeps its items until inventory_ttl_days after its last_seen, then they are gone; reported ones stay', async () => {
    const start = Date.parse((await clock(sim)).now);
    const stamp = (ms: number): string => at(0, Math.floor(ms / 1000) * 1000);
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }, stamp(start)));
    const later = Date.parse((await clock(sim, { advance_days: 60 })).now);
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]] }, stamp(later)));
    expect(await listed(sim)).toEqual(['prod/db postgres:16', 'prod/web nginx:1']);
    await clock(sim, { advance_days: 59 });
    expect(await listed(sim)).toEqual(['prod/db postgres:16', 'prod/web nginx:1']);
    await clock(sim, { advance_days: 2 }); // 121 days after db's last report, 61 after web's
    expect(await listed(sim)).toEqual(['prod/web nginx:1']);
    expect((await call(sim.url, 'GET', `/v2/inventories?image_digest=${digestOf('b')}`)).body.items).toEqual([]);
    expect((await call(sim.url, 'GET', '/v2/inventories?context=prod/db')).body.items).toEqual([]);
    await clock(sim, { advance_days: 60 });
    expect(await listed(sim)).toEqual([]);
  });

  it('when overwrite is off, then parts and dropped images stay until not reported for inventory_ttl_days; a refresh keeps an item', async () => {
    const keep = await startSimulator({ config: { inventory_ingest_overwrite: false, inventory_ttl_days: 30 } });
    try {
      const post = (body: unknown): Promise<{ status: number }> => call(keep.url, 'POST', '/v2/kubernetes-inventory', { json: body });
      const stamp = async (): Promise<string> => at(0, Math.floor(Date.parse((await clock(keep)).now) / 1000) * 1000);
      expect(
        (
          await post(
            report(
              'prod',
              {
                web: [
                  ['nginx:1', digestOf('a')],
                  ['redis:7', digestOf('b')],
                ],
              },
              await stamp(),
            ),
          )
        ).status,
      ).toBe(201);
      await clock(keep, { advance_days: 20 });
      // nginx:1 is replaced by nginx:2 in web: with overwrite off the old image is not removed by the report.
      expect(
        (
          await post(
            report(
              'prod',
              {
                web: [
                  ['nginx:2', digestOf('c')],
                  ['redis:7', digestOf('b')],
                ],
              },
              await stamp(),
            ),
          )
        ).status,
      ).toBe(201);
      expect(await listed(keep)).toEqual(['prod/web nginx:1', 'prod/web nginx:2', 'prod/web redis:7']);
      await clock(keep, { advance_days: 11 }); // nginx:1 last seen 31 days ago
      expect(await listed(keep)).toEqual(['prod/web nginx:2', 'prod/web redis:7']);
      expect((await call(keep.url, 'GET', `/v2/inventories?image_digest=${digestOf('a')}`)).body.items).toEqual([]);
    } finally {
      await keep.stop();
    }
  });

  it('when a report is stamped more than inventory_ttl_days ago, then it is accepted but lists nothing (and with overwrite on still replaces its namespaces)', async () => {
    const now = Date.parse((await clock(sim)).now);
    await postInventory(report('prod', { web: [['nginx:1', digestOf('a')]], db: [['postgres:16', digestOf('b')]] }, at(0, Math.floor(now / 1000) * 1000)));
    const stale = report('prod', { web: [['nginx:0', digestOf('c')]] }, at(0, now - 121 * DAY));
    expect((await postInventory(stale)).status).toBe(201);
    expect(sim.inventories('admin')).toHaveLength(2);
    expect(await listed(sim)).toEqual(['prod/db postgres:16']);
  });

  it('when the clock is moved through /_sim/clock, then only forward and only with a valid body, token expiry follows it, and reset puts it back', async () => {
    const before = await clock(sim);
    expect(before.offset_ms).toBe(0);
    const after = await clock(sim, { advance_ms: 1500 });
    expect(after.offset_ms).toBe(1500);
    expect(Date.parse(after.now) - Date.parse(before.now)).toBeGreaterThanOrEqual(1500);
    expect((await clock(sim, { advance_days: 1 })).offset_ms).toBe(1500 + DAY);
    for (const bad of [{ advance_ms: -1 }, { advance_days: 'x' }, { advance_ms: 1, advance_days: 1 }, { minutes: 1 }, [], null]) {
      expect((await call(sim.url, 'POST', '/_sim/clock', { auth: undefined, json: bad })).status).toBe(400);
    }
    expect((await clock(sim)).offset_ms).toBe(1500 + DAY);
    expect(sim.requests()).toEqual([]); // control calls are not recorded
    // The whole state follows it: a token issued now is expired once the clock passes token_ttl_seconds.
    const tok = await call(sim.url, 'POST', '/v2/oauth/token', { auth: undefined, form: { grant_type: 'password', username: 'admin', password: 'foobar', client_id: 'anonymous' } });
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } })).status).toBe(200);
    await clock(sim, { advance_ms: (sim.config.token_ttl_seconds + 1) * 1000 });
    expect((await call(sim.url, 'GET', '/v2/images', { auth: { bearer: tok.body.access_token } })).status).toBe(401);
    sim.reset();
    expect((await clock(sim)).offset_ms).toBe(0);
  });

  it('when a report is accepted, then it carries its raw body bytes for onInventory, inventories() and /_sim/state', async () => {
    const seen: InventoryReport[] = [];
    const counting = await startSimulator({ onInventory: (r) => seen.push(r) });
    try {
      const body = report('prod', { web: [['nginx:1', digestOf('a')]] });
      const raw = `${JSON.stringify(body)}  `;
      expect((await call(counting.url, 'POST', '/v2/kubernetes-inventory', { raw, contentType: 'application/json' })).status).toBe(201);
      expect(seen.map((r) => [r.account, r.body.cluster_name, r.bytes])).toEqual([['admin', 'prod', Buffer.byteLength(raw)]]);
      expect(counting.inventories('admin')[0]?.bytes).toBe(Buffer.byteLength(raw));
      const state = await call(counting.url, 'GET', '/_sim/state', { auth: undefined });
      expect(state.body.accounts.admin.last_inventory).toMatchObject({ cluster_name: 'prod', bytes: Buffer.byteLength(raw) });
    } finally {
      await counting.stop();
    }
  });
});

describe('InventoryStore on an injected clock', () => {
  const inv = (timestamp: string, images: Record<string, string[]>): Parameters<InventoryStore['accept']>[1] => {
    const namespaces = Object.keys(images).map((ns) => ({ uid: `u-${ns}`, name: ns }));
    const pods = Object.keys(images).map((ns) => ({ uid: `p-${ns}`, name: 'p', namespace_uid: `u-${ns}` }));
    const containers = Object.entries(images).flatMap(([ns, tags]) => tags.map((tag) => ({ image_tag: tag, image_digest: digestOf(tag.length.toString(16)), pod_uid: `p-${ns}` })));
    return { cluster_name: 'c', timestamp, namespaces, pods, containers };
  };
  const tags = (store: InventoryStore, filter = {}): string[] =>
    store
      .list('a', filter)
      .map((i) => `${i.context} ${i.image_tag}`)
      .sort();

  it('when an item is exactly inventory_ttl_days old, then it stays; one second more, then it is gone from every filter', () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const store = new InventoryStore({ ttlDays: 2, clock: () => now });
    store.accept('a', inv('2030-01-01T00:00:00Z', { web: ['x:1'] }), 0);
    expect(store.list('a', {})[0]).toMatchObject({ created_at: '2030-01-01T00:00:00Z', last_updated: '2030-01-01T00:00:00Z', last_seen: '2030-01-01T00:00:00Z' });
    now += 2 * DAY;
    expect(tags(store)).toEqual(['c/web x:1']);
    expect(tags(store, { image_digest: digestOf('3') })).toEqual(['c/web x:1']);
    now += 1000;
    expect(tags(store)).toEqual([]);
    expect(tags(store, { image_digest: digestOf('3') })).toEqual([]);
    expect(tags(store, { context: 'c/web' })).toEqual([]);
  });

  it('when reports refresh some items and not others, then last_updated follows the clock, and only the unrefreshed expire', () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const store = new InventoryStore({ overwrite: false, ttlDays: 10, clock: () => now });
    store.accept('a', inv('2030-01-01T00:00:00Z', { web: ['x:1', 'yy:1'], db: ['zzz:1'] }), 0);
    now += 6 * DAY;
    store.accept('a', inv('2030-01-07T00:00:00Z', { web: ['x:1'] }), 0);
    expect(store.list('a', { context: 'c/web' }).find((i) => i.image_tag === 'x:1')).toMatchObject({ created_at: '2030-01-01T00:00:00Z', last_updated: '2030-01-07T00:00:00Z' });
    now += 5 * DAY;
    expect(tags(store)).toEqual(['c/web x:1']);
    now += 6 * DAY;
    expect(tags(store)).toEqual([]);
    // A report received long after it was taken is judged by its own timestamp.
    store.accept('a', inv('2030-01-01T00:00:00Z', { web: ['x:1'] }), 0);
    expect(tags(store)).toEqual([]);
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
