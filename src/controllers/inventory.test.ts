import { describe, expect, it } from '@jest/globals';
import { aContainer, aNamespace, aNode, aPod, hex64, memoryStores } from '../testing/factories.ts';
import { assembleBatch, buildInventory, collectInventory, cutBatch, type InventoryBatch, measureInventory, planBatches } from './inventory.ts';
import { Scope } from '../model/scope.ts';

const digest = (s: string): string => `sha256:${hex64(s)}`;

function scope(extra: Partial<ConstructorParameters<typeof Scope>[0]> = {}): Scope {
  return new Scope({
    namespaces: {},
    imageExclude: [],
    imagePolicy: { missingTagPolicy: 'digest' },
    defaultAccount: 'admin',
    routes: [],
    ...extra,
  });
}

describe('buildInventory', () => {
  const now = new Date('2026-01-02T03:04:05.678Z');

  it('when pods run in a namespace, then the report carries namespace, pod, node and containers with tag and digest', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('shop'));
    s.nodes.put(aNode('node-1'));
    s.pods.put(aPod('shop', 'web-1', [aContainer('web', 'nginx:1.25', { digest: digest('a') })], { node: 'node-1' }));
    const [inv, ...rest] = await buildInventory('admin', s, scope(), 'prod', now, 0);
    expect(rest).toEqual([]);
    expect(inv?.cluster_name).toBe('prod');
    expect(inv?.timestamp).toBe('2026-01-02T03:04:05Z');
    expect(inv?.namespaces.map((n) => n.name)).toEqual(['shop']);
    expect(inv?.nodes.map((n) => n.name)).toEqual(['node-1']);
    expect(inv?.pods[0]?.namespace_uid).toBe(s.namespaces.get('shop')?.uid);
    expect(inv?.pods[0]?.node_uid).toBe(s.nodes.get('node-1')?.uid);
    expect(inv?.containers).toEqual([expect.objectContaining({ name: 'web', image_tag: 'docker.io/library/nginx:1.25', image_digest: digest('a'), pod_uid: inv?.pods[0]?.uid })]);
  });

  it('when a pod names a node that is not cached, then node_uid is stripped and no node is reported', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('shop'));
    s.pods.put(aPod('shop', 'web-1', [aContainer('web', 'nginx:1.25')], { node: 'ghost' }));
    const [inv] = await buildInventory('admin', s, scope(), 'c', now, 0);
    expect(inv?.nodes).toEqual([]);
    expect(inv?.pods[0]).not.toHaveProperty('node_uid');
  });

  it('when a container has no containerID yet, then it is left out (k8s-inventory referential integrity)', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('shop'));
    s.pods.put(aPod('shop', 'web-1', [aContainer('web', 'nginx:1.25', { containerID: null }), aContainer('side', 'envoy:1')]));
    const [inv] = await buildInventory('admin', s, scope(), 'c', now, 0);
    expect(inv?.containers.map((c) => c.name)).toEqual(['side']);
  });

  it('when a namespace is excluded or routed to another account, then its pods are not in this account report', async () => {
    const s = memoryStores();
    for (const n of ['kube-system', 'team-a-web', 'shop']) s.namespaces.put(aNamespace(n));
    for (const n of ['kube-system', 'team-a-web', 'shop']) s.pods.put(aPod(n, 'p', [aContainer('c', 'nginx:1')]));
    const sc = scope({ namespaces: { exclude: ['kube-*'] }, routes: [{ account: 'team-a', namespaces: ['team-a-*'] }] });
    expect((await buildInventory('admin', s, sc, 'c', now, 0))[0]?.namespaces.map((n) => n.name)).toEqual(['shop']);
    expect((await buildInventory('team-a', s, sc, 'c', now, 0))[0]?.namespaces.map((n) => n.name)).toEqual(['team-a-web']);
  });

  it('when an image is excluded by glob, then its containers are not reported', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('shop'));
    s.pods.put(aPod('shop', 'p', [aContainer('a', 'registry.k8s.io/pause:3.9'), aContainer('b', 'nginx:1')]));
    const [inv] = await buildInventory('admin', s, scope({ imageExclude: ['registry.k8s.io/**'] }), 'c', now, 0);
    expect(inv?.containers.map((c) => c.name)).toEqual(['b']);
  });

  it('when a byte threshold is set, then batches split on namespace boundaries, stay under it and carry only their nodes', async () => {
    const s = memoryStores();
    for (let n = 0; n < 20; n++) {
      s.namespaces.put(aNamespace(`ns-${String(n).padStart(2, '0')}`));
      s.nodes.put(aNode(`node-${n}`));
      for (let p = 0; p < 10; p++) {
        s.pods.put(aPod(`ns-${String(n).padStart(2, '0')}`, `p${p}`, [aContainer('c', `img-${n}:${p}`)], { node: `node-${n}` }));
      }
    }
    const limit = 12_000;
    const batches = await buildInventory('admin', s, scope(), 'c', now, limit);
    expect(batches.length).toBeGreaterThan(1);
    const seen = new Set<string>();
    for (const b of batches) {
      expect(JSON.stringify(b).length).toBeLessThanOrEqual(limit);
      const nsUids = new Set(b.namespaces.map((n) => n.uid));
      expect(b.pods.every((p) => nsUids.has(p.namespace_uid))).toBe(true);
      const nodeUids = new Set(b.nodes.map((n) => n.uid));
      expect(b.pods.every((p) => p.node_uid === undefined || nodeUids.has(p.node_uid))).toBe(true);
      expect(b.nodes.length).toBe(new Set(b.pods.map((p) => p.node_uid)).size);
      for (const n of b.namespaces) {
        expect(seen.has(n.name)).toBe(false);
        seen.add(n.name);
      }
    }
    expect(seen.size).toBe(20);
    expect(batches.reduce((a, b) => a + b.pods.length, 0)).toBe(200);
  });

  it('when an account has no namespace left, then it still gets one (empty) report, with or without a byte limit', async () => {
    const s = memoryStores();
    for (const limit of [0, 1000]) {
      const batches = await buildInventory('admin', s, scope(), 'c', now, limit);
      expect(batches).toEqual([{ cluster_name: 'c', timestamp: '2026-01-02T03:04:05Z', namespaces: [], nodes: [], pods: [], containers: [] }]);
    }
  });

  it('when one namespace alone is larger than the batch limit, then it goes alone in its smallest complete form (no labels, every pod and container) and the others keep their labels', async () => {
    const s = memoryStores();
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`example.com/label-${i}`, 'v'.repeat(50)]));
    s.namespaces.put(aNamespace('big', many));
    s.namespaces.put(aNamespace('small', { team: 'a' }));
    s.nodes.put(aNode('node-1'));
    for (let p = 0; p < 5; p++) s.pods.put(aPod('big', `p${p}`, [aContainer('c', `img-${p}:1`, { digest: digest(`b${p}`) })], { node: 'node-1' }));
    s.pods.put(aPod('small', 'p', [aContainer('c', 'nginx:1')], { node: 'node-1' }));
    const batches = await buildInventory('admin', s, scope(), 'c', now, 8000);
    expect(batches.map((b) => b.namespaces.map((n) => n.name))).toEqual([['big'], ['small']]);
    const [big, small] = batches;
    expect(JSON.stringify(big).length).toBeLessThanOrEqual(8000);
    expect(big?.namespaces[0]).toEqual({ uid: s.namespaces.get('big')?.uid, name: 'big' });
    expect(big?.pods).toHaveLength(5);
    expect(big?.pods.every((p) => !('labels' in p) && p.node_uid === s.nodes.get('node-1')?.uid)).toBe(true);
    expect(big?.containers).toHaveLength(5);
    expect(big?.nodes.map((n) => [n.name, 'labels' in n])).toEqual([['node-1', false]]);
    expect(small?.namespaces[0]?.labels).toEqual({ team: 'a' });
    expect(small?.pods[0]?.labels).toEqual({ app: 'p' });
    expect(small?.nodes[0]?.labels).toEqual({ type: 'kwok' });
  });

  it('when a refused batch is cut, then several namespaces are packed again under half its size, one namespace first loses its labels, then goes in parts of its pods only when splitting is allowed, and one pod cannot be cut', async () => {
    const s = memoryStores();
    for (const ns of ['a', 'b', 'c', 'd']) {
      s.namespaces.put(aNamespace(ns, { team: ns }));
      for (let p = 0; p < 20; p++) s.pods.put(aPod(ns, `p${p}`, [aContainer('c', `img-${ns}-${p}:1`, { digest: digest(`${ns}${p}`) })]));
    }
    const snap = await collectInventory('admin', s, scope(), 'c', now);
    await measureInventory(snap);
    const size = (b: InventoryBatch): number => Buffer.byteLength(JSON.stringify(assembleBatch(snap, b)));
    const [whole] = planBatches(snap, Infinity, false);
    expect(whole).toMatchObject({ minimal: false, partial: false });
    const wholeBytes = size(whole!);

    const cut = cutBatch(snap, whole!, wholeBytes, false) ?? [];
    expect(cut.length).toBeGreaterThan(1);
    for (const b of cut) expect(size(b)).toBeLessThanOrEqual(wholeBytes / 2);
    expect(cut.flatMap((b) => b.shares.map((x) => x.namespace.name))).toEqual(['a', 'b', 'c', 'd']);

    const one: InventoryBatch = { shares: [snap.shares[0]!], minimal: false, partial: false };
    const stripped = cutBatch(snap, one, size(one), false);
    expect(stripped).toEqual([{ shares: [snap.shares[0]], minimal: true, partial: false }]);
    expect(assembleBatch(snap, stripped![0]!).pods).toHaveLength(20);
    // Without splitting, a namespace already in its smallest form cannot be cut: undeliverable.
    expect(cutBatch(snap, stripped![0]!, size(stripped![0]!), false)).toBeUndefined();
    // With splitting, it goes in parts of its pods, each smaller, together every pod exactly once.
    const parts = cutBatch(snap, stripped![0]!, size(stripped![0]!), true) ?? [];
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((b) => b.partial && b.minimal && size(b) < size(stripped![0]!))).toBe(true);
    expect(parts.flatMap((b) => assembleBatch(snap, b).pods.map((p) => p.name)).sort()).toEqual(
      assembleBatch(snap, one)
        .pods.map((p) => p.name)
        .sort(),
    );
    // Cut again and again, parts end at one pod, which cannot be cut.
    let part = parts[0]!;
    for (let i = 0; i < 10 && part.shares[0]!.pods.length > 1; i++) part = cutBatch(snap, part, size(part), true)![0]!;
    expect(part.shares[0]?.pods).toHaveLength(1);
    expect(cutBatch(snap, part, size(part), true)).toBeUndefined();
  });
});
