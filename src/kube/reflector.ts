import { type BackoffPolicy, backoffDelay } from '../runtime/backoff.ts';
import { SLICE } from '../runtime/cooperative.ts';
import { TURN_MS, Turn } from '../runtime/turn.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KubeClient, WatchHandle } from './client.ts';
import { changed } from './cluster.port.ts';
import { isKubeError, kubeErrorKind } from './errors.ts';

/** Every cached object keeps these so the store can detect change; the rest is whatever the projection keeps. */
interface Cached {
  key: string;
  resourceVersion: string;
}

interface ReflectorHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

// Capped at 5 s: after an apiserver outage the caches must catch up within seconds (changes made during the gap are
// registered within 10 s of recovery, docs/reliability.md); a few requests per resource every 5 s cost nothing.
const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 5_000, jitter: 0.3 };

/** Why a watch is started again (the watch-restarts metric's reason label). */
export const WATCH_RESTART_REASONS = ['timeout', 'closed', 'error', 'gone', 'watchdog', 'relist'] as const;
type WatchRestartReason = (typeof WATCH_RESTART_REASONS)[number];

export interface ReflectorMetrics {
  watchRestart(resource: string, reason: WatchRestartReason): void;
  event(resource: string, type: string): void;
  listed(resource: string, count: number, durationMs: number): void;
}

interface ReflectorOptions<T extends Cached> {
  /** Resource name for logs and metrics, e.g. "pods". */
  resource: string;
  client: KubeClient;
  /** Collection path, e.g. /api/v1/pods or /apis/apps/v1/replicasets. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask for PartialObjectMetadata: enough for owner walks, a fraction of the bytes. */
  metadataOnly?: boolean;
  /**
   * Keep only objects of the namespaces this admits (a namespaced resource: keys are "namespace/name"). Asked of the raw
   * object before the projection, so an object of another namespace costs neither memory nor projection work. Whoever
   * owns the rule says when a namespace enters it (`addNamespace`: listed in) or leaves it (`dropNamespace`).
   */
  admitsNamespace?: (namespace: string) => boolean;
  /** Slim projection of a raw object; undefined drops it (treated as absent). Must set key and resourceVersion. */
  project(raw: unknown): T | undefined;
  pageSize?: number;
  /** Full relist + diff on this interval, to recover from any missed event (0 = off). */
  relistIntervalMs?: number;
  /** Abort and relist when nothing (event, bookmark, connect) arrived for this long (0 = off). */
  watchdogMs?: number;
  backoff?: BackoffPolicy;
  log: Logger;
  metrics?: ReflectorMetrics;
}

/**
 * List-then-watch cache for one resource (an informer). Level-based consumers read `get`/`list`; handlers are
 * only told "look again". Recovers by itself: 410 Gone → relist with a diff (deletions during the gap become delete
 * events), any other error → restart with backoff, silence → watchdog relist, and a periodic relist as a backstop.
 */
export class Reflector<T extends Cached> {
  readonly resource: string;
  readonly #o: ReflectorOptions<T>;
  #store = new Map<string, T>();
  readonly #handlers: ReflectorHandlers<T>[] = [];
  #rv = '';
  #synced = false;
  #stopped = false;
  #watch: WatchHandle | undefined;
  #watchGen = 0;
  #failures = 0;
  #lastActivity = Date.now();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #relistTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #syncedWaiters: Array<() => void> = [];
  /**
   * Namespaces being listed because they entered the scope, each with the keys the watch delivered meanwhile: for
   * those the watch is newer than (or as new as) the list, so the list does not overwrite them.
   */
  readonly #loads = new Map<string, { touched: Set<string> }>();
  /** Namespaces that entered the scope while a full list was running: listed once it is done. */
  readonly #deferred = new Set<string>();
  #relisting = 0;

  constructor(opts: ReflectorOptions<T>) {
    this.resource = opts.resource;
    this.#o = opts;
  }

  on(handlers: ReflectorHandlers<T>): void {
    this.#handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  list(): IterableIterator<T> {
    return this.#store.values();
  }

  get size(): number {
    return this.#store.size;
  }

  get hasSynced(): boolean {
    return this.#synced;
  }

  get lastActivity(): number {
    return this.#lastActivity;
  }

