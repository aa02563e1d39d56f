import { describe, expect, it } from '@jest/globals';
import type { BindingSpec } from '../crds/types.ts';
import { compileBinding } from '../model/binding-spec.ts';
import { digestKey, imageKey } from '../model/image-keys.ts';
import { Scope } from '../model/scope.ts';
import { aBinding, aContainer, aNamespace, aPod, memoryStores } from '../testing/factories.ts';
import { routedFrom, selectImages } from './binding-select.ts';

const d = (c: string): string => `sha256:${c.repeat(64)}`;

function cluster() {
  const stores = memoryStores();
  for (const ns of [aNamespace('shop', { team: 'a' }), aNamespace('lab', { team: 'b', 'anchore.io/account': 'lab-account' }), aNamespace('kube-system')]) stores.namespaces.put(ns);
  stores.pods.put(
    aPod('shop', 'web-1', [aContainer('web', 'nginx:1.25', { digest: d('1') }), aContainer('side', 'redis:7', { digest: d('2'), repo: 'docker.io/library/redis' })], {
      owner: { kind: 'ReplicaSet', name: 'web-5d8' },
    }),
  );
  stores.pods.put(aPod('shop', 'web-2', [aContainer('web', 'nginx:1.25', { digest: d('1') })], { owner: { kind: 'ReplicaSet', name: 'web-5d8' } }));
  stores.pods.put(aPod('shop', 'job-1', [aContainer('job', 'nginx:latest', { digest: d('1') })]));
  stores.pods.put(aPod('lab', 'tool', [aContainer('tool', 'busybox:1.36', { digest: d('4'), repo: 'docker.io/library/busybox' })]));
  stores.pods.put(aPod('kube-system', 'dns', [aContainer('dns', 'coredns:1.11', { digest: d('3') })]));
  stores.replicaSets.put({ key: 'shop/web-5d8', resourceVersion: '1', uid: 'rs', name: 'web-5d8', namespace: 'shop', owner: { kind: 'Deployment', name: 'web', uid: 'dep' } });
  const scope = new Scope({
    namespaces: { exclude: ['kube-system'] },
    imageExclude: [],
    imagePolicy: { missingTagPolicy: 'digest' },
    defaultAccount: 'admin',
    routes: [],
    accountLabel: 'anchore.io/account',
  });
  return { stores, scope };
}

async function select(namespace: string | undefined, spec: BindingSpec) {
  const deps = cluster();
  const b = aBinding('b', namespace, spec);
  const c = compileBinding(b, (ns) => deps.stores.namespaces.get(ns)?.labels);
  if (!c.ok) throw new Error(c.problem.message);
  return { b, sel: await selectImages(deps, b, c.value) };
}

describe('binding select step', () => {
  it('when a namespaced binding selects its namespace, then each running tag of a digest is one group with the top-level workloads', async () => {
    const { sel } = await select('shop', {});
    const byTag = Object.fromEntries(sel.groups.map((g) => [g.image.tag, { key: g.key, workloads: [...g.workloads.keys()] }]));
    expect(byTag).toEqual({
      'docker.io/library/nginx:1.25': { key: digestKey('admin', d('1')), workloads: ['shop/Deployment/web'] },
      'docker.io/library/redis:7': { key: digestKey('admin', d('2')), workloads: ['shop/Deployment/web'] },
      'docker.io/library/nginx:latest': { key: digestKey('admin', d('1')), workloads: ['shop/Pod/job-1'] },
    });
    expect(sel.workloads).toBe(2);
    expect([...sel.accounts]).toEqual(['admin']);
  });

  it('when the binding filters images and pods, then only covered images of selected pods are groups', async () => {
    const { sel } = await select('shop', { images: { include: ['docker.io/library/nginx:*'] }, podSelector: { matchLabels: { app: 'web-1' } } });
    expect(sel.groups.map((g) => g.image.tag)).toEqual(['docker.io/library/nginx:1.25']);
    expect(sel.workloads).toBe(1);
  });

  it('when a cluster binding selects everything, then namespaces out of scope are left out and each namespace routes its account', async () => {
    const { b, sel } = await select(undefined, {});
    expect(sel.groups.some((g) => g.namespace === 'kube-system')).toBe(false);
    expect([...sel.accounts].sort()).toEqual(['admin', 'lab-account']);
    const tool = sel.groups.find((g) => g.namespace === 'lab');
    expect(tool?.key).toBe(imageKey('lab-account', { digest: d('4'), tag: 'docker.io/library/busybox:1.36' }));
    expect(routedFrom(b, sel, 'lab-account')).toBe('lab');
  });

  it('when the binding names its account, then every image is keyed in it and no namespace is said to route it', async () => {
    const { b, sel } = await select(undefined, { account: 'audit' });
    expect([...sel.accounts]).toEqual(['audit']);
    expect(routedFrom(b, sel, 'audit')).toBeUndefined();
  });
});
