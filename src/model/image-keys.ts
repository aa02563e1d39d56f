import type { ResolvedImage } from '../discovery/container-image.ts';
import { intern } from '../runtime/intern.ts';

/**
 * The keys the operator files images under, built and parsed here only. An image key names one image in one
 * account: "account|sha256:…" when its registry digest is known, else "account|tag:registry/repo:tag". A tag key
 * ("account|registry/repo:tag") indexes what a tag resolves to. Keys are interned: thousands of pods running one
 * image share one string.
 */
const TAG_MARK = '|tag:';

export function imageKey(account: string, image: Pick<ResolvedImage, 'digest' | 'tag'>): string {
  return image.digest ? digestKey(account, image.digest) : intern(`${account}${TAG_MARK}${image.tag}`);
}

/** The key of an image known by its digest (what Anchore lists): the same string as its `imageKey`. */
export function digestKey(account: string, digest: string): string {
  return intern(`${account}|${digest}`);
}

/** The key of a tag in an account, for tag → digest indexes. */
export function tagKey(account: string, tag: string): string {
  return `${account}|${tag}`;
}

/** The account and tag a tag-only image key names; undefined for a digest key (the only other kind). */
export function tagOfImageKey(key: string): { account: string; tag: string } | undefined {
  const mark = key.indexOf(TAG_MARK);
  return mark < 0 ? undefined : { account: key.slice(0, mark), tag: key.slice(mark + TAG_MARK.length) };
}
