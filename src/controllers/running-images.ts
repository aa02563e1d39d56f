import type { ResolvedImage } from '../discovery/container-image.ts';
import type { WorkloadRef } from '../kube/cluster.port.ts';
import { intern } from '../runtime/intern.ts';

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
  image: ResolvedImage;
  /** The workload that first ran it (for the registration annotation). */
  firstWorkload: WorkloadRef;
  /** Pods currently running it. */
  pods: number;
}

export function imageKey(account: string, image: Pick<ResolvedImage, 'digest' | 'tag'>): string {
  return image.digest ? digestKey(account, image.digest) : intern(`${account}|tag:${image.tag}`);
}

/** The key of an image known by its digest (what Anchore lists), interned: the same string as its `imageKey`. */
export function digestKey(account: string, digest: string): string {
  return intern(`${account}|${digest}`);
}

/**
 * The set of images running right now, reference-counted by pod. Pod events replace a pod's whole contribution
 * (level-based), so a missed or duplicated event cannot skew the counts.
 */
export class RunningImages {
  readonly #bySource = new Map<string, string[]>();
  readonly #images = new Map<string, RunningImage>();

  /** Sets the images a source (a pod, or a binding's demand) uses; empty/undefined when it is gone. Returns keys that started being used. */
  setSource(sourceKey: string, uses: readonly ImageUse[] | undefined): string[] {
    const before = new Set(this.#bySource.get(sourceKey));
    const after = new Map<string, ImageUse>();
    for (const u of uses ?? []) if (!after.has(u.key)) after.set(u.key, u);
    const started: string[] = [];
    for (const [k, u] of after) {
      if (before.has(k)) continue;
      const existing = this.#images.get(k);
      if (existing) existing.pods++;
      else this.#images.set(k, { key: k, account: u.account, image: u.image, firstWorkload: u.workload, pods: 1 });
      started.push(k);
    }
    for (const k of before) {
      if (after.has(k)) continue;
      const img = this.#images.get(k);
      if (img && --img.pods <= 0) this.#images.delete(k);
    }
    if (after.size) this.#bySource.set(sourceKey, [...after.keys()]);
    else this.#bySource.delete(sourceKey);
    return started;
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
