import { describe, expect, it } from '@jest/globals';
import { type PodInfo, changed } from './cluster.port.ts';

describe('changed (the one "has it changed" rule)', () => {
  const pod: PodInfo = {
    key: 'shop/web',
    resourceVersion: '1',
    uid: 'u',
    name: 'web',
    namespace: 'shop',
    labels: { app: 'web' },
    containers: [{ name: 'web', kind: 'container', image: 'nginx:1.25' }],
  };
  it('when only the resourceVersion moved, then nothing changed', () => {
    expect(changed(pod, { ...pod, resourceVersion: '2' })).toBe(false);
  });
  it('when a label, a container or the node changed, then it changed', () => {
    expect(changed(pod, { ...pod, resourceVersion: '2', labels: { app: 'web', tier: 'front' } })).toBe(true);
    expect(changed(pod, { ...pod, containers: [{ ...pod.containers[0]!, imageID: 'docker.io/library/nginx@sha256:abc' }] })).toBe(true);
    expect(changed(pod, { ...pod, nodeName: 'node-1' })).toBe(true);
  });
});
