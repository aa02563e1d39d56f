// All simulator state in one place, independent of HTTP: the route handlers and the programmatic test API both
// drive this object, so what a test sets through a hook is exactly what the HTTP surface serves.
import { AuthRegistry } from './auth.ts';
import { reportMetricCatalogue } from './reports.ts';
import { ApiError, ErrorShaper } from './errors.ts';
import { FaultEngine } from './faults.ts';
import { computeVerdict, filterVulnerabilities, generateVulnerabilities, vulnerabilitiesFromInputs } from './findings.ts';
import type { VulnerabilityItem } from './findings.ts';
import { ImageStore, isoSeconds } from './images.ts';
import { IntegrationStore } from './integrations.ts';
import { InventoryStore } from './inventory.ts';
import { PolicyStore, policyDocument } from './policies.ts';
import { normalizeTag } from './refs.ts';
import { RequestLog } from './request-log.ts';
import type { ContractViolation } from './contract/contract.ts';
import type { AnchoreImageRecord, SimConfig, VerdictOverride, VulnerabilityInput, SimRetention } from './types.ts';

/** Contract violations kept. */
export const MAX_CONTRACT_VIOLATIONS = 1000;

/** Evaluations kept per (account, digest, policy, tag) for `history=true` and stored-evaluation mode. */
export const MAX_EVALUATIONS_PER_KEY = 20;

/** Parses a boolean query parameter. @throws ApiError 400 for anything but true/false/1/0. */
export function boolParam(query: Record<string, string>, name: string, dflt: boolean): boolean {
  const v = query[name];
  if (v === undefined || v === '') return dflt;
  const s = v.toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new ApiError(400, `Invalid value for query parameter '${name}': ${v}. Must be true or false`);
}

function notAnalyzed(rec: AnchoreImageRecord): ApiError {
  return new ApiError(404, `image is not analyzed - analysis_status: ${rec.analysis_status}`, { image_digest: rec.image_digest, analysis_status: rec.analysis_status });
}

function imageNotFound(digest: string): ApiError {
  return new ApiError(404, `Image not found: ${digest}`, { image_digest: digest });
}

/** Every piece of simulator state plus the evaluation logic. */
export class SimulatorCore {
  readonly config: SimConfig;
  /**
   * The simulator's clock: the injected one plus what `advanceClock` added. Every store built here reads it (token
   * expiry, analysis progress, evaluation times, inventory item timestamps and their TTL).
   */
  readonly now: () => number;
  readonly auth: AuthRegistry;
  readonly images: ImageStore;
  readonly policies: PolicyStore;
  readonly inventory: InventoryStore;
  readonly integrations: IntegrationStore;
  readonly log: RequestLog;
  readonly faults: FaultEngine;
  readonly errors: ErrorShaper;
  /** Contract violations seen in strict mode (bounded: the oldest are dropped). */
  readonly contractViolations: ContractViolation[] = [];
  private readonly verdicts = new Map<string, VerdictOverride>();
  private readonly vulnOverrides = new Map<string, VulnerabilityInput[]>();
  private readonly evaluations = new Map<string, Array<Record<string, unknown>>>();
  private offsetMs = 0;

  constructor(config: SimConfig, now: () => number = Date.now, retention: SimRetention = {}) {
    this.config = config;
    this.now = () => now() + this.offsetMs;
    this.inventory = new InventoryStore({
      ...(retention.inventoryReportBytes === undefined ? {} : { maxReportBytes: retention.inventoryReportBytes }),
      overwrite: config.inventory_ingest_overwrite,
      ttlDays: config.inventory_ttl_days,
      clock: this.now,
    });
    this.log = new RequestLog(undefined, retention.requestBodyBytes, retention.requestBodyMaxBytes);
    this.auth = new AuthRegistry(config, this.now);
    this.images = new ImageStore(config, this.now);
    this.policies = new PolicyStore(config, this.now);
    this.integrations = new IntegrationStore(config.seed);
    this.faults = new FaultEngine(config.seed);
    this.errors = new ErrorShaper(config.error_shape);
  }

