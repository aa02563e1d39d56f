import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { type ClusterStores, type NamespaceInfo, type PodInfo } from '../kube/cluster.port.ts';
import { jsonInSlices } from '../runtime/cooperative.ts';
import { errorMessage } from '../runtime/errors.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { assembleBatch, batchBytes, batchNamespaces, collectInventory, changedShares, cutBatch, type InventorySnapshot, measureInventory, planBatches } from './inventory.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { ByteAllowance } from '../runtime/limits.ts';
import type { InventoryBatchOutcome, InventoryStatus } from '../model/inventory-status.ts';
import { MissingAccounts } from '../model/missing-accounts.ts';
import type { Scope } from '../model/scope.ts';

/** The lowest byte ceiling a 413 can teach: below it, a refused batch is still cut, but the next report starts here. */
export const INVENTORY_CEILING_FLOOR_BYTES = 16 * 1024;

/** How soon an account whose reports went to the default account (it did not exist) gets a full report again. */
export const MISSING_ACCOUNT_RETRY_MS = 60_000;

/** Anchore says the account does not exist (404), or refuses to let the operator act as it (403). */
function accountUnusable(err: unknown): err is AnchoreError {
  return err instanceof AnchoreError && (err.kind === 'account-not-found' || (err.kind === 'auth' && err.status === 403));
}

/** 413 Payload Too Large, from Anchore or a proxy in front of it (the client classifies it `rejected`). */
function tooLarge(err: unknown): err is AnchoreError {
  return err instanceof AnchoreError && err.status === 413;
}

interface InventoryOptions {
  stores: ClusterStores;
  scope: Scope;
  anchore: AnchoreApi;
  clusterName: string;
  intervalMs: number;
  debounceMs: number;
  minIntervalMs: number;
  batchBytes: number;
  /**
   * Send a namespace too large for Anchore even on its own in parts of its pods. Only right where Anchore does not
   * overwrite per namespace (`inventory_ingest_overwrite` off): there each part would erase the others. Default off.
   */
  splitNamespaces?: boolean;
  /**
   * Byte budget of the reports sent between full ones (changed namespaces only): together with the full reports, no
   * more bytes than one full report every `budgetSeconds` (what a poller sending everything that often costs Anchore),
   * and never less than `budgetFloorBytesPerSecond`. 0: no budget.
   */
  budgetSeconds?: number;
  budgetFloorBytesPerSecond?: number;
  clock?: Clock;
  log: Logger;
  metrics: OperatorMetrics;
  /** Shared record of accounts Anchore says do not exist; one is made here when not given. */
  missingAccounts?: MissingAccounts;
}

/** What Anchore last accepted of one namespace from this operator. */
interface SentNamespace {
  uid: string;
  /** Of the share sent ({@link fingerprintShare}); absent after a full report, which does not compute them. */
  fingerprint?: string;
}

/**
 * Sends each account's runtime inventory to Anchore: shortly after the cluster changes (debounced) only the namespaces
 * that changed, each complete (Anchore replaces per namespace present in a report and leaves the others as they are),
 * and the full current state of the account at start and every `intervalMs` (the heartbeat, which repairs whatever a
 * lost or overwritten report left behind). A namespace that stops routing to the account (deleted, moved, out of
 * scope) is sent once with no pods, which clears it where Anchore overwrites. Changed-namespace reports are held to a
 * byte budget ({@link InventoryOptions.budgetSeconds}); full reports never wait for it.
 */
