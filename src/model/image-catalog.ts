import type { AnalysisStatus, AnchoreImage } from '../anchore/anchore.port.ts';
import { type WorkloadRef, workloadKey } from '../kube/cluster.port.ts';
import { SLICE } from '../runtime/cooperative.ts';
import { TURN_MS, Turn } from '../runtime/turn.ts';
import { digestKey, tagKey, tagOfImageKey } from './image-keys.ts';
import { type ImageUse, RunningImages } from './running-images.ts';

/** Whether two lists of a pod's uses name the same image keys of the same workloads, in the same order. */
function sameUses(a: readonly ImageUse[], b: readonly ImageUse[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.key !== y.key || x.workload.kind !== y.workload.kind || x.workload.name !== y.workload.name || x.workload.namespace !== y.workload.namespace) return false;
  }
  return true;
}

/** What the operator knows Anchore holds for one image key. */
export interface CatalogEntry {
  digest: string;
  analysis: AnalysisStatus | 'unknown';
  /** Polls since the last status change, for the poll backoff. */
  polls: number;
  /** Tags Anchore holds for this digest (its policy mappings are per tag: every running tag is added). */
  tags: Set<string>;
  /** When the next analysis poll is due (pod churn must not bring it forward). */
  nextPollAt?: number;
  /** Someone saw Anchore answer 404 for this image: read it again, and register it again if it is gone. */
  verify?: boolean;
}

export const FINAL_ANALYSIS: ReadonlySet<string> = new Set(['analyzed', 'analysis_failed']);

/** An image Anchore no longer holds, as the catalog forgets it. */
export interface VanishedImage {
  /** The key it was filed under. */
  key: string;
  account: string;
  /** Every digest it was known by (Anchore's, and the key's own when that differs: a manifest list's). */
  digests: string[];
  /** Whether it runs (or a binding demands it): then it is registered again, and said to be until it is analysed. */
  running: boolean;
}

/**
 * The shared image model: the images that run (and which pods and workloads run them) and what Anchore holds for
 * them. The image controller writes it; bindings, vulnerability counts, findings metrics and admission read it through
 * the `ImageRegistry` port. No I/O here.
 */
export class ImageCatalog {
  readonly running = new RunningImages();
  readonly #entries = new Map<string, CatalogEntry>();
  /**
   * Tag key → the digests Anchore holds under the tag (oldest first), from its lists and tag lookups. The operator
   * never writes a tenant's pin there (registrationTag), so every entry is evidence.
   */
  readonly #tagIndex = new Map<string, Set<string>>();
  /** Keys found deleted from Anchore, until registered and analysed again. */
  readonly #vanished = new Set<string>();
  /** Each running pod's resolved image uses (per-workload metrics without re-resolving at scrape time). */
  readonly #podUses = new Map<string, ImageUse[]>();
  /**
   * Top-level workload key → the workload and, per image key, how many uses of its running pods name it: kept as pods
   * change, so the per-workload metrics do not go through every pod at each scrape (a 50,000-pod pass).
   */
  readonly #workloads = new Map<string, { workload: WorkloadRef; uses: Map<string, number> }>();
  readonly #vanishedListeners: Array<(v: VanishedImage) => void> = [];
  /** Per account whose full list is being learned: the (tag key, digest) pairs learn() added meanwhile (newer: kept). */
  readonly #learnedDuring = new Map<string, Array<Array<[string, string]>>>();

  /** The entry filed under exactly this key. */
  entry(key: string): CatalogEntry | undefined {
    return this.#entries.get(key);
  }