  /** Resolves once the first list has been loaded and the watch is starting. Retries the list with backoff. */
  async start(): Promise<void> {
    this.#stopped = false;
    const dog = this.#o.watchdogMs ?? 0;
    if (dog > 0) {
      this.#watchdog = setInterval(() => this.#checkWatchdog(dog), Math.min(dog, 30_000));
      this.#watchdog.unref();
    }
    void this.#listAndWatch('initial');
    await this.waitForSync();
  }

  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncedWaiters.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    // A later start() must wait for a fresh list, not report the stale cache as synced.
    this.#synced = false;
    this.#watchGen++;
    this.#watch?.abort();
    this.#watch = undefined;
    this.#loads.clear();
    this.#deferred.clear();
    if (this.#watchdog) clearInterval(this.#watchdog);
    if (this.#relistTimer) clearTimeout(this.#relistTimer);
    this.#relistTimer = undefined;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  async #listAndWatch(why: string): Promise<void> {
    if (this.#stopped) return;
    const gen = ++this.#watchGen;
    this.#watch?.abort();
    this.#watch = undefined;
    try {
      await this.#relist(gen);
    } catch (err) {
      if (this.#stopped || gen !== this.#watchGen) return;
      const delay = this.#nextBackoff();
      const hint = isKubeError(err, 'not-found')
        ? 'the API does not serve this resource: is its CRD installed? (kubectl apply -f deploy/crds)'
        : isKubeError(err, 'forbidden')
          ? 'forbidden: check the operator RBAC'
          : undefined;
      this.#o.log.warn({ resource: this.resource, err: errorMessage(err), retryInMs: delay, why, ...(hint ? { hint } : {}) }, 'list failed; retrying');
      this.#later(() => void this.#listAndWatch('list-retry'), delay);
      return;
    }
    if (this.#stopped || gen !== this.#watchGen) return;
    this.#failures = 0;
    this.#markSynced();
    this.#scheduleRelist();
    void this.#startWatch(gen);
  }

  /** The backstop: a full relist + diff every relistIntervalMs (with jitter), whatever the watch is doing. */
  #scheduleRelist(): void {
    const every = this.#o.relistIntervalMs ?? 0;
    if (this.#relistTimer) clearTimeout(this.#relistTimer);
    if (every <= 0 || this.#stopped) return;
    this.#relistTimer = setTimeout(
      () => {
        this.#relistTimer = undefined;
        if (this.#stopped) return;
        this.#o.metrics?.watchRestart(this.resource, 'relist');
        void this.#listAndWatch('periodic relist');
      },
      every + Math.floor(Math.random() * every * 0.1),
    );
    this.#relistTimer.unref();
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    for (const w of this.#syncedWaiters.splice(0)) w();
  }

  async #relist(gen: number): Promise<void> {
    const started = Date.now();
    const fresh = new Map<string, T>();
    let complete: boolean;
    this.#relisting++;
    try {
      const rv = await this.#listAll(
        this.#o.path,
        (raw) => this.#admits(raw),
        (obj) => fresh.set(obj.key, obj),
      );
      this.#lastActivity = Date.now();
      this.#rv = rv;
      // Still counted as relisting while it is applied: a namespace entering the scope meanwhile waits for it.
      complete = await this.#apply(fresh, () => this.#stopped || gen !== this.#watchGen);
    } finally {
      this.#relisting--;
    }
    if (!complete) return;
    this.#o.metrics?.listed(this.resource, fresh.size, Date.now() - started);
    if (this.#relisting === 0) this.#afterFullList();
  }

  /**
   * Applies a full list to the store and tells the handlers what changed (adds and updates in the list's order, then
   * deletions: how deletions missed during a gap surface), in turns of TURN_MS (at most SLICE objects) with the event
   * loop free between them: a 50,000-pod list is otherwise one task of several hundred ms, the handlers' work
   * included, that admission and the metrics wait behind. The store holds exactly what the handlers were told so far, so a list superseded
   * part-way (`superseded`: stopped, or another list began) leaves nothing untold: the next one diffs against the
   * store. Objects of a namespace that left the scope (before or while it is applied) are left out. Once complete, the
   * store holds what one synchronous pass would have left, in the list's order. False when superseded.
   */
  async #apply(fresh: Map<string, T>, superseded: () => boolean): Promise<boolean> {
    const admits = this.#o.admitsNamespace;
    const gone: T[] = [];
    for (const [k, prev] of this.#store) if (!fresh.has(k)) gone.push(prev);
    const turn = new Turn(TURN_MS, SLICE);
    const pause = async (): Promise<boolean> => {
      if (!turn.due()) return false;
      await turn.next();
      return superseded();
    };
    for (const [k, obj] of fresh) {
      if (await pause()) return false;
      // A namespace that left the scope after its page was read.
      if (admits && !admits(namespaceOfKey(k))) {
        fresh.delete(k);
        const prev = this.#store.get(k);
        if (prev) gone.push(prev);
        continue;
      }
      const prev = this.#store.get(k);
      this.#store.set(k, obj);
      if (!prev) this.#emit('add', undefined, obj);
      else if (changed(prev, obj)) this.#emit('update', prev, obj);
    }
    for (const prev of gone) {
      if (await pause()) return false;
      // Already removed meanwhile (its namespace left the scope) or replaced by a namespace list: not this list's to delete.
      if (this.#store.get(prev.key) !== prev) continue;
      this.#store.delete(prev.key);
      this.#emit('delete', prev, undefined);
    }
    // The list's order, as the synchronous pass left it (then anything a namespace list added meanwhile).
    const ordered = new Map<string, T>();
    for (const k of fresh.keys()) {
      const obj = this.#store.get(k);
      if (obj !== undefined) ordered.set(k, obj);
    }
    if (ordered.size !== this.#store.size) for (const [k, obj] of this.#store) if (!ordered.has(k)) ordered.set(k, obj);
    this.#store = ordered;
    return true;
  }

  /** Every page of a list; `admit` is asked of each raw object before it is projected. Returns the list's resourceVersion. */
  async #listAll(path: string, admit: (raw: unknown) => boolean, keep: (obj: T) => void): Promise<string> {
    let continueToken: string | undefined;
    let rv = '';
    do {
      const page = await this.#o.client.listPage<unknown>(path, {
        labelSelector: this.#o.labelSelector,
        fieldSelector: this.#o.fieldSelector,
        limit: this.#o.pageSize ?? 500,
        continueToken,
        metadataOnly: this.#o.metadataOnly,
      });
      for (const raw of page.items) {
        if (!admit(raw)) continue;
        const obj = this.#o.project(raw);
        if (obj) keep(obj);
      }
      rv = page.resourceVersion;
      continueToken = page.continueToken;
    } while (continueToken);
    return rv;
  }

  #admits(raw: unknown): boolean {
    const admits = this.#o.admitsNamespace;
    if (!admits) return true;
    const ns = namespaceOfRaw(raw);
    return ns !== undefined && admits(ns);
  }

  /**
   * A namespace entered the scope (`admitsNamespace` says yes to it from now on): its objects are listed (the same
   * selectors, one namespace) and added with add events. The watch, which admits them from now on, keeps precedence:
   * an object it delivered (or deleted) while the list ran is not taken from the list. Retried with backoff until it
   * succeeds, the namespace leaves again, or the reflector stops.
   */
  addNamespace(namespace: string): void {
    if (this.#stopped) return;
    // A full list is running: it may have read this namespace's page before the namespace entered.
    if (this.#relisting > 0) {
      this.#deferred.add(namespace);
      return;
    }
    // Not listed yet (not started, or the first list failed and waits): the first list reads every admitted namespace.
    if (!this.#synced) return;
    this.#startLoad(namespace);
  }

  #startLoad(namespace: string): void {
    const load = { touched: new Set<string>() };
    this.#loads.set(namespace, load);
    void this.#loadNamespace(namespace, load, 0);
  }

  /** A namespace left the scope: its cached objects are removed with delete events (a scan of the keys). */
  dropNamespace(namespace: string): void {
    this.#loads.delete(namespace);
    this.#deferred.delete(namespace);
    const prefix = `${namespace}/`;
    for (const [k, prev] of this.#store) {
      if (!k.startsWith(prefix)) continue;
      this.#store.delete(k);
      this.#emit('delete', prev, undefined);
    }
  }

  async #loadNamespace(namespace: string, load: { touched: Set<string> }, attempt: number): Promise<void> {
    const current = (): boolean => !this.#stopped && this.#loads.get(namespace) === load;
    const listed: T[] = [];
    try {
      await this.#listAll(
        namespacedPath(this.#o.path, namespace),
        () => true,
        (obj) => listed.push(obj),
      );
    } catch (err) {
      if (!current()) return;
      const delay = backoffDelay(this.#o.backoff ?? DEFAULT_BACKOFF, attempt);
      this.#o.log.warn({ resource: this.resource, namespace, err: errorMessage(err), retryInMs: delay }, 'list of a namespace that entered the scope failed; retrying');
      this.#later(() => {
        if (current()) void this.#loadNamespace(namespace, load, attempt + 1);
      }, delay);
      return;
    }
    // Left the scope, superseded by a full list, or stopped meanwhile.
    if (!current()) return;
    this.#loads.delete(namespace);
    let added = 0;
    for (const obj of listed) {
      if (load.touched.has(obj.key) || this.#store.has(obj.key)) continue;
      this.#store.set(obj.key, obj);
      this.#emit('add', undefined, obj);
      added++;
    }
    this.#o.log.debug({ resource: this.resource, namespace, listed: listed.length, added }, 'namespace entered the scope: listed');
  }

  /**
   * After a full list (none other running): namespace lists begun before it are superseded (it read those namespaces
   * itself, and newer); namespaces that entered the scope while it ran are listed now.
   */
  #afterFullList(): void {
    this.#loads.clear();
    const entered = [...this.#deferred];
    this.#deferred.clear();
    if (this.#stopped) return;
    for (const ns of entered) if (this.#o.admitsNamespace?.(ns)) this.#startLoad(ns);
  }

  async #startWatch(gen: number): Promise<void> {
    if (this.#stopped || gen !== this.#watchGen) return;
    let ended = false;
    const done = (err: unknown): void => {
      if (ended) return;
      ended = true;
      if (this.#stopped || gen !== this.#watchGen) return;
      this.#watch = undefined;
      this.#onWatchEnd(gen, err);
    };
    try {
      const handle = await this.#o.client.watch(
        this.#o.path,
        {
          resourceVersion: this.#rv,
          allowWatchBookmarks: true,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
          // Server-side timeout spreads reconnects; the client also ends a watch after 30 s of silence.
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        },
        (type, obj) => {
          if (gen !== this.#watchGen) return;
          this.#onWatchEvent(gen, type, obj);
        },
        done,
        { metadataOnly: this.#o.metadataOnly },
      );
      if (ended || gen !== this.#watchGen) handle.abort();
      else this.#watch = handle;
      this.#lastActivity = Date.now();
    } catch (err) {
      done(err);
    }
  }

  #onWatchEvent(gen: number, type: string, raw: unknown): void {
    this.#lastActivity = Date.now();
    this.#o.metrics?.event(this.resource, type);
    if (type === 'ERROR') {
      const status = raw as { code?: number; reason?: string; message?: string };
      if (kubeErrorKind(status?.code, status?.reason) === 'gone') {
        this.#o.metrics?.watchRestart(this.resource, 'gone');
        this.#o.log.info({ resource: this.resource }, 'watch resourceVersion too old (410 Gone); relisting');
        void this.#listAndWatch('410');
      } else {
        this.#o.log.warn({ resource: this.resource, status }, 'watch error event; restarting');
        this.#restartWatchLater(gen, 'error');
      }
      return;
    }
    const meta = (raw as { metadata?: { resourceVersion?: string } } | undefined)?.metadata;
    if (type === 'BOOKMARK') {
      if (meta?.resourceVersion) this.#rv = meta.resourceVersion;
      return;
    }
    if (meta?.resourceVersion) this.#rv = meta.resourceVersion;
    if (this.#o.admitsNamespace) {
      const key = keyOfRaw(raw);
      const ns = namespaceOfRaw(raw);
      // The watch is at least as new as a namespace list still running: that list must not overwrite this key.
      if (key && ns !== undefined) this.#loads.get(ns)?.touched.add(key);
      if (ns === undefined || !this.#o.admitsNamespace(ns)) {
        // Out of scope: not projected, not kept (one still cached is gone from the operator's view).
        const prev = key ? this.#store.get(key) : undefined;
        if (key && prev) {
          this.#store.delete(key);
          this.#emit('delete', prev, undefined);
        }
        return;
      }
    }
    const obj = this.#o.project(raw);
    if (!obj) {
      // Projection rejected it: e.g. a pod that left the Running phase is treated as gone.
      const key = keyOfRaw(raw);
      const prev = key ? this.#store.get(key) : undefined;
      if (key && prev) {
        this.#store.delete(key);
        this.#emit('delete', prev, undefined);
      }
      return;
    }
    const prev = this.#store.get(obj.key);
    if (type === 'DELETED') {
      if (prev) {
        this.#store.delete(obj.key);
        this.#emit('delete', prev, undefined);
      }
      return;
    }
    this.#store.set(obj.key, obj);
    if (!prev) this.#emit('add', undefined, obj);
    else if (changed(prev, obj)) this.#emit('update', prev, obj);
  }

  #onWatchEnd(gen: number, err: unknown): void {
    const e = err as { name?: string } | null | undefined;
    if (!e) {
      this.#o.metrics?.watchRestart(this.resource, 'closed');
      this.#failures = 0;
      void this.#startWatch(gen);
      return;
    }
    if (e.name === 'TimeoutError') {
      // The client's 30 s inactivity timeout on a quiet resource: a normal reconnect from the last resourceVersion.
      this.#o.metrics?.watchRestart(this.resource, 'timeout');
      this.#failures = 0;
      void this.#startWatch(gen);
      return;
    }
    if (isKubeError(err, 'gone')) {
      this.#o.metrics?.watchRestart(this.resource, 'gone');
      void this.#listAndWatch('410');
      return;
    }
    if (e.name === 'AbortError') return; // we aborted it ourselves
    this.#o.log.warn({ resource: this.resource, err: errorMessage(err) }, 'watch failed; restarting with backoff');
    this.#restartWatchLater(gen, 'error');
  }

  #restartWatchLater(gen: number, reason: 'error'): void {
    this.#o.metrics?.watchRestart(this.resource, reason);
    this.#watch?.abort();
    this.#watch = undefined;
    const delay = this.#nextBackoff();
    // After repeated failures relist rather than resume: the apiserver may have restarted and compacted.
    const relist = this.#failures >= 3;
    this.#later(() => {
      if (gen !== this.#watchGen) return;
      if (relist) void this.#listAndWatch('repeated watch failures');
      else void this.#startWatch(gen);
    }, delay);
  }

  #nextBackoff(): number {
    const d = backoffDelay(this.#o.backoff ?? DEFAULT_BACKOFF, this.#failures);
    this.#failures++;
    return d;
  }

  #checkWatchdog(limitMs: number): void {
    if (this.#stopped || !this.#synced) return;
    if (Date.now() - this.#lastActivity > limitMs) {
      this.#o.log.warn({ resource: this.resource, silentMs: Date.now() - this.#lastActivity }, 'watch silent too long; relisting');
      this.#o.metrics?.watchRestart(this.resource, 'watchdog');
      this.#lastActivity = Date.now();
      void this.#listAndWatch('watchdog');
    }
  }

  #emit(kind: 'add' | 'update' | 'delete', oldObj: T | undefined, newObj: T | undefined): void {
    for (const h of this.#handlers) {
      try {
        if (kind === 'add') h.add?.(newObj as T);
        else if (kind === 'update') h.update?.(oldObj as T, newObj as T);
        else h.delete?.(oldObj as T);
      } catch (err) {
        // Handlers only enqueue; a throw is a bug, but it must not stop the watch.
        this.#o.log.error({ resource: this.resource, err: errorMessage(err) }, 'event handler threw');
      }
    }
  }
}

/** "namespace/name" or "name" from raw metadata. */
function keyOfRaw(raw: unknown): string | undefined {
  const m = (raw as { metadata?: { name?: string; namespace?: string } } | undefined)?.metadata;
  if (!m?.name) return undefined;
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

function namespaceOfRaw(raw: unknown): string | undefined {
  const ns = (raw as { metadata?: { namespace?: unknown } } | undefined)?.metadata?.namespace;
  return typeof ns === 'string' && ns !== '' ? ns : undefined;
}

/** The namespace of a namespaced object's key ("namespace/name"). */
function namespaceOfKey(key: string): string {
  return key.slice(0, Math.max(0, key.indexOf('/')));
}

/** One namespace's collection: /api/v1/pods → /api/v1/namespaces/<ns>/pods (any group's namespaced resource). */
function namespacedPath(path: string, namespace: string): string {
  const i = path.lastIndexOf('/');
  return `${path.slice(0, i)}/namespaces/${encodeURIComponent(namespace)}${path.slice(i)}`;
}
