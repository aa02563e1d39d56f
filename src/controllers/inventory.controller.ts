import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { type ClusterStores, type NamespaceInfo, type PodInfo } from '../kube/cluster.port.ts';
import { errorMessage } from '../runtime/errors.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { buildInventory } from './inventory.ts';
import type { InventoryBatchOutcome, InventoryStatus } from '../model/inventory-status.ts';
import { MissingAccounts } from '../model/missing-accounts.ts';
import type { Scope } from '../model/scope.ts';

interface InventoryOptions {
  stores: ClusterStores;
  scope: Scope;
  anchore: AnchoreApi;
  clusterName: string;
  intervalMs: number;
  debounceMs: number;
  minIntervalMs: number;
  batchBytes: number;
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
  /** Accounts that were sent something, so an account that lost its last namespace still gets an (empty) report. */
  readonly #known = new Set<string>();
  readonly #missing: MissingAccounts;

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
   * Sends one account's inventory in `batchBytes`-sized batches. Like k8s-inventory, a batch that fails does not stop
   * the others (each batch holds whole namespaces, so the rest still land), except when Anchore is unreachable or
   * refuses the credentials: then the remaining batches would fail the same way and are left for the retry. Any failed
   * batch makes the whole report fail, so the queue retries it with backoff (each send is the full state).
   */
  async reconcile(account: string): Promise<HandleResult> {
    const st = this.#status.get(account) ?? { account, batchCount: 0, batches: [], lastSuccessfulIndex: -1 };
    this.#status.set(account, st);
    const sinceLast = st.lastSuccess ? Date.now() - st.lastSuccess.getTime() : Infinity;
    if (sinceLast < this.#o.minIntervalMs) return { requeueAfterMs: this.#o.minIntervalMs - sinceLast };
    const started = performance.now();
    const now = new Date();
    const batches = await buildInventory(account, this.#o.stores, this.#o.scope, this.#o.clusterName, now, this.#o.batchBytes);
    // The outcome is built aside and published when the report is complete: a health report sent meanwhile tells
    // the previous report, never half of this one (a batch in flight is neither a success nor an error yet).
    const sent: InventoryBatchOutcome[] = [];
    let lastSuccessfulIndex = -1;
    let sentToAccount: string | undefined;
    let failure: Error | undefined;
    for (const [i, batch] of batches.entries()) {
      const outcome: InventoryBatchOutcome = { index: i + 1, sentAt: new Date() };
      sent.push(outcome);
      try {
        const fallback = await this.#send(account, batch);
        if (fallback !== undefined) {
          sentToAccount = fallback.account;
          outcome.error = fallback.note;
          this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'account_missing' });
        }
        lastSuccessfulIndex = outcome.index;
      } catch (err) {
        outcome.error = errorMessage(err);
        this.#o.metrics.inventoryBatchFailures.inc({ account, reason: 'error' });
        failure ??= err instanceof Error ? err : new Error(String(err));
        if (err instanceof AnchoreError && (err.kind === 'unavailable' || err.kind === 'auth')) break;
      }
    }
    st.lastAttempt = now;
    st.batchCount = batches.length;
    st.batches = sent;
    st.lastSuccessfulIndex = lastSuccessfulIndex;
    if (sentToAccount === undefined) delete st.sentToAccount;
    else st.sentToAccount = sentToAccount;
    if (failure !== undefined) {
      this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
      throw failure;
    }
    st.lastSuccess = now;
    this.#o.metrics.inventoryReports.inc({ account, result: 'success' });
    this.#o.metrics.inventoryLastSuccess.set({ account }, now.getTime() / 1000);
    this.#o.metrics.inventoryDuration.observe((performance.now() - started) / 1000);
    const counts = batches.reduce((a, b) => ({ ns: a.ns + b.namespaces.length, pods: a.pods + b.pods.length, containers: a.containers + b.containers.length }), { ns: 0, pods: 0, containers: 0 });
    this.#log.debug(
      { account, reconcileId: nextReconcileId(), batches: batches.length, ...counts, timestamp: formatTimestamp(now), ...(st.sentToAccount ? { sentToAccount: st.sentToAccount } : {}) },
      'inventory sent',
    );
    return { requeueAfterMs: this.#o.intervalMs };
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
      return undefined;
    } catch (err) {
      const missing = err instanceof AnchoreError && (err.kind === 'account-not-found' || (err.kind === 'auth' && err.status === 403));
      if (!missing || account === fallbackTo) throw err;
      this.#missing.missing(account, err.message, fallbackTo);
      await this.#o.anchore.postKubernetesInventory(fallbackTo, batch);
      return { account: fallbackTo, note: `account "${account}" not usable (${err.message}); sent to account "${fallbackTo}" instead` };
    }
  }
}
