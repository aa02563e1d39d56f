import type { AnchoreApi, HealthReport } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { InventoryStatus } from './inventory.controller.ts';

export interface IntegrationOptions {
  anchore: AnchoreApi;
  account: string;
  username: string;
  clusterName: string;
  registrationId: string;
  instanceId: string;
  namespace?: string;
  version: string;
  healthIntervalMs: number;
  inventoryStatus: () => InventoryStatus[];
  log: Logger;
}

/**
 * Registers the operator with Anchore as a Kubernetes inventory integration and sends health reports, as
 * k8s-inventory does (Enterprise ≥ 5.11). Older servers answer 404/405 there: logged once, then left alone.
 */
export class IntegrationController {
  readonly #o: IntegrationOptions;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  #uuid: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #disabled = false;
  #stopped = false;

  constructor(o: IntegrationOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'integration' });
  }

  get uuid(): string | undefined {
    return this.#uuid;
  }

  get supported(): boolean {
    return !this.#disabled;
  }

  start(): void {
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped || this.#disabled) return;
    try {
      if (!this.#uuid) await this.#register();
      if (this.#uuid) await this.#report();
    } catch (err) {
      if (err instanceof AnchoreError && (err.kind === 'unsupported' || (err.kind === 'not-found' && !this.#uuid))) {
        this.#disabled = true;
        this.#log.info({ err: err.message }, 'Anchore does not support integration registration (Enterprise < 5.11); continuing without it');
        return;
      }
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        // Anchore forgot our registration (e.g. restored database): register again next time.
        this.#uuid = undefined;
      }
      this.#log.warn({ err: errorMessage(err) }, 'integration health report failed');
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#o.healthIntervalMs);
    this.#timer.unref();
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
      username: o.username,
      health_report_interval: Math.max(1, Math.round(o.healthIntervalMs / 1000)),
      cluster_name: o.clusterName,
      ...(o.namespace ? { namespace: o.namespace } : {}),
    });
    this.#log.info({ uuid: this.#uuid }, 'registered with Anchore as an integration');
  }

  async #report(): Promise<void> {
    const accounts: HealthReport['accounts'] = {};
    const errors: string[] = [];
    for (const s of this.#o.inventoryStatus()) {
      accounts[s.account] = {
        report_timestamp: (s.lastAttempt ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        batch_size: s.batches,
        last_successful_index: s.lastSuccessfulIndex,
        has_errors: s.errors.length > 0,
        errors: s.errors,
      };
      errors.push(...s.errors.map((e) => `${s.account}: ${e}`));
    }
    await this.#o.anchore.sendHealthReport(this.#o.account, this.#uuid as string, {
      uptime: Math.round((Date.now() - this.#startedAt) / 1000),
      health_report_interval: Math.max(1, Math.round(this.#o.healthIntervalMs / 1000)),
      errors,
      accounts,
    });
  }
}