export class InventoryController {
  readonly queue: WorkQueue<string>;
  readonly #o: InventoryOptions;
  readonly #log: Logger;
  readonly #status = new Map<string, InventoryStatus>();
  /**
   * Accounts reported on: configured ones, and those a namespace routes to. One that loses its last namespace gets one
   * empty report if Anchore holds something of this cluster there, and is then forgotten ({@link #retire}).
   */
  readonly #known = new Set<string>();
  readonly #missing: MissingAccounts;
  /** When each account's last report ended without a failed batch (ms): the minimum interval counts from there. */
  readonly #completed = new Map<string, number>();
  /** Byte ceilings learned from 413 answers, per account. */
  readonly #ceilings = new Map<string, number>();
  /** Namespaces too large for Anchore even alone and without labels, per account (each logged once). */
  readonly #undeliverableNs = new Map<string, Map<string, string>>();
  /** Namespaces last sent without labels, per account (each logged once). */
  readonly #stripped = new Map<string, Set<string>>();
  /**
   * Accounts Anchore accepted a batch in (not the default account standing in for one that does not exist): only
   * there does Anchore hold this cluster's inventory, which an empty report must clear once no namespace routes there.
   */
  readonly #delivered = new Set<string>();
  /** Per account: the namespaces Anchore holds from this operator, after an accepted report. */
  readonly #sent = new Map<string, Map<string, SentNamespace>>();
  /** Per account: namespaces changed since they were last sent (what the next changed-namespace report carries). */
  readonly #dirty = new Map<string, Set<string>>();
  /** Per account: when the next full report is due (ms); absent or past: the next report is full. */
  readonly #fullDue = new Map<string, number>();
  /** Per account: the bytes of its last full report (sizes its budget). */
  readonly #fullBytes = new Map<string, number>();
  readonly #budgets = new Map<string, ByteAllowance>();
  /** Pod keys by namespace, kept from the pod store's events: a changed-namespace report reads only its pods. */
  readonly #podsByNs = new Map<string, Set<string>>();
  readonly #clock: Clock;

