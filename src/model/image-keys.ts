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

/** What an image key names: the account and either the digest or (no digest known) the tag. */
export type ParsedImageKey = { account: string; digest: string; tag?: undefined } | { account: string; tag: string; digest?: undefined };

export function parseImageKey(key: string): ParsedImageKey {
  const mark = key.indexOf(TAG_MARK);
  if (mark >= 0) return { account: key.slice(0, mark), tag: key.slice(mark + TAG_MARK.length) };
  // Account names cannot hold "|"; a digest ("sha256:…") cannot either.
  const bar = key.lastIndexOf('|');
  return { account: key.slice(0, bar), digest: key.slice(bar + 1) };
}
