import { REASON } from '../crds/types.ts';
import type { AnchoreApi, AnchoreImage } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { type ClusterStores, type PodInfo, resolveWorkload, workloadKey } from '../kube/cluster.port.ts';
import { type BackoffPolicy, backoffDelay } from '../runtime/backoff.ts';
import { yieldToLoop } from '../runtime/cooperative.ts';
import { WaitError } from '../runtime/errors.ts';
import { WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import { METRIC, type OperatorMetrics } from '../telemetry/metrics.ts';
import { addImageRequest, registrationTag } from '../model/add-image.ts';
import type { AnchoreImages } from '../model/anchore-images.ts';
import { type CatalogEntry, FINAL_ANALYSIS, type ImageCatalog } from '../model/image-catalog.ts';
import { imageKey } from '../model/image-keys.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import { MISSING_ACCOUNT_RECHECK_MS, type MissingAccounts } from '../model/missing-accounts.ts';
import type { ImageUse, RunningImage } from '../model/running-images.ts';
import type { Scope } from '../model/scope.ts';

interface ImageControllerOptions {
  stores: ClusterStores;
  scope: Scope;
  anchore: AnchoreApi;
  clusterName: string;
  workers: number;
  analysisPollMaxMs: number;
  log: Logger;
  metrics: OperatorMetrics;
  /** Shared record of accounts Anchore says do not exist (log once, metric). */
  missingAccounts?: MissingAccounts;
  /** The shared image model (built by the composition root; admission, bindings and metrics read it too). */
  catalog: ImageCatalog;
  /** Anchore's image lists, loaded into the catalog on every replica. */
  anchoreImages: Pick<AnchoreImages, 'ensureAccount'>;
}

/** Longest turn of the start-up pass over every pod before the event loop gets a turn. */
const JUDGE_TURN_MS = 5;

/**
 * Registers every running image with Anchore exactly once and follows its analysis to a final state.
 *
 * Level-based: a pod event only recomputes that pod's images and enqueues image keys; the handler re-reads the
 * running set and what Anchore is known to hold. Before the first registration in an account, one list call learns
 * what Anchore already has, so a restart adds nothing that is already there.
 */
export class ImageController implements ImageRegistry {
  readonly queue: WorkQueue<string>;
  /** The shared image model this controller keeps current (others read it through the ImageRegistry port). */
  readonly #model: ImageCatalog;
  readonly running: ImageCatalog['running'];
  readonly #o: ImageControllerOptions;
  readonly #firstSeen = new Map<string, number>();
  readonly #pollBackoff: BackoffPolicy;
  readonly #log: Logger;
  readonly #finalListeners: Array<(key: string, entry: CatalogEntry) => void> = [];
  readonly #vanishedListeners: Array<(key: string) => void> = [];

  constructor(o: ImageControllerOptions) {
    this.#o = o;
    this.#model = o.catalog;
    this.running = o.catalog.running;
    this.#log = o.log.child({ controller: 'image' });
    this.#pollBackoff = { baseMs: 1000, maxMs: o.analysisPollMaxMs, jitter: 0.2 };
    this.queue = new WorkQueue<string>({
      name: 'image',
      concurrency: o.workers,
      urgentReserve: Math.max(1, Math.floor(o.workers / 4)),
      handle: (key) => this.reconcile(key),
      backoff: { baseMs: 1000, maxMs: 60_000, jitter: 0.3 },
      onEvent: o.metrics.queueObserver('image', this.#log, 'image registration'),
    });
    o.stores.pods.on({
      add: (p) => this.#podChanged(p.key, p),
      update: (_o, p) => this.#podChanged(p.key, p),
      delete: (p) => this.#podChanged(p.key, undefined),
    });
    // A namespace's labels decide scope and account: re-derive its pods when they change.
    o.stores.namespaces.on({
      add: (ns) => this.#namespaceChanged(ns.name),
      update: (_a, b) => this.#namespaceChanged(b.name),
      delete: (ns) => this.#namespaceChanged(ns.name),
    });
    // Anchore no longer holds an image (its list left it out, on any replica; or it answered 404 here): a running one is
    // registered again at once (urgent: ahead of analysis polls), and the bindings covering it are told.
    o.catalog.onVanished((v) => {
      if (!v.running || !this.running.get(v.key)) return;
      this.queue.add(v.key, { urgent: true });
      for (const l of this.#vanishedListeners) l(v.key);
    });
    o.metrics.stateGauge(METRIC.images, 'Running images known to the operator, by account and analysis status', ['account', 'analysis_status'], () => this.#model.countByStatus());
  }

  start(): void {
    // Pods seen before the namespace cache synced were judged without their namespace: judge all again. In turns of
    // JUDGE_TURN_MS, the event loop free between them: at 50,000 pods one pass is a task of a quarter second, and
    // admission is already serving. A pod changed or deleted meanwhile was judged by its own event: read again here.
    const keys = [...this.#o.stores.pods.list()].map((p) => p.key);
    let i = 0;
    const turn = (): boolean => {
      const end = performance.now() + JUDGE_TURN_MS;
      while (i < keys.length) {
        const key = keys[i++]!;
        const pod = this.#o.stores.pods.get(key);
        if (pod) this.#podChanged(key, pod);
        if (performance.now() >= end) break;
      }
      return i >= keys.length;
    };
    const done = turn();
    this.queue.start();
    if (done) return;
    void (async () => {
      do await yieldToLoop();
      while (!turn());
    })();
  }

  /** Anchore's state of an image key, if known. */
  catalog(key: string): CatalogEntry | undefined {
    return this.#model.lookup(key);
  }

  /**
   * Resolves once Anchore's image list for the account is known (one shared list call). Bindings wait for it before
   * judging: after a restart an image missing from an unloaded catalog is not an image waiting for analysis.
   */
  ensureAccount(account: string): Promise<void> {
    return this.#o.anchoreImages.ensureAccount(account);
  }

  /** Images used by a pod, as the operator resolves them (scope, account, workload). */
  usesOf(pod: PodInfo): ImageUse[] {
    const { stores, scope, metrics } = this.#o;
    const ns = stores.namespaces.get(pod.namespace);
    if (!scope.includesNamespace(ns)) return [];
    const account = scope.accountFor(ns, pod.namespace);
    const workload = resolveWorkload(pod, stores);
    const uses: ImageUse[] = [];
    for (const c of pod.containers) {
      const r = scope.resolveRunning(c);
      if (r.kind !== 'image') {
        metrics.imagesSkipped.inc({ reason: r.kind });
        if (r.kind === 'invalid') this.#log.debug({ pod: pod.key, container: c.name, reason: r.reason }, 'container image not usable');
        continue;
      }
      uses.push({ key: imageKey(account, r.image), account, image: r.image, workload });
    }
    return uses;
  }

  #podChanged(key: string, pod: PodInfo | undefined): void {
    const uses = pod ? this.usesOf(pod) : undefined;
    this.#model.setPodUses(key, uses);
    this.demand(key, uses);
  }

  workloadImages(): Map<string, { workload: ImageUse['workload']; keys: Set<string> }> {
    return this.#model.workloadImages();
  }

  /**
   * Declares the images a source needs registered (a pod's containers, or a binding that evaluates images in an
   * account other than the routed one). Refcounted per source; undefined withdraws the source.
   */
  demand(source: string, uses: readonly ImageUse[] | undefined): void {
    const started = this.running.setSource(source, uses);
    const now = Date.now();
    for (const k of started) {
      const entry = this.#model.entry(k);
      if (!this.#firstSeen.has(k) && !entry) this.#firstSeen.set(k, now);
      // A poll is already scheduled and every running tag is registered: another pod running the image changes
      // nothing, so it must not bring the poll forward (pod churn would otherwise poll Anchore hundreds of times).
      if (entry?.nextPollAt !== undefined && entry.nextPollAt > now && !this.#missingTag(k, entry)) {
        this.queue.addAfter(k, entry.nextPollAt - now);
        continue;
      }
      // New images are urgent: registration goes ahead of analysis polls (docs/performance.md, churn).
      this.queue.add(k, { urgent: !entry });
    }
  }

  /** A running tag of this image that Anchore does not hold yet. */
  #missingTag(key: string, entry: CatalogEntry): string | undefined {
    for (const tag of this.running.get(key)?.tags.keys() ?? []) if (!entry.tags.has(tag)) return tag;
    return undefined;
  }

  /**
   * Anchore answered 404 for this image (a check or a vulnerability read): read it again and, if Anchore no longer
   * holds it, register it again. True when the image is one the operator follows.
   */
  recheck(key: string): boolean {
    const entry = this.#model.entry(key);
    if (!entry || !this.running.get(key)) return false;
    if (!entry.verify) {
      entry.verify = true;
      this.queue.add(key, { urgent: true });
    }
    return true;
  }

  #namespaceChanged(name: string): void {
    for (const p of this.#o.stores.pods.list()) if (p.namespace === name) this.#podChanged(p.key, p);
  }

  /** Reconciles one image key; exported for tests. */
  async reconcile(key: string): Promise<void> {
    const img = this.running.get(key);
    if (!img) {
      // Nothing runs it any more. Anchore keeps it; we only stop following it.
      this.#firstSeen.delete(key);
      return;
    }
    try {
      await this.#reconcile(key, img);
    } catch (err) {
      if (!(err instanceof AnchoreError && err.kind === 'account-not-found')) throw err;
      // Nothing can be registered there until someone creates the account: no fast retry loop, one warning.
      this.#o.missingAccounts?.missing(img.account, err.message);
      throw new WaitError(REASON.accountNotFound, `${key}: Anchore account "${img.account}" does not exist; trying again in ${MISSING_ACCOUNT_RECHECK_MS / 60_000} min`, MISSING_ACCOUNT_RECHECK_MS);
    }
  }

  async #reconcile(key: string, img: RunningImage): Promise<void> {
    const log = this.#log.child({ account: img.account, image: img.image.tag, reconcileId: nextReconcileId() });
    await this.#o.anchoreImages.ensureAccount(img.account);
    let entry = this.#model.entry(key) ?? this.#model.adoptListedTag(key);
    const added = !entry;
    if (!entry) {
      const res = await this.#add(img, img.image);
      entry = { digest: res.image_digest, analysis: res.analysis_status, polls: 0, tags: new Set([img.image.tag]) };
      this.#model.registered(key, entry);
      this.#o.metrics.imagesRegistered.inc({ account: img.account });
      const seen = this.#firstSeen.get(key);
      if (seen !== undefined) this.#o.metrics.registrationLatency.observe((Date.now() - seen) / 1000);
      this.#firstSeen.delete(key);
      log.info({ digest: res.image_digest, workload: workloadKey(img.firstWorkload) }, 'image registered with Anchore');
    }
    // One digest running under several tags: Anchore maps policies per tag, so each tag is added (by digest).
    for (let tag = this.#missingTag(key, entry); tag !== undefined; tag = this.#missingTag(key, entry)) {
      const use = img.tags.get(tag)?.image ?? img.image;
      await this.#add(img, use);
      entry.tags.add(tag);
      log.info({ digest: entry.digest, tag }, 'image registered with Anchore under another running tag');
    }
    if (FINAL_ANALYSIS.has(entry.analysis) && !entry.verify) return this.#final(key, entry);
    if (added) throw this.#waitForAnalysis(key, entry);
    if (entry.nextPollAt !== undefined && entry.nextPollAt - Date.now() > 50 && !entry.verify) {
      // Woken before the poll is due (an image re-entering the running set): keep the backoff.
      throw new WaitError(REASON.analysisPending, `${key}: analysis ${entry.analysis}; poll not due yet`, entry.nextPollAt - Date.now());
    }
    let fresh: AnchoreImage;
    try {
      fresh = await this.#o.anchore.getImage(img.account, entry.digest);
    } catch (err) {
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        // Deleted from Anchore behind our back: the catalog tells its onVanished listeners (its evaluations are
        // dropped; this controller queues the key again and tells the bindings, which say so while it is re-added).
        log.warn({ digest: entry.digest }, 'Anchore no longer holds the image; registering it again');
        this.#model.vanished(key, img.account, entry);
        throw new WaitError(REASON.imageNotInAnchore, `image ${entry.digest} is no longer in Anchore; re-adding`, 0);
      }
      throw err;
    }
    delete entry.verify;
    if (fresh.analysis_status !== entry.analysis) {
      entry.analysis = fresh.analysis_status;
      entry.polls = 0;
    }
    if (FINAL_ANALYSIS.has(entry.analysis)) return this.#final(key, entry);
    throw this.#waitForAnalysis(key, entry);
  }

  /** Whether the image was found deleted from Anchore and is being registered again. */
  reRegistering(key: string): boolean {
    return this.#model.reRegistering(key);
  }

  #add(img: RunningImage, image: RunningImage['image']): Promise<AnchoreImage> {
    const tag = registrationTag(image, (t, d) => this.#model.pairs(img.account, t, d));
    return this.#o.anchore.addImage(img.account, addImageRequest(image, this.#o.clusterName, { workload: workloadKey(img.firstWorkload) }, tag));
  }

  #waitForAnalysis(key: string, entry: CatalogEntry): WaitError {
    const delay = backoffDelay(this.#pollBackoff, entry.polls++);
    entry.nextPollAt = Date.now() + delay;
    return new WaitError(REASON.analysisPending, `${key}: analysis ${entry.analysis}; polling again in ${delay} ms`, delay);
  }

  #final(key: string, entry: CatalogEntry): void {
    delete entry.nextPollAt;
    this.#model.settled(key);
    if (entry.analysis === 'analysis_failed') this.#log.warn({ key, digest: entry.digest }, 'Anchore failed to analyse the image');
    for (const l of this.#finalListeners) l(key, entry);
  }

  /**
   * Subscribes to running images found deleted from Anchore, by its list (ANCHORE_IMAGES_REFRESH_SECONDS) or by a 404
   * (bindings say so while they are registered again).
   */
  onVanished(listener: (key: string) => void): void {
    this.#vanishedListeners.push(listener);
  }

  /** Subscribes to images reaching a final analysis state (bindings re-evaluate then). */
  onAnalysisFinal(listener: (key: string, entry: CatalogEntry) => void): void {
    this.#finalListeners.push(listener);
  }
}
