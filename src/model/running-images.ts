import type { ResolvedImage } from '../discovery/container-image.ts';
import type { WorkloadRef } from '../kube/cluster.port.ts';
import { tagKey } from './image-keys.ts';

/** One image, in one account, as the cluster runs it. */
export interface ImageUse {
  /** Work-queue key: account + digest, or account + tag when no registry digest is known. */
  key: string;
  account: string;
  image: ResolvedImage;
  workload: WorkloadRef;
}

export interface RunningImage {
  key: string;
  account: string;
  /** The image as first seen (its tag is the one the image was first registered under). */
  image: ResolvedImage;
  /** The workload that first ran it (for the registration annotation). */
  firstWorkload: WorkloadRef;
  /**
   * Every tag it runs under, with the sources using that tag. One digest can run under several tags, and Anchore's
   * policy mappings are per tag, so each running tag is registered and evaluated.
   */
  tags: Map<string, { image: ResolvedImage; sources: number }>;
}

/**
 * The set of images running right now, reference-counted by source (a pod, or a binding's demand) and tag. Sources
 * replace their whole contribution (level-based), so a missed or duplicated event cannot skew the counts.
 */
export class RunningImages {
  /** Source → the (key, tag) pairs it uses, as "key\0tag". */
  readonly #bySource = new Map<string, string[]>();
  readonly #images = new Map<string, RunningImage>();
  /** "account|tag" → keys of the digests running under that tag (admission resolves a tag to what runs). */
  readonly #byTag = new Map<string, Set<string>>();

  /**
   * Sets the images a source uses; empty/undefined when it is gone. Returns the keys that need work: images that
   * started running (no source used them before) and images running under a tag none used before.
   */
  setSource(sourceKey: string, uses: readonly ImageUse[] | undefined): string[] {
    const before = new Set(this.#bySource.get(sourceKey));
    const after = new Map<string, ImageUse>();
    for (const u of uses ?? []) {
      const id = `${u.key}\u0000${u.image.tag}`;
      if (!after.has(id)) after.set(id, u);
    }
    const started = new Set<string>();
    for (const [id, u] of after) {
      if (before.has(id)) continue;
      let img = this.#images.get(u.key);
      if (!img) this.#images.set(u.key, (img = { key: u.key, account: u.account, image: u.image, firstWorkload: u.workload, tags: new Map() }));
      const t = img.tags.get(u.image.tag);
      if (t) t.sources++;
      else {
        img.tags.set(u.image.tag, { image: u.image, sources: 1 });
        started.add(u.key);
        if (u.image.digest) {
          const tk = tagKey(u.account, u.image.tag);
          let set = this.#byTag.get(tk);
          if (!set) this.#byTag.set(tk, (set = new Set()));
          set.add(u.key);
        }
      }
    }
    for (const id of before) {
      if (after.has(id)) continue;
      const sep = id.indexOf('\u0000');
      const key = id.slice(0, sep);
      const img = this.#images.get(key);
      const t = img?.tags.get(id.slice(sep + 1));
      if (!img || !t || --t.sources > 0) continue;
      img.tags.delete(id.slice(sep + 1));
      const tk = tagKey(img.account, id.slice(sep + 1));
      const set = this.#byTag.get(tk);
      if (set?.delete(key) && set.size === 0) this.#byTag.delete(tk);
      if (img.tags.size === 0) this.#images.delete(key);
    }
    if (after.size) this.#bySource.set(sourceKey, [...after.keys()]);
    else this.#bySource.delete(sourceKey);
    return [...started];
  }

  /**
   * The digest running under a tag in an account, if any pod runs it. When several do (the tag moved while old pods
   * still run), the most recently started one: what a new pod pulling the tag most likely gets.
   */
  digestOfTag(account: string, tag: string): string | undefined {
    const set = this.#byTag.get(tagKey(account, tag));
    if (!set) return undefined;
    let last: string | undefined;
    for (const k of set) last = k;
    // Only keys of images known by digest are indexed, and an image leaves the index with its last tag.
    return last === undefined ? undefined : this.#images.get(last)?.image.digest;
  }

  get(key: string): RunningImage | undefined {
    return this.#images.get(key);
  }

  keys(): IterableIterator<string> {
    return this.#images.keys();
  }

  values(): IterableIterator<RunningImage> {
    return this.#images.values();
  }

  get size(): number {
    return this.#images.size;
  }
}
