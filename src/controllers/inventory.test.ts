import { describe, expect, it } from '@jest/globals';
import { aContainer, aNamespace, aNode, aPod, hex64, memoryStores } from '../testing/factories.ts';
import { buildInventory } from './inventory.ts';
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
});