  /** Anchore's state of an image key, if known; a tag-only key also finds what Anchore listed under the tag. */
  lookup(key: string): CatalogEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry) return entry;
    const listed = this.#listedUnderTag(key);
    return listed && this.#entries.get(digestKey(listed.account, listed.digest));
  }

  /** Files a tag-only key under the digest Anchore listed for its tag (what registering it would find), if any. */
  adoptListedTag(key: string): CatalogEntry | undefined {
    const listed = this.#listedUnderTag(key);
    if (!listed) return undefined;
    const known = this.#entries.get(digestKey(listed.account, listed.digest));
    const entry: CatalogEntry = { digest: listed.digest, analysis: known?.analysis ?? 'unknown', polls: 0, tags: new Set([listed.tag]) };
    this.#entries.set(key, entry);
    return entry;
  }

  /** For a tag-only key: the digest Anchore listed under its tag, if any. */
  #listedUnderTag(key: string): { account: string; tag: string; digest: string } | undefined {
    const k = tagOfImageKey(key);
    if (!k) return undefined;
    let digest: string | undefined;
    for (const d of this.#tagIndex.get(tagKey(k.account, k.tag)) ?? []) digest = d;
    return digest === undefined ? undefined : { account: k.account, tag: k.tag, digest };
  }

  /** Records an image Anchore holds: under its digest and its manifest list's, and in the tag index. */
  learn(account: string, i: AnchoreImage): void {
    this.#learnEntry(account, i);
    const during = this.#learnedDuring.get(account);
    for (const t of i.full_tags) {
      const tk = tagKey(account, t);
      let set = this.#tagIndex.get(tk);
      if (!set) this.#tagIndex.set(tk, (set = new Set()));
      set.add(i.image_digest);
      for (const pairs of during ?? []) pairs.push([tk, i.image_digest]);
    }
  }

  /**
   * Learns a complete list of an account's images, which is the whole truth about its tags: learn() of every image,
   * except that what earlier lists and lookups said about the account's tags is replaced (a tag moved or deleted in
   * Anchore stops naming its old digest). In turns of TURN_MS (at most SLICE images) with the event loop free between
   * them (an account can hold tens of thousands); the account's tags are replaced at the end, so a reader meanwhile
   * (admission) finds the previous list's tags, never none. What single lookups learn meanwhile is newer than the list,
   * and kept.
   */
  async learnList(account: string, images: readonly AnchoreImage[]): Promise<void> {
    const during: Array<[string, string]> = [];
    const lists = this.#learnedDuring.get(account) ?? [];
    this.#learnedDuring.set(account, lists);
    lists.push(during);
    try {
      await this.#learnList(account, images, during);
    } finally {
      lists.splice(lists.indexOf(during), 1);
      if (lists.length === 0) this.#learnedDuring.delete(account);
    }
  }

  async #learnList(account: string, images: readonly AnchoreImage[], during: ReadonlyArray<[string, string]>): Promise<void> {
    const tags = new Map<string, Set<string>>();
    const turn = new Turn(TURN_MS, SLICE);
    for (const i of images) {
      if (turn.due()) await turn.next();
      this.#learnEntry(account, i);
      for (const t of i.full_tags) {
        const tk = tagKey(account, t);
        let set = tags.get(tk);
        if (!set) tags.set(tk, (set = new Set()));
        set.add(i.image_digest);
      }
    }
    const prefix = tagKey(account, '');
    const stale: string[] = [];
    for (const k of this.#tagIndex.keys()) {
      if (turn.due()) await turn.next();
      if (k.startsWith(prefix) && !tags.has(k)) stale.push(k);
    }
    for (const [tk, digest] of during) {
      let set = tags.get(tk);
      if (!set) tags.set(tk, (set = new Set()));
      set.add(digest);
    }
    for (const k of stale) if (!tags.has(k)) this.#tagIndex.delete(k);
    for (const [k, set] of tags) this.#tagIndex.set(k, set);
  }

  /** learn() without the tag index. */
  #learnEntry(account: string, i: AnchoreImage): void {
    const entry = (): CatalogEntry => ({ digest: i.image_digest, analysis: i.analysis_status, polls: 0, tags: new Set(i.full_tags) });
    const k = digestKey(account, i.image_digest);
    const known = this.#entries.get(k);
    if (!known) this.#entries.set(k, entry());
    // A list read again (or on another replica) carries analysis the controller has not polled yet.
    else if (!FINAL_ANALYSIS.has(known.analysis) && FINAL_ANALYSIS.has(i.analysis_status)) known.analysis = i.analysis_status;
    // A multi-arch image is stored under its platform digest; the kubelet reports the manifest list's digest,
    // which Anchore keeps as parent_digest. Both name the same image.
    if (i.parent_digest && i.parent_digest !== i.image_digest) {
      const pk = digestKey(account, i.parent_digest);
      if (!this.#entries.has(pk)) this.#entries.set(pk, entry());
    }
    // Listed again, analysed: no longer being registered again (the leader's controller says so too, by settled();
    // a replica that does not lead learns it only here).
    if (FINAL_ANALYSIS.has(i.analysis_status)) {
      this.#vanished.delete(k);
      if (i.parent_digest) this.#vanished.delete(digestKey(account, i.parent_digest));
    }
  }

  /**
   * What the catalog holds for an account now: taken before a full list call, so that forgetUnlisted judges only
   * what was known before the list was asked for (an image registered while the list was on its way is not in it).
   */
  async held(account: string): Promise<Map<string, CatalogEntry>> {
    // Every key of the account, digest or tag-only, begins as its tag keys do.
    const prefix = tagKey(account, '');
    const out = new Map<string, CatalogEntry>();
    const turn = new Turn(TURN_MS, SLICE * 4);
    for (const [k, e] of this.#entries) {
      if (turn.due()) await turn.next();
      if (k.startsWith(prefix)) out.set(k, e);
    }
    return out;
  }

  /**
   * After a complete list of the account was read (successfully: a failed call never comes here): every image held
   * before the call (`before`, from held()) whose digest the list names no more — neither as an image's digest nor as
   * its parent (manifest list) digest — is gone from Anchore (deleted there, or a restored database). It is forgotten;
   * one that runs is marked vanished (re-registering) until it is analysed again. Each is told to the onVanished
   * listeners. An empty list is believed as well: a restored empty database is exactly that case. In turns of TURN_MS
   * (at most SLICE images) with the event loop free between them; an entry replaced meanwhile is newer than the list, and kept.
   */
  async forgetUnlisted(account: string, images: readonly AnchoreImage[], before: ReadonlyMap<string, CatalogEntry>): Promise<VanishedImage[]> {
    const listed = new Set<string>();
    const turn = new Turn(TURN_MS, SLICE);
    for (const i of images) {
      if (turn.due()) await turn.next();
      listed.add(digestKey(account, i.image_digest));
      if (i.parent_digest) listed.add(digestKey(account, i.parent_digest));
    }
    const gone: Array<[string, CatalogEntry]> = [];
    for (const [k, e] of before) {
      if (turn.due()) await turn.next();
      // Replaced while the list was on its way (registered again, adopted): newer than the list.
      if (this.#entries.get(k) !== e || listed.has(k) || listed.has(digestKey(account, e.digest))) continue;
      gone.push([k, e]);
    }
    // Running ones first: each takes its image's digest entry with it, so one image is told once.
    gone.sort(([a], [b]) => Number(this.running.get(b) !== undefined) - Number(this.running.get(a) !== undefined));
    const out: VanishedImage[] = [];
    for (const [k, e] of gone) {
      if (turn.due()) await turn.next();
      if (this.#entries.get(k) !== e) continue; // forgotten with another key of the same image
      if (this.running.get(k)) {
        out.push(this.vanished(k, account, e));
        continue;
      }
      out.push(this.#forget(k, account, e, false));
    }
    return out;
  }

  /** Subscribes to images found gone from Anchore (by a list, or by a 404 the image controller saw). */
  onVanished(listener: (v: VanishedImage) => void): void {
    this.#vanishedListeners.push(listener);
  }

  /** Whether trusted evidence pairs the tag with the digest (registrationTag may then write the tag to Anchore). */
  pairs(account: string, tag: string, digest: string): boolean {
    return this.tagCandidates(account, tag).includes(digest);
  }

  /** Records the image the operator just registered under a key. */
  registered(key: string, entry: CatalogEntry): void {
    this.#entries.set(key, entry);
  }

  /**
   * Anchore no longer holds the image: forget what it held, and say so until it is registered and analysed again.
   * The onVanished listeners are told (evaluations of it are dropped; the image controller registers it again).
   */
  vanished(key: string, account: string, entry: CatalogEntry): VanishedImage {
    return this.#forget(key, account, entry, true);
  }

  #forget(key: string, account: string, entry: CatalogEntry, mark: boolean): VanishedImage {
    this.#entries.delete(key);
    this.#entries.delete(digestKey(account, entry.digest));
    for (const t of entry.tags) {
      const set = this.#tagIndex.get(tagKey(account, t));
      if (set?.delete(entry.digest) && set.size === 0) this.#tagIndex.delete(tagKey(account, t));
    }
    if (mark) this.#vanished.add(key);
    // A running image's own digest may be its manifest list's, which Anchore files under the platform digest.
    const own = this.running.get(key)?.image.digest;
    const v: VanishedImage = { key, account, digests: own === undefined || own === entry.digest ? [entry.digest] : [entry.digest, own], running: this.running.get(key) !== undefined };
    for (const l of this.#vanishedListeners) l(v);
    return v;
  }

  /** The image reached a final analysis state again. */
  settled(key: string): void {
    this.#vanished.delete(key);
  }

  /** Whether the image was found deleted from Anchore and is being registered again. */
  reRegistering(key: string): boolean {
    return this.#vanished.has(key);
  }

  /**
   * Every digest a tag may stand for in an account, from evidence a tenant cannot forge: what kubelets pulled for
   * tag-only specs, and what Anchore holds under the tag. Admission judges each; any failing one fails the tag.
   */
  tagCandidates(account: string, tag: string): string[] {
    const out = new Set(this.running.digestsOfTag(account, tag));
    for (const d of this.#tagIndex.get(tagKey(account, tag)) ?? []) out.add(d);
    return [...out];
  }

  /** Sets the images a running pod uses (none: it stopped). */
  setPodUses(podKey: string, uses: ImageUse[] | undefined): void {
    const before = this.#podUses.get(podKey);
    // The same images of the same workloads (a pod judged again, most updates): the index stays as it is.
    if (before !== undefined && uses !== undefined && sameUses(before, uses)) {
      this.#podUses.set(podKey, uses);
      return;
    }
    for (const u of before ?? []) {
      const wk = workloadKey(u.workload);
      const w = this.#workloads.get(wk);
      const n = w?.uses.get(u.key) ?? 0;
      if (n > 1) w?.uses.set(u.key, n - 1);
      else if (w?.uses.delete(u.key) && w.uses.size === 0) this.#workloads.delete(wk);
    }
    if (uses?.length) this.#podUses.set(podKey, uses);
    else this.#podUses.delete(podKey);
    for (const u of uses ?? []) {
      const wk = workloadKey(u.workload);
      let w = this.#workloads.get(wk);
      if (!w) this.#workloads.set(wk, (w = { workload: u.workload, uses: new Map() }));
      w.uses.set(u.key, (w.uses.get(u.key) ?? 0) + 1);
    }
  }

  /** Top-level workloads with the image keys their running pods use (a copy: from the index kept by setPodUses). */
  workloadImages(): Map<string, { workload: WorkloadRef; keys: Set<string> }> {
    const out = new Map<string, { workload: WorkloadRef; keys: Set<string> }>();
    for (const [wk, w] of this.#workloads) out.set(wk, { workload: w.workload, keys: new Set(w.uses.keys()) });
    return out;
  }

  /** Running images by account and analysis status (not_registered: Anchore does not hold it yet). */
  *countByStatus(): Iterable<[{ account: string; analysis_status: string }, number]> {
    const counts = new Map<string, number>();
    for (const img of this.running.values()) {
      const status = this.#entries.get(img.key)?.analysis ?? 'not_registered';
      const k = `${img.account}\u0000${status}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const [k, n] of counts) {
      const [account, analysis_status] = k.split('\u0000') as [string, string];
      yield [{ account, analysis_status }, n];
    }
  }
}
