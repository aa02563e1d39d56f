import type { AddImageRequest } from '../anchore/anchore.port.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';

/**
 * What the operator asks Anchore to add for a running (or admitted) image: under `tag` (registrationTag), by digest
 * when the digest is known, annotated with the cluster and `who` — the workload that runs it, or the component that
 * asked.
 */
export function addImageRequest(image: Pick<ResolvedImage, 'tag' | 'pullString'>, clusterName: string, who: { workload: string } | { requestor: string }, tag = image.tag): AddImageRequest {
  return {
    tag,
    ...(image.pullString ? { digestPullString: image.pullString } : {}),
    annotations: {
      'anchore-operator/cluster': clusterName,
      ...('workload' in who ? { 'anchore-operator/workload': who.workload } : { 'anchore-operator/requestor': who.requestor }),
    },
  };
}

/**
 * The tag the operator tells Anchore an image has. Anchore records it as where the tag points, and admission reads
 * that record back as evidence (docs/admission.md, tags), so only evidence may write it: a tag-only spec's tag (the
 * kubelet pulled the tag and reported this digest), or a pinned spec's tag when trusted evidence already pairs the two
 * (`paired`: Anchore's record or a kubelet pull). A spec that pins `repo:tag@sha256:…` on its author's word alone is
 * registered under the digest's own pseudo-tag `repo:<hex>` (how MISSING_TAG_POLICY=digest names digest-only images),
 * so a tenant's pin never becomes Anchore's record of `repo:tag`.
 */
export function registrationTag(image: Pick<ResolvedImage, 'tag' | 'digest' | 'pinned' | 'repository'>, paired: (tag: string, digest: string) => boolean): string {
  if (!image.pinned || !image.digest || paired(image.tag, image.digest)) return image.tag;
  return `${image.repository}:${image.digest.slice(image.digest.indexOf(':') + 1)}`;
}
