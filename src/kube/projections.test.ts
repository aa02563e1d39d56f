import { describe, expect, it } from '@jest/globals';
import { bindingKey, bindingKindOf } from '../crds/types.ts';
import { projectBinding } from './projections.ts';

describe('binding keys', () => {
  const raw = (namespace?: string) => ({ metadata: { name: 'shop', uid: 'u1', resourceVersion: '7', generation: 2, ...(namespace ? { namespace } : {}) }, spec: {}, status: {} });

  it('when a binding is projected, then its key is bindingKey of its kind, name and namespace, and names its kind back', () => {
    const apb = projectBinding('AnchorePolicyBinding')(raw('team-a'));
    const capb = projectBinding('ClusterAnchorePolicyBinding')(raw());
    expect(apb?.key).toBe(bindingKey('AnchorePolicyBinding', 'shop', 'team-a'));
    expect(capb?.key).toBe(bindingKey('ClusterAnchorePolicyBinding', 'shop'));
    expect([apb?.key, capb?.key]).toEqual(['apb/team-a/shop', 'capb/shop']);
    expect([bindingKindOf(apb?.key ?? ''), bindingKindOf(capb?.key ?? '')]).toEqual(['AnchorePolicyBinding', 'ClusterAnchorePolicyBinding']);
  });

  it('when a namespaced binding and a cluster binding share a name, then their keys differ', () => {
    expect(bindingKey('AnchorePolicyBinding', 'x', 'capb')).not.toBe(bindingKey('ClusterAnchorePolicyBinding', 'x'));
  });

  it('when a namespaced binding comes without a namespace, then it is not projected', () => {
    expect(projectBinding('AnchorePolicyBinding')(raw())).toBeUndefined();
  });
});
