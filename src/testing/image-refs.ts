import type { ImageReference } from '../discovery/image-ref.ts';

/**
 * The inverse of parseImageReference, for its round-trip tests: "registry/repository[:tag][@digest]". `parts` can
 * leave out the tag or the digest (both are included by default). The output always names the registry, so it parses
 * back to the same value whatever the normalisation options. (The operator itself never formats a parsed reference.)
 */
export function formatImageReference(ref: ImageReference, parts?: { tag?: boolean; digest?: boolean }): string {
  let out = `${ref.registry}/${ref.repository}`;
  if (parts?.tag !== false && ref.tag !== undefined && ref.tag !== '') out += `:${ref.tag}`;
  if (parts?.digest !== false && ref.digest !== undefined && ref.digest !== '') out += `@${ref.digest}`;
  return out;
}
