import type { AddImageRequest } from '../anchore/anchore.port.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { TAG_SOURCE_ANNOTATION, TAG_SOURCE_PINNED } from './image-catalog.ts';

/**
 * What the operator asks Anchore to add for a running (or admitted) image: its tag, by digest when the digest is
 * known, annotated with the cluster and `who` — the workload that runs it, or the component that asked — and, when
 * the spec pinned the digest, with the tag's source (TAG_SOURCE_ANNOTATION).
 */
export function addImageRequest(image: Pick<ResolvedImage, 'tag' | 'pullString' | 'pinned'>, clusterName: string, who: { workload: string } | { requestor: string }): AddImageRequest {
  return {
    tag: image.tag,
    ...(image.pullString ? { digestPullString: image.pullString } : {}),
    annotations: {
      'anchore-operator/cluster': clusterName,
      ...('workload' in who ? { 'anchore-operator/workload': who.workload } : { 'anchore-operator/requestor': who.requestor }),
      // The spec pinned the digest beside the tag: Anchore records the tag, and this says it proves nothing.
      ...(image.pinned ? { [TAG_SOURCE_ANNOTATION]: TAG_SOURCE_PINNED } : {}),
    },
  };
}
