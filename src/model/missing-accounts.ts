import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { METRIC } from '../telemetry/metrics.ts';

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

  isMissing(account: string): boolean {
    return this.#missing.has(account);
  }

  list(): string[] {
    return [...this.#missing.keys()].sort();
  }
}
