import { describe, expect, it } from '@jest/globals';
import { addImageRequest } from './add-image.ts';

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

  it('when the spec pinned the digest beside the tag, then the add says the tag came from the spec (so it is never read as where the tag points)', () => {
    expect(addImageRequest({ tag, pullString: 'docker.io/library/nginx@sha256:ab', pinned: true }, 'prod', { workload: 'free/Pod/p' }).annotations).toEqual({
      'anchore-operator/cluster': 'prod',
      'anchore-operator/workload': 'free/Pod/p',
      'anchore-operator/tag-source': 'pinned-in-spec',
    });
  });
});
