import type { AnchoreApi, AnchoreImage, CallLimits } from '../anchore/anchore.port.ts';
import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ImageCatalog } from './image-catalog.ts';

interface AnchoreImagesOptions {
  anchore: Pick<AnchoreApi, 'listImages'>;
  catalog: ImageCatalog;
  /** How often each loaded account's image list is read again (images CI added, tags that moved, images deleted). */
  refreshMs: number;
  clock: Clock;
  log: Logger;
  /** Called when an account's list was read (the missing-accounts record clears). */
  onAccountListed?(account: string): void;
}

/** A tag Anchore was asked about and did not hold is not asked about again for this long. */
const NEGATIVE_TTL_MS = 60_000;
/** Bound on remembered negative lookups (every unknown tag a review names could otherwise be kept). */
const NEGATIVE_MAX = 10_000;

/**
 * What Anchore holds, kept in the shared image catalog on every replica: each account's image list, read when first
 * needed and again every `refreshMs`, and single tags looked up on a miss. Admission on a replica that does not lead
 * knows what the leader knows; an image CI added after the start is found at the next refresh, or at once by a
 * lookup. The image controller (leader only) writes registrations and analysis into the same catalog.
 *
 * Each successful full list is also the truth about deletions: an image the catalog held before the call and the list
 * no longer names is forgotten (ImageCatalog.forgetUnlisted), so an image deleted in Anchore is noticed within
 * `refreshMs` (ANCHORE_IMAGES_REFRESH_SECONDS) rather than at the next re-evaluation. A failed call never counts; an
 * empty answer does (a restored empty database is exactly what it looks like).
 */
export class AnchoreImages {
  readonly #o: AnchoreImagesOptions;
  readonly #loaded = new Map<string, Promise<void>>();
  readonly #lookups = new Map<string, Promise<string[]>>();
  readonly #notHeld = new Map<string, number>();
  readonly #listed = new Set<string>();
  #timer: unknown;
  #stopped = false;

  constructor(o: AnchoreImagesOptions) {
    this.#o = o;
  }

  /** Resolves once the account's image list is known (one list call, shared; a failure is forgotten, so retried). */
  ensureAccount(account: string): Promise<void> {
    let p = this.#loaded.get(account);
    if (!p) {
      p = this.#list(account);
      this.#loaded.set(account, p);
      p.catch(() => {
        if (this.#loaded.get(account) === p) this.#loaded.delete(account);
      });
    }
    return p;
  }

  /** Reads the lists of the loaded accounts again every refreshMs, until stop(). */
  start(): void {
    const tick = (): void => {
      if (this.#stopped) return;
      void this.refresh();
      this.#timer = this.#o.clock.setTimeout(tick, this.#o.refreshMs);
    };
    this.#timer = this.#o.clock.setTimeout(tick, this.#o.refreshMs);
  }

  /** Reads the list of every loaded account again now (what each refresh does); a failure keeps the last list. */
  async refresh(): Promise<void> {
    await Promise.all(
      [...this.#loaded.keys()].map((account) =>
        this.#list(account).catch((err: unknown) => this.#o.log.warn({ account, err: errorMessage(err) }, 'could not refresh the images Anchore holds; keeping the last list')),
      ),
    );
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
  }

  /**
   * Asks Anchore which digests it holds under a tag (GET /v2/images?full_tag=), within the caller's limits, and files
   * the answer in the catalog. Returns the tag's candidates (catalog.tagCandidates). Concurrent lookups of one tag
   * share a call; a tag Anchore does not hold is not asked about again for a minute.
   */
  lookupTag(account: string, tag: string, limits: CallLimits): Promise<string[]> {
    const key = `${account}|${tag}`;
    const inflight = this.#lookups.get(key);
    if (inflight) return inflight;
    const until = this.#notHeld.get(key);
    if (until !== undefined && until > this.#o.clock.now()) return Promise.resolve(this.#o.catalog.tagCandidates(account, tag));
    const p = this.#o.anchore.listImages(account, { fullTag: tag }, limits).then((images) => {
      this.#learn(account, images);
      const out = this.#o.catalog.tagCandidates(account, tag);
      if (out.length === 0) this.#rememberNotHeld(key);
      else this.#notHeld.delete(key);
      return out;
    });
    this.#lookups.set(key, p);
    const done = (): void => {
      this.#lookups.delete(key);
    };
    p.then(done, done);
    return p;
  }

  #rememberNotHeld(key: string): void {
    if (this.#notHeld.size >= NEGATIVE_MAX) {
      const now = this.#o.clock.now();
      for (const [k, t] of this.#notHeld) if (t <= now) this.#notHeld.delete(k);
      if (this.#notHeld.size >= NEGATIVE_MAX) this.#notHeld.clear();
    }
    this.#notHeld.set(key, this.#o.clock.now() + NEGATIVE_TTL_MS);
  }

  async #list(account: string): Promise<void> {
    const first = !this.#listed.has(account);
    // What was known before the call: only that can be judged gone by its answer.
    const before = await this.#o.catalog.held(account);
    // A failed call (outage, throttling, an answer that cannot be read) throws here and changes nothing.
    const images = await this.#o.anchore.listImages(account);
    // The list is the whole truth about tags: a tag moved or deleted in Anchore stops naming its old digest. Learned in
    // slices (an account may hold tens of thousands of images), as is the judgement of what it no longer names.
    await this.#o.catalog.learnList(account, images);
    // ...and about images: one it held before and lists no more was deleted there (or its database restored). It is
    // forgotten (the catalog's onVanished listeners drop its evaluations; the leader registers a running one again).
    const gone = await this.#o.catalog.forgetUnlisted(account, images, before);
    this.#listed.add(account);
    this.#o.onAccountListed?.(account);
    if (gone.length) {
      this.#o.log.warn(
        { account, gone: gone.length, running: gone.filter((g) => g.running).length, listed: images.length, examples: gone.slice(0, 5).map((g) => g.digests[0]) },
        'Anchore no longer holds images it held before (deleted there, or its database restored); forgetting their evaluations and registering the running ones again',
      );
    }
    if (first) this.#o.log.info({ account, images: images.length }, 'learned the images Anchore already holds');
    else this.#o.log.debug({ account, images: images.length }, 'refreshed the images Anchore holds');
  }

  #learn(account: string, images: readonly AnchoreImage[]): void {
    for (const i of images) this.#o.catalog.learn(account, i);
  }
}
