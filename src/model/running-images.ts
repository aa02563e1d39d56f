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
  tags: Map<string, { image: ResolvedImage; sources: number; pulled: number }>;
}

/** One source's use of an image under a tag, and whether its spec pinned the digest. */
function useId(key: string, tag: string, pinned: boolean): string {
  return `${key}\u0000${tag}\u0000${pinned ? 'p' : ''}`;
}

function parseUseId(id: string): { key: string; tag: string; pinned: boolean } {
  const a = id.indexOf('\u0000');
  const b = id.lastIndexOf('\u0000');
  return { key: id.slice(0, a), tag: id.slice(a + 1, b), pinned: id.slice(b + 1) === 'p' };
}

/**
 * The set of images running right now, reference-counted by source (a pod, or a binding's demand) and tag. Sources
 * replace their whole contribution (level-based), so a missed or duplicated event cannot skew the counts.
 */
export class RunningImages {
  /** Source → the (key, tag, pinned) uses it holds (useId). */
  readonly #bySource = new Map<string, string[]>();
  readonly #images = new Map<string, RunningImage>();
  /** "account|tag" → keys of the digests kubelets pulled for that tag in tag-only specs (admission's evidence). */
  readonly #byTag = new Map<string, Set<string>>();

  /**
   * Sets the images a source uses; empty/undefined when it is gone. Returns the keys that need work: images that
   * started running (no source used them before) and images running under a tag none used before.
   */
  setSource(sourceKey: string, uses: readonly ImageUse[] | undefined): string[] {
    const before = new Set(this.#bySource.get(sourceKey));
    const after = new Map<string, ImageUse>();
    for (const u of uses ?? []) {
      const id = useId(u.key, u.image.tag, u.image.pinned === true);
      if (!after.has(id)) after.set(id, u);
    }
    const started = new Set<string>();
    for (const [id, u] of after) {
      if (before.has(id)) continue;
      let img = this.#images.get(u.key);
      if (!img) this.#images.set(u.key, (img = { key: u.key, account: u.account, image: u.image, firstWorkload: u.workload, tags: new Map() }));
      let t = img.tags.get(u.image.tag);
      if (t) t.sources++;
      else {
        img.tags.set(u.image.tag, (t = { image: u.image, sources: 1, pulled: 0 }));
        started.add(u.key);
      }
      // Only a tag-only spec says where its tag points: the kubelet pulled the tag and reported the digest it got.
      // A spec that pins a digest beside a tag is its author's claim, and tenants write specs.
      if (u.image.digest && !u.image.pinned && t.pulled++ === 0) {
        const tk = tagKey(u.account, u.image.tag);
        let set = this.#byTag.get(tk);
        if (!set) this.#byTag.set(tk, (set = new Set()));
        set.add(u.key);
      }
    }
    for (const id of before) {
      if (after.has(id)) continue;
      const { key, tag, pinned } = parseUseId(id);
      const img = this.#images.get(key);
      const t = img?.tags.get(tag);
      if (!img || !t) continue;
      if (!pinned && img.image.digest && --t.pulled === 0) {
        const tk = tagKey(img.account, tag);
        const set = this.#byTag.get(tk);
        if (set?.delete(key) && set.size === 0) this.#byTag.delete(tk);
      }
      if (--t.sources > 0) continue;
      img.tags.delete(tag);
      if (img.tags.size === 0) this.#images.delete(key);
    }
    if (after.size) this.#bySource.set(sourceKey, [...after.keys()]);
    else this.#bySource.delete(sourceKey);
    return [...started];
  }

  /**
   * The digests pods run under a tag in an account, as the kubelets pulled them for tag-only specs (several when the
   * tag moved while old pods still run; oldest first).
   */
  digestsOfTag(account: string, tag: string): string[] {
    const out: string[] = [];
    // Only keys of images known by digest are indexed, and an image leaves the index with its last tag.
    for (const k of this.#byTag.get(tagKey(account, tag)) ?? []) {
      const d = this.#images.get(k)?.image.digest;
      if (d !== undefined) out.push(d);
    }
    return out;
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
