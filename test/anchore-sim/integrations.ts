// Integration registration (idempotent per registration_id + registration_instance_id) and health reports.
import { ApiError } from './errors.ts';
import { isoSeconds } from './images.ts';
import { deterministicUuid } from './prng.ts';
import type { IntegrationRecord } from './types.ts';

/** The only integration type the V2 API accepts. */
export const INTEGRATION_TYPE = 'k8s_inventory_agent';

/** Bounds of health_report_interval (the spec's HealthReportInterval), in seconds. */
export const MIN_HEALTH_REPORT_INTERVAL = 30;
export const MAX_HEALTH_REPORT_INTERVAL = 600;

/** Health reports kept per integration. */
export const MAX_HEALTH_REPORTS = 1000;

const REQUIRED = ['registration_id', 'registration_instance_id', 'type', 'username', 'health_report_interval'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Registered integrations, by uuid and by registration key. */
export class IntegrationStore {
  private readonly byUuid = new Map<string, IntegrationRecord>();
  private readonly byKey = new Map<string, IntegrationRecord>();
  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
  }

  /**
   * Registers (201) or re-registers (200) an integration.
   * @throws ApiError 400 for a missing required field or an unsupported type.
   */
  register(account: string, body: unknown, now: number): { created: boolean; integration: Record<string, unknown> } {
    if (!isObject(body)) throw new ApiError(400, 'Request body must be an IntegrationRegistration JSON object');
    for (const k of REQUIRED) {
      if (body[k] === undefined || body[k] === null || body[k] === '') throw new ApiError(400, `'${k}' is a required property`);
    }
    if (body.type !== INTEGRATION_TYPE) throw new ApiError(400, `Unsupported integration type: ${String(body.type)}. Must be ${INTEGRATION_TYPE}`);
    const interval = body.health_report_interval;
    if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < MIN_HEALTH_REPORT_INTERVAL || interval > MAX_HEALTH_REPORT_INTERVAL) {
      throw new ApiError(400, `'health_report_interval' must be an integer from ${MIN_HEALTH_REPORT_INTERVAL} to ${MAX_HEALTH_REPORT_INTERVAL} (seconds), got ${JSON.stringify(interval)}`);
    }
    const key = `${String(body.registration_id)}\u0000${String(body.registration_instance_id)}`;
    const ts = isoSeconds(now);
    const existing = this.byKey.get(key);
    if (existing !== undefined) {
      existing.registration = body;
      existing.registrations++;
      existing.account = account;
      existing.integration = this.integrationOf(existing.uuid, account, body, existing.integration, ts);
      return { created: false, integration: existing.integration };
    }
    const uuid = deterministicUuid(this.seed, 'integration', key);
    const record: IntegrationRecord = {
      uuid,
      account,
      registration: body,
      integration: this.integrationOf(uuid, account, body, undefined, ts),
      registeredAt: now,
      registrations: 1,
      healthReports: [],
    };
    this.byUuid.set(uuid, record);
    this.byKey.set(key, record);
    return { created: true, integration: record.integration };
  }

  /**
   * Stores a health report.
   * @throws ApiError 404 for an unknown uuid, 400 for a body that is not an object.
   */
  healthReport(uuid: string, body: unknown, now: number): void {
    const record = this.byUuid.get(uuid);
    if (record === undefined) throw new ApiError(404, `Integration not found: ${uuid}`, { uuid });
    if (!isObject(body)) throw new ApiError(400, 'Request body must be a HealthReport JSON object');
    record.healthReports.push({ receivedAt: now, body });
    if (record.healthReports.length > MAX_HEALTH_REPORTS) record.healthReports.shift();
    const data = isObject(body.health_data) ? body.health_data : {};
    const errors = Array.isArray(data.errors) ? data.errors.filter((e): e is string => typeof e === 'string') : [];
    const ts = isoSeconds(now);
    record.integration.last_seen = ts;
    if (typeof body.uptime === 'number') record.integration.uptime = body.uptime;
    record.integration.reported_status = errors.length > 0 ? { state: 'unhealthy', reason: 'errors reported', details: { errors } } : { state: 'healthy' };
    record.integration.integration_status = { state: 'active', updated_at: ts };
  }

  /** Deep copies of every integration, in registration order. */
  list(): IntegrationRecord[] {
    return [...this.byUuid.values()].map((r) => structuredClone(r));
  }

  reset(): void {
    this.byUuid.clear();
    this.byKey.clear();
  }

  /** The Integration object of the API: members the registration did not give are left out (the spec has no nulls). */
  private integrationOf(uuid: string, account: string, body: Record<string, unknown>, prev: Record<string, unknown> | undefined, ts: string): Record<string, unknown> {
    const bound = Array.isArray(body.explicitly_account_bound) ? body.explicitly_account_bound.filter((a): a is string => typeof a === 'string') : [];
    const out: Record<string, unknown> = {
      uuid,
      type: body.type,
      integration_status: { state: 'registered', updated_at: ts },
      started_at: typeof body.started_at === 'string' ? body.started_at : ts,
      username: body.username,
      account_name: account,
      explicitly_account_bound: bound,
      accounts: [...new Set([account, ...bound])],
      namespaces: Array.isArray(body.namespaces) ? body.namespaces : [],
      health_report_interval: body.health_report_interval,
      registration_id: body.registration_id,
      registration_instance_id: body.registration_instance_id,
    };
    for (const k of ['name', 'description', 'version', 'cluster_name', 'namespace', 'configuration', 'uptime'] as const) {
      if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
    }
    if (prev?.reported_status !== undefined) out.reported_status = prev.reported_status;
    if (prev?.last_seen !== undefined) out.last_seen = prev.last_seen;
    return out;
  }
}
