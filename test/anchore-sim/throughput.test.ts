import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { call, digestSource, uidOf } from './test-client.ts';

const IMAGES = 2000;
const PODS = 10_000;
const CONCURRENCY = 50;
// A sanity bound only: on any reasonable machine this takes a second or two.
const GENEROUS_MS = 60_000;

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
});

afterAll(async () => {
  await sim.stop();
});

function digest(i: number): string {
  return `sha256:${i.toString(16).padStart(64, '0')}`;
}

async function inParallel(n: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const i = next++;
      await work(i);
    }
  });
  await Promise.all(workers);
}

describe('throughput', () => {
  it(
    `when ${IMAGES} images are added and read back concurrently, then all succeed within a generous bound`,
    async () => {
      const started = Date.now();
      const failures: number[] = [];
      await inParallel(IMAGES, async (i) => {
        const res = await call(sim.url, 'POST', '/v2/images', { json: digestSource(`registry.example.com/app${i % 200}`, digest(i + 1), `registry.example.com/app${i % 200}:v${i}`) });
        if (res.status !== 200) failures.push(res.status);
      });
      await inParallel(IMAGES, async (i) => {
        const res = await call(sim.url, 'GET', `/v2/images/${digest(i + 1)}`);
        if (res.status !== 200 || res.body.image_digest !== digest(i + 1)) failures.push(res.status);
        const check = await call(sim.url, 'GET', `/v2/images/${digest(i + 1)}/check?tag=${encodeURIComponent(`registry.example.com/app${i % 200}:v${i}`)}`);
        if (check.status !== 200) failures.push(check.status);
      });
      const byTag = await call(sim.url, 'GET', `/v2/images?full_tag=${encodeURIComponent('registry.example.com/app7:v1207')}`);
      const all = await call(sim.url, 'GET', '/v2/images');
      expect(failures).toEqual([]);
      expect(byTag.body.items.map((x: any) => x.image_digest)).toEqual([digest(1208)]);
      expect(all.body.items).toHaveLength(IMAGES);
      expect(Date.now() - started).toBeLessThan(GENEROUS_MS);
    },
    GENEROUS_MS + 10_000,
  );

  it(
    `when an inventory of ${PODS} pods is posted, then it is accepted and queryable`,
    async () => {
      const namespaces = Array.from({ length: 100 }, (_, n) => ({ uid: uidOf(`ns-${n}`), name: `ns-${n}` }));
      const pods = Array.from({ length: PODS }, (_, p) => ({ uid: uidOf(`pod-${p}`), name: `pod-${p}`, namespace_uid: uidOf(`ns-${p % 100}`) }));
      const containers = pods.map((p, c) => ({
        id: `containerd://${c}`,
        name: 'app',
        image_tag: `registry.example.com/app${c % 200}:v${c % IMAGES}`,
        image_digest: digest((c % IMAGES) + 1),
        pod_uid: p.uid,
      }));
      const started = Date.now();
      const res = await call(sim.url, 'POST', '/v2/kubernetes-inventory', { json: { cluster_name: 'bench', timestamp: new Date().toISOString(), namespaces, pods, containers } });
      expect(res.status).toBe(201);
      const one = await call(sim.url, 'GET', `/v2/inventories?image_digest=${digest(1)}`);
      expect(one.body.items.length).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(GENEROUS_MS);
    },
    GENEROUS_MS + 10_000,
  );
});
