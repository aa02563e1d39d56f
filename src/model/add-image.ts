import type { AddImageRequest } from '../anchore/anchore.port.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';

/**
 * What the operator asks Anchore to add for a running (or admitted) image: its tag, by digest when the digest is
 * known, annotated with the cluster and `who` — the workload that runs it, or the component that asked.
 */
export function addImageRequest(image: Pick<ResolvedImage, 'tag' | 'pullString'>, clusterName: string, who: { workload: string } | { requestor: string }): AddImageRequest {
  return {
    tag: image.tag,
    ...(image.pullString ? { digestPullString: image.pullString } : {}),
    annotations: {
      'anchore-operator/cluster': clusterName,
      ...('workload' in who ? { 'anchore-operator/workload': who.workload } : { 'anchore-operator/requestor': who.requestor }),
    },
  };
}
