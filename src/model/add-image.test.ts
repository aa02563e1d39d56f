import { describe, expect, it } from '@jest/globals';
import { addImageRequest, registrationTag } from './add-image.ts';

describe('addImageRequest', () => {
  const tag = 'docker.io/library/nginx:1.27';
  it('when the digest is known, then the image is added by digest with its tag, annotated with the cluster and workload', () => {
    expect(addImageRequest({ tag, pullString: 'docker.io/library/nginx@sha256:ab' }, 'prod', { workload: 'shop/Deployment/web' })).toEqual({
      tag,
      digestPullString: 'docker.io/library/nginx@sha256:ab',
      annotations: { 'anchore-operator/cluster': 'prod', 'anchore-operator/workload': 'shop/Deployment/web' },
    });
  });

  it('when admission asks and no digest is known, then the image is added by tag and names its requestor', () => {
    expect(addImageRequest({ tag }, 'prod', { requestor: 'admission' })).toEqual({ tag, annotations: { 'anchore-operator/cluster': 'prod', 'anchore-operator/requestor': 'admission' } });
  });

  it('when the spec pinned the digest beside the tag on its own word, then the image is registered under the digest pseudo-tag; paired by evidence, under the tag', () => {
    const pinned = { tag, digest: 'sha256:ab12', pinned: true as const, repository: 'docker.io/library/nginx' };
    expect(registrationTag(pinned, () => false)).toBe('docker.io/library/nginx:ab12');
    expect(registrationTag(pinned, (t, d) => t === tag && d === 'sha256:ab12')).toBe(tag);
    expect(registrationTag({ tag, digest: 'sha256:ab12', repository: 'docker.io/library/nginx' }, () => false)).toBe(tag);
    expect(addImageRequest({ tag, pullString: 'docker.io/library/nginx@sha256:ab12' }, 'prod', { workload: 'free/Pod/p' }, 'docker.io/library/nginx:ab12').tag).toBe('docker.io/library/nginx:ab12');
  });
});
