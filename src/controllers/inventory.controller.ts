import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { type ClusterStores, type NamespaceInfo, type PodInfo } from '../kube/cluster.port.ts';
import { jsonInSlices } from '../runtime/cooperative.ts';
import { errorMessage } from '../runtime/errors.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { assembleBatch, batchNamespaces, collectInventory, cutBatch, type InventorySnapshot, measureInventory, planBatches } from './inventory.ts';
import type { InventoryBatchOutcome, InventoryStatus } from '../model/inventory-status.ts';
import { MissingAccounts } from '../model/missing-accounts.ts';
import type { Scope } from '../model/scope.ts';

/** The lowest byte ceiling a 413 can teach: below it, a refused batch is still cut, but the next report starts here. */
export const INVENTORY_CEILING_FLOOR_BYTES = 16 * 1024;

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
  log: Logger;
  metrics: OperatorMetrics;
  /** Shared record of accounts Anchore says do not exist; one is made here when not given. */
  missingAccounts?: MissingAccounts;
}

/**
 * Sends each account's runtime inventory to Anchore shortly after the cluster changes (debounced), and at least every
 * `intervalMs` (heartbeat) — event-driven where k8s-inventory polls. Each send is the full current state of that
 * account's namespaces, so a lost send is repaired by the next one.
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
  readonly #undeliverableNs = new Map<string, Set<string>>();
  /** Namespaces last sent without labels, per account (each logged once). */
  readonly #stripped = new Map<string, Set<string>>();
  /**
   * Accounts Anchore accepted a batch in (not the default account standing in for one that does not exist): only
   * there does Anchore hold this cluster's inventory, which an empty report must clear once no namespace routes there.
   */
  readonly #delivered = new Set<string>();

  constructor(o: InventoryOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'inventory' });
    this.#missing = o.missingAccounts ?? new MissingAccounts(o.log);
    this.queue = new WorkQueue<string>({
      name: 'inventory',
      concurrency: 2,
      handle: (account) => this.reconcile(account),
      backoff: { baseMs: 2000, maxMs: 60_000, jitter: 0.3 },
      onEvent: o.metrics.queueObserver('inventory', this.#log, 'inventory report'),
    });
    // Stores deliver an update only when the projection changed (changed() in kube/cluster.port.ts).
    const podChanged = (p: PodInfo): void => this.#changed(this.#accountOfNamespace(p.namespace));
    o.stores.pods.on({ add: podChanged, update: (_a, p) => podChanged(p), delete: podChanged });
    const nsChanged = (...list: NamespaceInfo[]): void => {
      for (const ns of list) this.#changed(o.scope.accountFor(ns, ns.name));
    };
    o.stores.namespaces.on({ add: (n) => nsChanged(n), update: (a, b) => nsChanged(a, b), delete: (n) => nsChanged(n) });
    o.stores.nodes.on({ update: () => this.#changedAll(), delete: () => this.#changedAll() });
  }

  start(): void {
    for (const a of this.#o.scope.staticAccounts) this.#known.add(a);
    for (const ns of this.#o.stores.namespaces.list()) {
      if (this.#o.scope.includesNamespace(ns)) this.#known.add(this.#o.scope.accountFor(ns, ns.name));
    }
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

  #changed(account: string | undefined): void {
    if (!account) return;
    this.#known.add(account);
    this.queue.addAfter(account, this.#o.debounceMs);
  }

  #changedAll(): void {
    for (const a of this.#known) this.queue.addAfter(a, this.#o.debounceMs);
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
    const last = this.#completed.get(account);
    const sinceLast = last === undefined ? Infinity : Date.now() - last;
    if (sinceLast < this.#o.minIntervalMs) return { requeueAfterMs: this.#o.minIntervalMs - sinceLast };
    const started = performance.now();
    const now = new Date();
    const split = this.#o.splitNamespaces === true;
    const snapshot = await collectInventory(account, this.#o.stores, this.#o.scope, this.#o.clusterName, now);
    if (snapshot.shares.length === 0 && !this.#o.scope.staticAccounts.includes(account)) return this.#retire(account, snapshot);
    const limit = this.#limitFor(account);
    if (Number.isFinite(limit)) await measureInventory(snapshot);
    const work = planBatches(snapshot, limit, split);
    // The outcome is built aside and published when the report is complete: a health report sent meanwhile tells
    // the previous report, never half of this one (a batch in flight is neither a success nor an error yet).
    const sent: InventoryBatchOutcome[] = [];
    const undeliverable = new Set<string>();
    const stripped = new Set<string>();
    let lastSuccessfulIndex = -1;
    let sentToAccount: string | undefined;
    let failure: Error | undefined;
    let counts = { ns: 0, pods: 0, containers: 0 };
    const refused: number[] = [];
    let lastTooLarge: unknown;
    for (let batch = work.shift(); batch !== undefined; batch = work.shift()) {
      const body = assembleBatch(snapshot, batch);
      const outcome: InventoryBatchOutcome = { index: sent.length + 1, sentAt: new Date() };
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
          const bytes = (await jsonInSlices(body as unknown as Record<string, unknown>)).length;
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'too_large' });
          refused.push(bytes);
          lastTooLarge = err;
          this.#tooLarge(account, bytes);
          await measureInventory(snapshot);
          const smaller = cutBatch(snapshot, batch, bytes, split);
          if (smaller !== undefined) {
            work.unshift(...smaller);
            continue;
          }
          const ns = batch.shares[0]?.namespace.name ?? '';
          undeliverable.add(ns);
          outcome.error = this.#undeliverable(account, ns, batch.partial || split, bytes, err);
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'undeliverable' });
          sent.push(outcome);
          continue;
        }
        outcome.error = errorMessage(err);
        this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'error' });
        failure ??= err instanceof Error ? err : new Error(String(err));
        sent.push(outcome);
        if (err instanceof AnchoreError && (err.kind === 'unavailable' || err.kind === 'auth')) break;
        continue;
      }
      sent.push(outcome);
    }
    this.#saidTooLarge(account, limit, refused, lastTooLarge);
    st.lastAttempt = now;
    st.batchCount = sent.length + work.length;
    st.batches = sent;
    st.lastSuccessfulIndex = lastSuccessfulIndex;
    if (sentToAccount === undefined) delete st.sentToAccount;
    else st.sentToAccount = sentToAccount;
    if (failure !== undefined) {
      this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
      throw failure;
    }
    this.#completed.set(account, now.getTime());
    this.#settle(account, snapshot, undeliverable, stripped);
    const fields = {
      account,
      reconcileId: nextReconcileId(),
      batches: sent.length,
      ...counts,
      timestamp: formatTimestamp(now),
      ...(st.sentToAccount ? { sentToAccount: st.sentToAccount } : {}),
      ...(Number.isFinite(limit) ? { batchLimitBytes: limit } : {}),
    };
    if (undeliverable.size > 0) {
      // Not a success (part of the account's inventory does not reach Anchore: its staleness shows), but not
      // retried with backoff either: those bytes would be refused again. The next change or heartbeat tries again.
      this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
      this.#log.debug({ ...fields, undeliverable: [...undeliverable] }, 'inventory sent, except namespaces too large for Anchore');
      return { requeueAfterMs: this.#o.intervalMs };
    }
    st.lastSuccess = now;
    this.#o.metrics.inventoryReports.inc({ account, result: 'success' });
    this.#o.metrics.inventoryLastSuccess.set({ account }, now.getTime() / 1000);
    this.#o.metrics.inventoryDuration.observe((performance.now() - started) / 1000);
    this.#log.debug(fields, 'inventory sent');
    return { requeueAfterMs: this.#o.intervalMs };
  }

  /**
   * No namespace routes to `account` any more (deleted, or moved elsewhere: a corrected account label) and it is no
   * configured account. Where Anchore holds this cluster's inventory in that account (a batch landed there), one
   * empty report clears it; where every report went to the default account instead (the account does not exist),
   * there is nothing to clear and nothing is sent. Then the account is forgotten: no heartbeat, no health-report entry,
   * no learned limit, no last-success series left to age into AnchoreInventoryStale. It comes back with the next
   * namespace that routes to it.
   */
  async #retire(account: string, snapshot: InventorySnapshot): Promise<HandleResult> {
    let cleared = false;
    if (this.#delivered.has(account)) {
      const [empty] = planBatches(snapshot, Infinity, false);
      try {
        await this.#o.anchore.postKubernetesInventory(account, assembleBatch(snapshot, empty ?? { shares: [], minimal: false, partial: false }));
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
    for (const m of [this.#status, this.#completed, this.#ceilings, this.#undeliverableNs, this.#stripped]) m.delete(account);
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
    const known = this.#undeliverableNs.get(account) ?? new Set<string>();
    this.#undeliverableNs.set(account, known);
    if (!known.has(namespace)) {
      known.add(namespace);
      this.#log.warn({ account, namespace, bytes, err: errorMessage(err) }, `runtime inventory of ${note}; raise the request body limit of Anchore or of the proxy in front of it`);
    }
    return note;
  }

  /** After a complete report: once-logged states that no longer hold are forgotten (and said, for undeliverable). */
  #settle(account: string, snapshot: InventorySnapshot, undeliverable: Set<string>, stripped: Set<string>): void {
    const known = this.#undeliverableNs.get(account);
    for (const ns of known ?? []) {
      if (undeliverable.has(ns)) continue;
      known?.delete(ns);
      if (snapshot.shares.some((s) => s.namespace.name === ns)) this.#log.info({ account, namespace: ns }, `runtime inventory of namespace "${ns}" is delivered again`);
    }
    const before = this.#stripped.get(account) ?? new Set<string>();
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