  constructor(o: InventoryOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.log.child({ controller: 'inventory' });
    this.#missing = o.missingAccounts ?? new MissingAccounts(o.log);
    this.queue = new WorkQueue<string>({
      name: 'inventory',
      clock: this.#clock,
      concurrency: 2,
      handle: (account) => this.reconcile(account),
      backoff: { baseMs: 2000, maxMs: 60_000, jitter: 0.3 },
      onEvent: o.metrics.queueObserver('inventory', this.#log, 'inventory report'),
    });
    // Stores deliver an update only when the projection changed (changed() in kube/cluster.port.ts).
    const podChanged = (p: PodInfo): void => this.#changed(this.#accountOfNamespace(p.namespace), p.namespace);
    const index = (p: PodInfo): void => {
      const keys = this.#podsByNs.get(p.namespace) ?? new Set<string>();
      this.#podsByNs.set(p.namespace, keys);
      keys.add(p.key);
    };
    const unindex = (p: PodInfo): void => {
      const keys = this.#podsByNs.get(p.namespace);
      keys?.delete(p.key);
      if (keys?.size === 0) this.#podsByNs.delete(p.namespace);
    };
    o.stores.pods.on({
      add: (p) => (index(p), podChanged(p)),
      update: (_a, p) => podChanged(p),
      delete: (p) => (unindex(p), podChanged(p)),
    });
    for (const p of o.stores.pods.list()) index(p);
    const nsChanged = (...list: NamespaceInfo[]): void => {
      for (const ns of list) {
        this.#changed(o.scope.includesNamespace(ns) ? o.scope.accountFor(ns, ns.name) : undefined, ns.name);
        // The account it routed to before (a corrected label, a narrowed scope): cleared there.
        for (const [account, sent] of this.#sent) if (sent.has(ns.name)) this.#changed(account, ns.name);
      }
    };
    o.stores.namespaces.on({ add: (n) => nsChanged(n), update: (a, b) => nsChanged(a, b), delete: (n) => nsChanged(n) });
    o.stores.nodes.on({ update: () => this.#changedAll(), delete: () => this.#changedAll() });
  }

  start(): void {
    for (const a of this.#o.scope.staticAccounts) this.#known.add(a);
    for (const ns of this.#o.stores.namespaces.list()) {
      if (this.#o.scope.includesNamespace(ns)) this.#known.add(this.#o.scope.accountFor(ns, ns.name));
    }
    // Full reports first: what Anchore holds from before this start is not known.
    this.#fullDue.clear();
    for (const a of this.#known) this.queue.add(a);
    this.queue.start();
  }

  status(): InventoryStatus[] {
    return [...this.#status.values()];
  }

  #accountOfNamespace(name: string): string | undefined {
    const ns = this.#o.stores.namespaces.get(name);
    return ns ? this.#o.scope.accountFor(ns, name) : undefined;
  }

  #changed(account: string | undefined, namespace: string): void {
    if (!account) return;
    this.#known.add(account);
    const dirty = this.#dirty.get(account) ?? new Set<string>();
    this.#dirty.set(account, dirty);
    dirty.add(namespace);
    this.queue.addAfter(account, this.#o.debounceMs);
  }

  /** A node changed (its labels or versions are in every report that names it): the next report is a full one. */
  #changedAll(): void {
    for (const a of this.#known) {
      this.#fullDue.delete(a);
      this.queue.addAfter(a, this.#o.debounceMs);
    }
  }

  *#podsOf(namespace: string): Generator<PodInfo> {
    for (const key of this.#podsByNs.get(namespace) ?? []) {
      const p = this.#o.stores.pods.get(key);
      if (p !== undefined) yield p;
    }
  }

  #routesTo(account: string): boolean {
    for (const ns of this.#o.stores.namespaces.list()) if (this.#o.scope.includesNamespace(ns) && this.#o.scope.accountFor(ns, ns.name) === account) return true;
    return false;
  }

  /**
   * The byte allowance of an account's changed-namespace reports: one full report per `budgetSeconds`, less what its
   * full reports (one per `intervalMs`) already cost, never below the floor. Undefined without a budget.
   */
  #budgetFor(account: string): ByteAllowance | undefined {
    const seconds = this.#o.budgetSeconds ?? 0;
    if (seconds <= 0) return undefined;
    const full = this.#fullBytes.get(account) ?? 0;
    const rate = Math.max(this.#o.budgetFloorBytesPerSecond ?? 32 * 1024, full / seconds - full / (this.#o.intervalMs / 1000));
    let b = this.#budgets.get(account);
    if (b === undefined) this.#budgets.set(account, (b = new ByteAllowance(rate, 10, this.#clock)));
    else if (b.ratePerSecond !== rate) b.setRate(rate);
    return b;
  }

  /**
   * Sends one account's inventory in batches of at most the account's byte limit (the smaller of `batchBytes` and
   * what a 413 taught, see {@link #tooLarge}). Like k8s-inventory, a batch that fails does not stop the others (each
   * batch holds whole namespaces, so the rest still land), except when Anchore is unreachable or refuses the
   * credentials: then the remaining batches would fail the same way and are left for the retry. Any failed batch
   * makes the whole report fail, so the queue retries it with backoff (each send is the full state).
   *
   * A batch refused as too large (413) is cut and the parts sent at once ({@link cutBatch}). A namespace refused even
   * alone in its smallest form (and, with `splitNamespaces`, in parts down to one pod) is undeliverable: listed with
   * its error, counted and logged once; the report counts as failed (its last success does not move) but is not
   * thrown, so it is not retried with backoff: the same bytes would be refused again. The next change or heartbeat
   * tries it again.
   */
  async reconcile(account: string): Promise<HandleResult> {
    const st = this.#status.get(account) ?? { account, batchCount: 0, batches: [], lastSuccessfulIndex: -1 };
    this.#status.set(account, st);
    const nowMs = this.#clock.now();
    const last = this.#completed.get(account);
    const sinceLast = last === undefined ? Infinity : nowMs - last;
    if (sinceLast < this.#o.minIntervalMs) return { requeueAfterMs: this.#o.minIntervalMs - sinceLast };
    const fullDue = this.#fullDue.get(account) ?? -Infinity;
    const full = fullDue <= nowMs;
    const untilFull = { requeueAfterMs: Math.max(1, fullDue - nowMs) };
    const dirty = this.#dirty.get(account) ?? new Set<string>();
    if (!full) {
      if (dirty.size === 0) return untilFull;
      const wait = this.#budgetFor(account)?.waitMs() ?? 0;
      if (wait > 0) return { requeueAfterMs: Math.min(wait, untilFull.requeueAfterMs) };
    }
    if (!this.#routesTo(account) && !this.#o.scope.staticAccounts.includes(account)) return this.#retire(account);
    // Taken now: what changes from here on is sent next time. Given back if this report fails.
    this.#dirty.set(account, new Set());
    const giveBack = (): void => {
      const later = this.#dirty.get(account) ?? new Set<string>();
      for (const ns of dirty) later.add(ns);
      this.#dirty.set(account, later);
    };
    try {
      return await this.#report(account, st, full, dirty);
    } catch (err) {
      giveBack();
      throw err;
    }
  }

  /**
   * Sends one report: the account's full inventory, or only the namespaces in `dirty` (those whose share changed since
   * Anchore accepted it). Sent in batches of at most the account's byte limit (the smaller of `batchBytes` and what a
   * 413 taught, see {@link #tooLarge}). Like k8s-inventory, a batch that fails does not stop the others (each batch
   * holds whole namespaces, so the rest still land), except when Anchore is unreachable or refuses the credentials:
   * then the remaining batches would fail the same way and are left for the retry. Any failed batch makes the whole
   * report fail, so the queue retries it with backoff (a failed full report is retried as a full one, a failed
   * changed-namespace report with its namespaces still marked changed).
   *
   * A batch refused as too large (413) is cut and the parts sent at once ({@link cutBatch}). A namespace refused even
   * alone in its smallest form (and, with `splitNamespaces`, in parts down to one pod) is undeliverable: listed with
   * its error, counted and logged once; the report counts as failed (its last success does not move) but is not
   * thrown, so it is not retried with backoff: the same bytes would be refused again. The next full report tries it
   * again.
   */
  async #report(account: string, st: InventoryStatus, full: boolean, dirty: ReadonlySet<string>): Promise<HandleResult> {
    const started = performance.now();
    const now = new Date(this.#clock.now());
    const split = this.#o.splitNamespaces === true;
    const sent = this.#sent.get(account) ?? new Map<string, SentNamespace>();
    this.#sent.set(account, sent);
    const snapshot = await collectInventory(account, this.#o.stores, this.#o.scope, this.#o.clusterName, now, {
      ...(full ? {} : { only: dirty }),
      podsOf: (ns) => this.#podsOf(ns),
      sent,
    });
    let fingerprints = new Map<string, string>();
    if (!full) {
      ({ shares: snapshot.shares, fingerprints } = await changedShares(snapshot.shares, sent));
      if (snapshot.shares.length === 0) return { requeueAfterMs: Math.max(1, (this.#fullDue.get(account) ?? 0) - this.#clock.now()) };
    }
    const limit = this.#limitFor(account);
    await measureInventory(snapshot);
    const work = planBatches(snapshot, limit, split);
    // The outcome is built aside and published when the report is complete: a health report sent meanwhile tells
    // the previous report, never half of this one (a batch in flight is neither a success nor an error yet).
    const outcomes: InventoryBatchOutcome[] = [];
    const undeliverable = new Set<string>();
    const stripped = new Set<string>();
    const failedNs = new Set<string>();
    let lastSuccessfulIndex = -1;
    let sentToAccount: string | undefined;
    let failure: Error | undefined;
    let counts = { ns: 0, pods: 0, containers: 0 };
    let bytes = 0;
    const refused: number[] = [];
    let lastTooLarge: unknown;
    const kind = full ? 'full' : 'changed';
    for (let batch = work.shift(); batch !== undefined; batch = work.shift()) {
      const body = assembleBatch(snapshot, batch);
      const size = batchBytes(snapshot, batch);
      bytes += size;
      this.#o.metrics.inventoryBytes.inc({ account, kind }, size);
      if (!full) this.#budgetFor(account)?.spend(size);
      const outcome: InventoryBatchOutcome = { index: outcomes.length + 1, sentAt: new Date(this.#clock.now()) };
      try {
        const fallback = await this.#send(account, body);
        if (fallback !== undefined) {
          sentToAccount = fallback.account;
          outcome.error = fallback.note;
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'account_missing' });
        }
        lastSuccessfulIndex = outcome.index;
        if (batch.minimal && !batch.partial) for (const ns of batchNamespaces(batch)) stripped.add(ns);
        counts = { ns: counts.ns + (batch.partial ? 0 : body.namespaces.length), pods: counts.pods + body.pods.length, containers: counts.containers + body.containers.length };
      } catch (err) {
        if (tooLarge(err) && batch.shares.length > 0) {
          const refusedBytes = (await jsonInSlices(body as unknown as Record<string, unknown>)).length;
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'too_large' });
          refused.push(refusedBytes);
          lastTooLarge = err;
          this.#tooLarge(account, refusedBytes);
          const smaller = cutBatch(snapshot, batch, refusedBytes, split);
          if (smaller !== undefined) {
            work.unshift(...smaller);
            continue;
          }
          const ns = batch.shares[0]?.namespace.name ?? '';
          undeliverable.add(ns);
          outcome.error = this.#undeliverable(account, ns, batch.partial || split, refusedBytes, err);
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'undeliverable' });
          outcomes.push(outcome);
          continue;
        }
        for (const ns of batchNamespaces(batch)) failedNs.add(ns);
        outcome.error = errorMessage(err);
        this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'error' });
        failure ??= err instanceof Error ? err : new Error(String(err));
        outcomes.push(outcome);
        if (err instanceof AnchoreError && (err.kind === 'unavailable' || err.kind === 'auth')) {
          for (const b of work) for (const ns of batchNamespaces(b)) failedNs.add(ns);
          break;
        }
        continue;
      }
      outcomes.push(outcome);
    }
    this.#saidTooLarge(account, limit, refused, lastTooLarge);
    // What Anchore now holds of each namespace that arrived whole.
    for (const share of snapshot.shares) {
      const name = share.namespace.name;
      if (failedNs.has(name) || undeliverable.has(name)) continue;
      if (share.cleared) sent.delete(name);
      else sent.set(name, { uid: share.namespace.uid, ...(fingerprints.has(name) ? { fingerprint: fingerprints.get(name)! } : {}) });
    }
    st.lastAttempt = now;
    st.batchCount = outcomes.length + work.length;
    st.batches = outcomes;
    st.lastSuccessfulIndex = lastSuccessfulIndex;
    if (sentToAccount === undefined) delete st.sentToAccount;
    else st.sentToAccount = sentToAccount;
    if (failure !== undefined) {
      this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
      throw failure;
    }
    this.#completed.set(account, now.getTime());
    if (full) {
      this.#fullBytes.set(account, bytes);
      // While the account does not exist (its reports go to the default account), the real one is tried again
      // within a minute, whatever the heartbeat: it may have been created.
      const every = sentToAccount === undefined ? this.#o.intervalMs : Math.min(this.#o.intervalMs, MISSING_ACCOUNT_RETRY_MS);
      this.#fullDue.set(account, this.#clock.now() + every);
    }
    const next = { requeueAfterMs: full ? (this.#fullDue.get(account) ?? 0) - this.#clock.now() : Math.max(1, (this.#fullDue.get(account) ?? 0) - this.#clock.now()) };
    this.#settle(account, snapshot, undeliverable, stripped, full);
    // A changed-namespace report did not try the namespaces still undeliverable since an earlier report: they still
    // do not reach Anchore, so the report keeps saying so (health report, result, last success), as the last full
    // report did.
    if (!full) {
      for (const [ns, note] of this.#undeliverableNs.get(account) ?? []) {
        if (undeliverable.has(ns)) continue;
        undeliverable.add(ns);
        outcomes.push({ index: outcomes.length + 1, sentAt: now, error: note });
      }
      st.batchCount = outcomes.length + work.length;
    }
    const fields = {
      account,
      reconcileId: nextReconcileId(),
      report: kind,
      batches: outcomes.length,
      ...counts,
      bytes,
      timestamp: formatTimestamp(now),
      ...(st.sentToAccount ? { sentToAccount: st.sentToAccount } : {}),
      ...(Number.isFinite(limit) ? { batchLimitBytes: limit } : {}),
    };
    if (undeliverable.size > 0) {
      // Not a success (part of the account's inventory does not reach Anchore: its staleness shows), but not
      // retried with backoff either: those bytes would be refused again. The next full report tries again.
      this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
      this.#log.debug({ ...fields, undeliverable: [...undeliverable] }, 'inventory sent, except namespaces too large for Anchore');
      return next;
    }
    st.lastSuccess = now;
    this.#o.metrics.inventoryReports.inc({ account, result: 'success' });
    this.#o.metrics.inventoryLastSuccess.set({ account }, now.getTime() / 1000);
    this.#o.metrics.inventoryDuration.observe((performance.now() - started) / 1000);
    this.#log.debug(fields, full ? 'inventory sent' : 'inventory of changed namespaces sent');
    return next;
  }

  /**
   * No namespace routes to `account` any more (deleted, or moved elsewhere: a corrected account label) and it is no
   * configured account. Where Anchore holds this cluster's inventory in that account (a batch landed there), one
   * report that lists the namespaces it holds with no pods clears them (where Anchore overwrites per namespace; where
   * it only adds, they age out with its inventory TTL); where every report went to the default account instead (the
   * account does not exist), there is nothing to clear and nothing is sent. Then the account is forgotten: no heartbeat, no health-report entry,
   * no learned limit, no last-success series left to age into AnchoreInventoryStale. It comes back with the next
   * namespace that routes to it.
   */
  async #retire(account: string): Promise<HandleResult> {
    let cleared = false;
    if (this.#delivered.has(account) && (this.#sent.get(account)?.size ?? 0) > 0) {
      const snapshot = await collectInventory(account, this.#o.stores, this.#o.scope, this.#o.clusterName, new Date(this.#clock.now()), {
        only: new Set(this.#sent.get(account)?.keys() ?? []),
        podsOf: () => [],
        sent: this.#sent.get(account) ?? new Map(),
      });
      try {
        await this.#o.anchore.postKubernetesInventory(account, assembleBatch(snapshot, { shares: snapshot.shares, minimal: false, partial: false }));
        cleared = true;
        this.#o.metrics.inventoryReports.inc({ account, result: 'success' });
      } catch (err) {
        // The account is gone from Anchore meanwhile: nothing left there to clear. Anything else is retried.
        if (!accountUnusable(err)) {
          this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
          throw err;
        }
      }
    }
    for (const m of [this.#status, this.#completed, this.#ceilings, this.#undeliverableNs, this.#stripped, this.#sent, this.#dirty, this.#fullDue, this.#fullBytes, this.#budgets]) m.delete(account);
    this.#known.delete(account);
    this.#delivered.delete(account);
    this.#o.metrics.inventoryLastSuccess.remove({ account });
    this.#log.info(
      { account, clearedInAnchore: cleared },
      cleared
        ? `no namespace routes to account "${account}" any more: sent it one empty runtime inventory, and no more`
        : `no namespace routes to account "${account}" any more: it holds no inventory of this cluster (or is gone), nothing more is sent to it`,
    );
    return undefined;
  }

  /**
   * The byte limit of one account's batches: `batchBytes` (0 = none), lowered by what 413 answers taught. Kept
   * until the operator restarts; a restart learns it again from one refused report.
   */
  batchLimit(account: string): number {
    return this.#limitFor(account);
  }

  /** Accounts whose batches are limited by what a 413 taught, with that limit (the batch-limit gauge). */
  learnedLimits(): Array<[{ account: string }, number]> {
    return [...this.#ceilings.keys()].map((account) => [{ account }, this.#limitFor(account)]);
  }

  #limitFor(account: string): number {
    const configured = this.#o.batchBytes > 0 ? this.#o.batchBytes : Infinity;
    return Math.min(configured, this.#ceilings.get(account) ?? Infinity);
  }

  /**
   * Anchore, or a proxy in front of it, refused `bytes` as too large: from now on the account's batches are at most
   * half that (never below {@link INVENTORY_CEILING_FLOOR_BYTES}).
   */
  #tooLarge(account: string, bytes: number): void {
    const ceiling = Math.max(INVENTORY_CEILING_FLOOR_BYTES, Math.floor(bytes / 2));
    if (ceiling < this.#limitFor(account)) this.#ceilings.set(account, ceiling);
  }

  /** One warning per report that lowered the account's ceiling (not one per refused batch). */
  #saidTooLarge(account: string, before: number, refused: number[], err: unknown): void {
    const after = this.#limitFor(account);
    if (refused.length === 0 || after >= before) return;
    const sizes = refused.length === 1 ? `a runtime inventory batch of ${refused[0]} bytes` : `${refused.length} runtime inventory batches of ${Math.min(...refused)} to ${Math.max(...refused)} bytes`;
    this.#log.warn(
      { account, refusedBytes: refused, batchLimitBytes: after, err: errorMessage(err) },
      `Anchore (or a proxy in front of it) refused ${sizes} for account "${account}" as too large (413); ` +
        `its inventory now goes in batches of at most ${after} bytes, split on namespace boundaries, until the operator restarts ` +
        `(set INVENTORY_BATCH_BYTES below the limit to start there)`,
    );
  }

  /**
   * The error of an undeliverable namespace, logged once while it stays undeliverable. `split`: it was cut down to
   * one pod (splitNamespaces), and that pod alone is too large.
   */
  #undeliverable(account: string, namespace: string, split: boolean, bytes: number, err: unknown): string {
    const note = split
      ? `namespace "${namespace}" not completely sent: one pod alone makes a report of ${bytes} bytes, which Anchore (or a proxy in front of it) refuses as too large (413)`
      : `namespace "${namespace}" not sent: ${bytes} bytes on its own even without labels, which Anchore (or a proxy in front of it) refuses as too large (413); ` +
        `Anchore keeps what it last received for this namespace. Not split across reports: where Anchore overwrites per namespace, each part would erase the others`;
    const known = this.#undeliverableNs.get(account) ?? new Map<string, string>();
    this.#undeliverableNs.set(account, known);
    const said = known.has(namespace);
    known.set(namespace, note);
    if (!said) {
      this.#log.warn({ account, namespace, bytes, err: errorMessage(err) }, `runtime inventory of ${note}; raise the request body limit of Anchore or of the proxy in front of it`);
    }
    return note;
  }

  /**
   * After a complete report: once-logged states that no longer hold are forgotten (and said, for undeliverable). A
   * changed-namespace report settles only the namespaces it carried.
   */
  #settle(account: string, snapshot: InventorySnapshot, undeliverable: Set<string>, stripped: Set<string>, full: boolean): void {
    const carried = new Set(snapshot.shares.map((s) => s.namespace.name));
    const known = this.#undeliverableNs.get(account);
    for (const ns of [...(known?.keys() ?? [])]) {
      if (undeliverable.has(ns) || (!full && !carried.has(ns))) continue;
      known?.delete(ns);
      if (snapshot.shares.some((s) => s.namespace.name === ns)) this.#log.info({ account, namespace: ns }, `runtime inventory of namespace "${ns}" is delivered again`);
    }
    const before = this.#stripped.get(account) ?? new Set<string>();
    if (!full) for (const ns of before) if (!carried.has(ns)) stripped.add(ns);
    for (const ns of stripped) {
      if (!before.has(ns))
        this.#log.info(
          { account, namespace: ns, batchLimitBytes: this.#limitFor(account) },
          `runtime inventory of namespace "${ns}" is sent without labels: with them it is larger than the batch limit`,
        );
    }
    this.#stripped.set(account, stripped);
  }

  /**
   * Posts one batch to its account. When Anchore says the account does not exist (404 "User account not found"), or
   * refuses to let the operator act as it (403), the batch goes to the default account instead, as k8s-inventory
   * does, so those namespaces stay in Anchore's runtime inventory; the real account is tried first again next time.
   */
  async #send(account: string, batch: KubernetesInventory): Promise<{ account: string; note: string } | undefined> {
    const fallbackTo = this.#o.scope.defaultAccount;
    try {
      await this.#o.anchore.postKubernetesInventory(account, batch);
      this.#missing.present(account);
      this.#delivered.add(account);
      return undefined;
    } catch (err) {
      if (!accountUnusable(err) || account === fallbackTo) throw err;
      this.#missing.missing(account, err.message, fallbackTo);
      await this.#o.anchore.postKubernetesInventory(fallbackTo, batch);
      return { account: fallbackTo, note: `account "${account}" not usable (${err.message}); sent to account "${fallbackTo}" instead` };
    }
  }
}