  /** How far the simulator's clock is ahead of the injected one (ms). */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  /**
   * Moves the simulator's clock forward (it never goes back), e.g. past `inventory_ttl_days` instead of sleeping.
   * Request-log times, fault outage windows and `InventoryReport.receivedAt` stay on the wall clock.
   * @throws Error for a negative or non-finite amount.
   */
  advanceClock(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`the clock only moves forward: ${ms} ms`);
    this.offsetMs += ms;
  }

  /** Back to the configured state (the clock included). */
  reset(): void {
    this.offsetMs = 0;
    this.auth.reset();
    this.images.reset();
    this.policies.reset();
    this.inventory.reset();
    this.integrations.reset();
    this.log.clear();
    this.faults.clear();
    this.verdicts.clear();
    this.vulnOverrides.clear();
    this.evaluations.clear();
    this.contractViolations.length = 0;
  }

  /** Records a contract violation (at most MAX_CONTRACT_VIOLATIONS are kept). */
  recordViolation(v: ContractViolation): void {
    this.contractViolations.push(v);
    if (this.contractViolations.length > MAX_CONTRACT_VIOLATIONS) this.contractViolations.shift();
  }

  /** Sets (or, with undefined, removes) a verdict override; without an account it applies to every account. */
  setVerdict(digest: string, verdict: VerdictOverride | undefined, account?: string): void {
    const key = `${account ?? '*'}\u0000${digest.toLowerCase()}`;
    if (verdict === undefined) this.verdicts.delete(key);
    else {
      if (!['pass', 'fail'].includes(verdict.status) || !['go', 'warn', 'stop'].includes(verdict.final_action)) {
        throw new Error('verdict needs status pass|fail and final_action go|warn|stop');
      }
      if (verdict.findings !== undefined && (!Number.isInteger(verdict.findings) || verdict.findings < 0)) throw new Error('verdict.findings must be a non-negative integer');
      this.verdicts.set(key, { ...verdict });
    }
  }

  /** Replaces (or, with undefined, removes) the vulnerabilities reported for a digest, in every account. */
  setVulnerabilities(digest: string, vulns: VulnerabilityInput[] | undefined): void {
    if (vulns === undefined) this.vulnOverrides.delete(digest.toLowerCase());
    else
      this.vulnOverrides.set(
        digest.toLowerCase(),
        vulns.map((v) => ({ ...v })),
      );
  }

  private analyzedImage(account: string, digest: string): AnchoreImageRecord {
    const rec = this.images.get(account, digest);
    if (rec === undefined) throw imageNotFound(digest);
    if (rec.analysis_status !== 'analyzed') throw notAnalyzed(rec);
    return rec;
  }

  private vulnerabilityList(rec: AnchoreImageRecord): VulnerabilityItem[] {
    const detectedAt = rec.analysis_status_detail.findLast((d) => d.to_status === 'analyzed')?.timestamp ?? rec.created_at;
    const override = this.vulnOverrides.get(rec.image_digest);
    return override === undefined ? generateVulnerabilities(this.config.seed, rec.image_digest, detectedAt) : vulnerabilitiesFromInputs(this.config.seed, rec.image_digest, override, detectedAt);
  }

  /** Current values of the Reports API metrics for an account (vulnerabilities by severity across analysed tags). */
  reportValues(account: string): Record<string, number> {
    const values: Record<string, number> = {};
    for (const m of reportMetricCatalogue()) values[m.id] = 0;
    for (const rec of this.images.list(account, { image_status: 'all' })) {
      if (rec.analysis_status !== 'analyzed') continue;
      values['tags.analyzed.all'] = (values['tags.analyzed.all'] ?? 0) + rec.image_detail.length;
      for (const v of this.vulnerabilityList(rec)) {
        const id = `vulnerabilities.tags.all.${String(v.severity).toLowerCase()}`;
        if (id in values) values[id] = (values[id] ?? 0) + rec.image_detail.length;
      }
    }
    return values;
  }

  /** GET /v2/images/{digest}/vuln */
  vulnerabilityTypes(account: string, digest: string): string[] {
    this.analyzedImage(account, digest);
    return ['all', 'os', 'non-os'];
  }

  /** GET /v2/images/{digest}/vuln/{type} */
  vulnerabilities(account: string, digest: string, vulnType: string, query: Record<string, string>): Record<string, unknown> {
    if (!['os', 'non-os', 'all'].includes(vulnType)) throw new ApiError(400, `Invalid vuln_type: ${vulnType}. Must be one of os, non-os, all`);
    const vendorOnly = boolParam(query, 'vendor_only', true);
    boolParam(query, 'force_refresh', false);
    boolParam(query, 'include_vuln_description', false);
    const rec = this.analyzedImage(account, digest);
    return {
      image_digest: rec.image_digest,
      ...(query.base_digest === undefined ? {} : { base_digest: query.base_digest }),
      base_image_problems: [],
      vulnerability_type: vulnType,
      extended_support: false,
      vulnerabilities: filterVulnerabilities(this.vulnerabilityList(rec), vulnType, vendorOnly),
    };
  }

  /** GET /v2/images/{digest}/check */
  check(account: string, digest: string, query: Record<string, string>): Record<string, unknown> {
    const tagIn = query.tag;
    if (tagIn === undefined || tagIn === '') throw new ApiError(400, "Missing query parameter 'tag'");
    const tag = normalizeTag(tagIn);
    if (tag === undefined) throw new ApiError(400, `Invalid tag: ${tagIn}`);
    const detail = boolParam(query, 'detail', true);
    const history = boolParam(query, 'history', false);
    const interactive = boolParam(query, 'interactive', false);
    const rec = this.analyzedImage(account, digest);
    const requested = query.policy_id;
    const policy = requested !== undefined && requested !== '' ? this.policies.find(account, requested) : this.policies.active(account);
    if (policy === undefined) {
      throw requested !== undefined && requested !== ''
        ? new ApiError(404, `Policy not found: ${requested}`, { policy_id: requested })
        : new ApiError(404, 'No active policy found for account', { account });
    }
    const key = `${account}\u0000${rec.image_digest}\u0000${policy.policy_id}\u0000${tag}`;
    let stored = this.evaluations.get(key);
    if (!this.config.stored_evaluations || interactive) {
      const override = this.verdicts.get(`${account}\u0000${rec.image_digest}`) ?? this.verdicts.get(`*\u0000${rec.image_digest}`);
      const verdict = computeVerdict(this.config.seed, rec.image_digest, policy.policy_id, this.vulnerabilityList(rec), override);
      const now = this.now();
      const ts = isoSeconds(now);
      const remediations = verdict.findings
        .filter((f) => f.recommendation.startsWith('Upgrade'))
        .map((f) => ({ trigger_ids: [f.trigger_id], suggestions: [{ message: f.recommendation, preferred: true }] }));
      const result = {
        evaluation_time: ts,
        status: verdict.status,
        final_action: verdict.final_action,
        final_action_reason: 'policy_evaluation',
        number_of_findings: verdict.findings.length,
        image_allowlisted: false,
        image_denylisted: false,
        image_mapped_to_rule: true,
        evaluation_problems: [],
        details: { policy: policyDocument(policy, now), policy_action: verdict.final_action, findings: verdict.findings, remediations },
      };
      if (stored === undefined) {
        stored = [];
        this.evaluations.set(key, stored);
      }
      stored.push(result);
      if (stored.length > MAX_EVALUATIONS_PER_KEY) stored.shift();
    }
    if (stored === undefined || stored.length === 0) {
      throw new ApiError(404, 'No policy evaluation found for this image and tag; request one with interactive=true', { image_digest: rec.image_digest, tag });
    }
    const chosen = history ? stored : stored.slice(-1);
    return {
      policy_id: policy.policy_id,
      image_digest: rec.image_digest,
      evaluated_tag: tag,
      evaluations: chosen.map((e) => (detail ? e : { ...e, details: null })),
    };
  }
}
