import { type AnchoreApi, HEALTH_REPORT_INTERVAL_MAX_S, HEALTH_REPORT_INTERVAL_MIN_S, type HealthReport } from '../anchore/anchore.port.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import { type Periodic, every } from '../runtime/periodic.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { InventoryStatus } from '../model/inventory-status.ts';

interface IntegrationOptions {
  anchore: AnchoreApi;
  account: string;
  username: string;
  clusterName: string;
  registrationId: string;
  instanceId: string;
  namespace?: string;
  version: string;
  healthIntervalMs: number;
  /** Accounts the operator is statically configured to handle (default account and route accounts). */
  accounts: string[];
  /** Namespaces it is statically configured to handle (names or globs; empty: all). */
  namespaces: readonly string[];
  /** Non-secret settings sent as the registration's `configuration`. */
  configuration?: Record<string, unknown>;
  inventoryStatus: () => InventoryStatus[];
  log: Logger;
  clock?: Clock;
}

/** The interval as the spec types it: whole seconds within 30–600 (config enforces the range; tests tick faster). */
function healthReportIntervalSeconds(ms: number): number {
  return Math.min(HEALTH_REPORT_INTERVAL_MAX_S, Math.max(HEALTH_REPORT_INTERVAL_MIN_S, Math.round(ms / 1000)));
}

/**
 * Registers the operator with Anchore as a Kubernetes inventory integration and sends health reports, as
 * k8s-inventory does (Enterprise ≥ 5.11). Older servers answer 404/405 there: logged once, then left alone.
 */
export class IntegrationController {
  readonly #o: IntegrationOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #startedAt: number;
  #uuid: string | undefined;
  #loop: Periodic | undefined;
  #disabled = false;
  #stopped = false;

  constructor(o: IntegrationOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#startedAt = this.#clock.now();
    this.#log = o.log.child({ controller: 'integration' });
  }

  get uuid(): string | undefined {
    return this.#uuid;
  }

  get supported(): boolean {
    return !this.#disabled;
  }

  start(): void {
    this.#loop = every(this.#o.healthIntervalMs, () => this.#tick(), { clock: this.#clock });
  }

  stop(): void {
    this.#stopped = true;
    this.#loop?.stop();
  }

  async #tick(): Promise<void> {
    if (this.#stopped || this.#disabled) return;
    try {
      if (!this.#uuid) await this.#register();
      if (this.#uuid) await this.#report();
    } catch (err) {
      if (err instanceof AnchoreError && (err.kind === 'unsupported' || (err.kind === 'not-found' && !this.#uuid))) {
        this.#disabled = true;
        this.#loop?.stop();
        this.#log.info({ err: err.message }, 'Anchore does not support integration registration (Enterprise < 5.11); continuing without it');
        return;
      }
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        // Anchore forgot our registration (e.g. restored database): register again next time.
        this.#uuid = undefined;
      }
      this.#log.warn({ err: errorMessage(err), account: this.#o.account }, this.#uuid ? 'integration health report failed' : 'integration registration failed');
    }
  }

  async #register(): Promise<void> {
    const o = this.#o;
    this.#uuid = await o.anchore.registerIntegration(o.account, {
      registration_id: o.registrationId,
      registration_instance_id: o.instanceId,
      type: 'k8s_inventory_agent',
      name: `anchore-operator-${o.clusterName}`,
      description: 'anchore-operator: event-driven Kubernetes runtime inventory and image registration',
      version: o.version,
      started_at: formatTimestamp(new Date(this.#startedAt)),
      uptime: this.#uptimeSeconds(),
      username: o.username,
      explicitly_account_bound: [...new Set(o.accounts)].sort(),
      namespaces: [...o.namespaces],
      ...(o.configuration ? { configuration: o.configuration } : {}),
      health_report_interval: healthReportIntervalSeconds(o.healthIntervalMs),
      cluster_name: o.clusterName,
      ...(o.namespace ? { namespace: o.namespace } : {}),
    });
    this.#log.info({ uuid: this.#uuid }, 'registered with Anchore as an integration');
  }

  #uptimeSeconds(): number {
    return Math.round((this.#clock.now() - this.#startedAt) / 100) / 10;
  }

  /**
   * One health report: per account, the batches of its last inventory report (1-based, every batch sent, `error`
   * only on failed ones), as k8s-inventory reports them. Accounts never attempted yet are left out (the spec wants
   * batch_size ≥ 1), as are the batches of a report still being sent.
   */
  async #report(): Promise<void> {
    await this.#o.anchore.sendHealthReport(
      this.#o.account,
      this.#uuid as string,
      buildHealthReport(this.#o.inventoryStatus(), this.#uptimeSeconds(), healthReportIntervalSeconds(this.#o.healthIntervalMs)),
    );
  }
}

/** The health report for the inventory controller's per-account status. Exported for tests. */
export function buildHealthReport(status: readonly InventoryStatus[], uptime: number, intervalSeconds: number): HealthReport {
  const accounts: HealthReport['accounts'] = {};
  const errors: string[] = [];
  for (const s of status) {
    if (s.lastAttempt === undefined || s.batchCount < 1 || s.batches.length === 0) continue;
    const failed = s.batches.filter((b) => b.error !== undefined);
    accounts[s.account] = {
      report_timestamp: formatTimestamp(s.lastAttempt),
      batch_size: s.batchCount,
      last_successful_index: s.lastSuccessfulIndex,
      has_errors: failed.length > 0 || s.batches.length < s.batchCount,
      batches: s.batches.map((b) => ({ batch_index: b.index, send_timestamp: formatTimestamp(b.sentAt), ...(b.error === undefined ? {} : { error: b.error }) })),
    };
    for (const b of failed) errors.push(`account ${s.account} inventory batch ${b.index}/${s.batchCount}: ${b.error}`);
    if (s.batches.length < s.batchCount) errors.push(`account ${s.account} inventory: ${s.batchCount - s.batches.length} of ${s.batchCount} batches not sent`);
  }
  return { uptime, health_report_interval: intervalSeconds, errors, accounts };
}
