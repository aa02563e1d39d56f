import type { BindingInfo } from '../crds/types.ts';
import type { NamespaceInfo, Store } from '../kube/cluster.port.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { METRIC } from '../telemetry/metrics.ts';
import type { Scope } from './scope.ts';

/** How long work for a missing account waits before it is tried in that account again. */
export const MISSING_ACCOUNT_RECHECK_MS = 5 * 60_000;

/**
 * Anchore accounts the operator was told do not exist ("User account not found"), shared by the controllers that
 * write to accounts. One warning when an account goes missing and one info line when it comes back, however many
 * images, bindings and inventory batches hit it; `anchore_operator_account_missing{account}` is 1 while it is missing.
 *
 * What each controller does meanwhile (docs/anchore-contract.md §Missing accounts):
 * - inventory: that account's namespaces go to the default account instead (as k8s-inventory does), so the runtime
 *   inventory is never lost, and the real account is tried first again at every send;
 * - images: registration in that account waits MISSING_ACCOUNT_RECHECK_MS between tries (no fast retry loop);
 * - bindings: Stalled, reason AccountNotFound, rechecked every MISSING_ACCOUNT_RECHECK_MS.
 */
export class MissingAccounts {
  readonly #missing = new Map<string, { since: number; cause: string }>();
  readonly #log: Logger;

  constructor(log: Logger, metrics?: OperatorMetrics) {
    this.#log = log.child({ component: 'accounts' });
    metrics?.stateGauge(METRIC.accountMissing, 'Anchore accounts the operator routes to that Anchore says do not exist (1 while missing)', ['account'], () => this.#series());
  }

  *#series(): Iterable<[{ account: string }, number]> {
    for (const account of this.#missing.keys()) yield [{ account }, 1];
  }

  /** Records that Anchore does not have `account`; `fallback` names where its inventory goes meanwhile. */
  missing(account: string, cause: string, fallback?: string): void {
    if (this.#missing.has(account)) return;
    this.#missing.set(account, { since: Date.now(), cause });
    this.#log.warn(
      { account, cause, ...(fallback === undefined ? {} : { inventoryFallbackAccount: fallback }), recheckMs: MISSING_ACCOUNT_RECHECK_MS },
      fallback === undefined
        ? `Anchore account "${account}" does not exist: create it, or fix the route/label that names it`
        : `Anchore account "${account}" does not exist: its namespaces' inventory goes to account "${fallback}" until it does; create it, or fix the route/label that names it`,
    );
  }

  /** Records that a call in `account` succeeded. */
  present(account: string): void {
    const was = this.#missing.get(account);
    if (was === undefined) return;
    this.#missing.delete(account);
    this.#log.info({ account, missingForMs: Date.now() - was.since }, `Anchore account "${account}" exists now`);
  }

  /**
   * Forgets the missing accounts nothing names any more (`inUse` false): the namespace label that named one was
   * corrected, its route or binding is gone. A condition that is gone clears by itself: the gauge series goes, and
   * nothing waits on the account. Should something name it again, the next call there finds out afresh. Returns the
   * accounts forgotten (each said in one info line).
   */
  forgetUnused(inUse: (account: string) => boolean): string[] {
    const gone: string[] = [];
    for (const [account, was] of this.#missing) {
      if (inUse(account)) continue;
      this.#missing.delete(account);
      gone.push(account);
      this.#log.info({ account, missingForMs: Date.now() - was.since }, `Anchore account "${account}" is no longer named by any namespace, route or binding: no longer reported missing`);
    }
    return gone;
  }

  isMissing(account: string): boolean {
    return this.#missing.has(account);
  }

  list(): string[] {
    return [...this.#missing.keys()].sort();
  }
}

/**
 * Every account something routes work to now: the default account and the ACCOUNT_ROUTES accounts, the accounts the
 * in-scope namespaces route to (their route or account label), and the accounts bindings name in spec.account.
 */
export function accountsInUse(
  scope: Pick<Scope, 'staticAccounts' | 'includesNamespace' | 'accountFor'>,
  stores: { namespaces: Store<NamespaceInfo>; bindings: Store<BindingInfo>; clusterBindings: Store<BindingInfo> },
): Set<string> {
  const used = new Set(scope.staticAccounts);
  for (const ns of stores.namespaces.list()) if (scope.includesNamespace(ns)) used.add(scope.accountFor(ns, ns.name));
  for (const b of [...stores.bindings.list(), ...stores.clusterBindings.list()]) if (b.spec.account) used.add(b.spec.account);
  return used;
}

/**
 * Keeps the missing-account state current with the cluster and says what it strands:
 * - a condition that is gone clears by itself: when a namespace, binding or cluster binding changes or goes, the
 *   accounts nothing names any more (a mistyped account label corrected) are forgotten (MissingAccounts.forgetUnused);
 * - `anchore_operator_namespaces_account_missing{account}` counts, per missing account, the namespaces in scope that
 *   route to it (a mistyped account label shows up here), read at scrape time.
 */
export function trackMissingAccounts(o: {
  missing: MissingAccounts;
  scope: Pick<Scope, 'staticAccounts' | 'includesNamespace' | 'accountFor'>;
  stores: { namespaces: Store<NamespaceInfo>; bindings: Store<BindingInfo>; clusterBindings: Store<BindingInfo> };
  metrics: Pick<OperatorMetrics, 'stateGauge'>;
}): void {
  const { missing, scope, stores } = o;
  const forgetUnused = (): void => {
    let used: Set<string> | undefined; // worked out only when some account is missing
    missing.forgetUnused((a) => (used ??= accountsInUse(scope, stores)).has(a));
  };
  for (const s of [stores.namespaces, stores.bindings, stores.clusterBindings]) s.on({ update: forgetUnused, delete: forgetUnused });
  o.metrics.stateGauge(
    METRIC.namespacesAccountMissing,
    'Namespaces in scope that route to an Anchore account that does not exist (their inventory goes to the default account)',
    ['account'],
    function* () {
      if (missing.list().length === 0) return;
      const counts = new Map<string, number>();
      for (const ns of stores.namespaces.list()) {
        if (!scope.includesNamespace(ns)) continue;
        const account = scope.accountFor(ns, ns.name);
        if (missing.isMissing(account)) counts.set(account, (counts.get(account) ?? 0) + 1);
      }
      for (const [account, n] of counts) yield [{ account }, n];
    },
  );
}
