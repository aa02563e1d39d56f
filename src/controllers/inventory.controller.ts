import type { AnchoreApi } from '../anchore/anchore.port.ts';
import type { ClusterStores, NamespaceInfo, PodInfo } from '../kube/cluster.port.ts';
import { errorMessage } from '../runtime/errors.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { buildInventory, inventoryTimestamp } from './inventory.ts';
import type { Scope } from './scope.ts';

export interface InventoryOptions {
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
}

/** Per-account outcome of the last report, for health reports and status. */
export interface InventoryStatus {
  account: string;
  lastAttempt?: Date;
  lastSuccess?: Date;
  batches: number;
  lastSuccessfulIndex: number;
  errors: string[];
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

  constructor(o: InventoryOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'inventory' });
    this.queue = new WorkQueue<string>({
      name: 'inventory',
      concurrency: 2,
      handle: (account) => this.reconcile(account),
      backoff: { baseMs: 2000, maxMs: 60_000, jitter: 0.3 },
      onEvent: o.metrics.queueObserver('inventory', this.#log, 'inventory report'),
    });
    const podChanged = (a: PodInfo | undefined, b: PodInfo | undefined): void => {
      if (a && b && sameIgnoringVersion(a, b)) return;
      const p = (b ?? a) as PodInfo;
      this.#changed(this.#accountOfNamespace(p.namespace));
    };
    o.stores.pods.on({ add: (p) => podChanged(undefined, p), update: podChanged, delete: (p) => podChanged(p, undefined) });
    const nsChanged = (a: NamespaceInfo | undefined, b: NamespaceInfo | undefined): void => {
      if (a && b && sameIgnoringVersion(a, b)) return;
      for (const ns of [a, b]) if (ns) this.#changed(o.scope.accountFor(ns, ns.name));
    };
    o.stores.namespaces.on({ add: (n) => nsChanged(undefined, n), update: nsChanged, delete: (n) => nsChanged(n, undefined) });
    o.stores.nodes.on({
      update: (a, b) => {
        if (!sameIgnoringVersion(a, b)) this.#changedAll();
      },
      delete: () => this.#changedAll(),
    });
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

  async reconcile(account: string): Promise<HandleResult> {
    const st = this.#status.get(account) ?? { account, batches: 0, lastSuccessfulIndex: -1, errors: [] };
    this.#status.set(account, st);
    const sinceLast = st.lastSuccess ? Date.now() - st.lastSuccess.getTime() : Infinity;
    if (sinceLast < this.#o.minIntervalMs) return { requeueAfterMs: this.#o.minIntervalMs - sinceLast };
    const started = performance.now();
    const now = new Date();
    const batches = await buildInventory(account, this.#o.stores, this.#o.scope, this.#o.clusterName, now, this.#o.batchBytes);
    st.lastAttempt = now;
    st.batches = batches.length;
    st.lastSuccessfulIndex = -1;
    st.errors = [];
    for (const [i, batch] of batches.entries()) {
      try {
        await this.#o.anchore.postKubernetesInventory(account, batch);
        st.lastSuccessfulIndex = i;
      } catch (err) {
        st.errors.push(`batch ${i}: ${errorMessage(err)}`);
        this.#o.metrics.inventoryReports.inc({ account, result: 'error' });
        throw err;
      }
    }
    st.lastSuccess = now;
    this.#o.metrics.inventoryReports.inc({ account, result: 'success' });
    this.#o.metrics.inventoryLastSuccess.set({ account }, now.getTime() / 1000);
    this.#o.metrics.inventoryDuration.observe((performance.now() - started) / 1000);
    const counts = batches.reduce((a, b) => ({ ns: a.ns + b.namespaces.length, pods: a.pods + b.pods.length, containers: a.containers + b.containers.length }), { ns: 0, pods: 0, containers: 0 });
    this.#log.debug({ account, reconcileId: nextReconcileId(), batches: batches.length, ...counts, timestamp: inventoryTimestamp(now) }, 'inventory sent');
    return { requeueAfterMs: this.#o.intervalMs };
  }
}

function sameIgnoringVersion<T extends { resourceVersion: string }>(a: T, b: T): boolean {
  return JSON.stringify({ ...a, resourceVersion: '' }) === JSON.stringify({ ...b, resourceVersion: '' });
}
