/**
 * Anchore V2 JSON to the port's types, and the few request bodies the client builds. Pure functions: no I/O, no
 * logging. A decoder that cannot read what the operator acts on throws a `protocol` AnchoreError for the operation it
 * is given (the transport retries it and reports it as a failed attempt); a field the operator does not act on is
 * dropped or defaulted instead, so one odd field never hides an answer.
 */
import type {
  AccountInventoryReportBody,
  AddImageRequest,
  AnalysisStatus,
  AnchoreImage,
  HealthReport,
  HealthReportBody,
  PolicyCheck,
  PolicyFinding,
  PolicyRecord,
  ReportMetricInfo,
  ReportMetricPoint,
  ServerVersion,
  Severity,
  Vulnerability,
} from './anchore.port.ts';
import { ANALYSIS_STATUSES, SEVERITIES } from './anchore.port.ts';
import type { TokenResponse } from './auth.ts';
import { AnchoreError, protocolError } from './errors.ts';
import { formatTimestamp } from '../runtime/time.ts';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Whether `s` is a `sha256:<64 lowercase hex>` digest, the only digest form Anchore keys images by. */
export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** A short description of a JSON value for protocol-error messages (never a whole body). */
function describeValue(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)}`;
  return `the ${typeof v} ${String(v)}`;
}

function asObject(body: unknown, operation: string): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw protocolError(operation, `expected a JSON object, got ${describeValue(body)}`);
  return body as Record<string, unknown>;
}

/** The V1 API answered single resources as one-element lists; V2 servers behind old gateways still may. */
function single(body: unknown): unknown {
  return Array.isArray(body) ? body[0] : body;
}

/** GET /version: every part is optional (Enterprise 4.x lacks some), so a missing one is undefined, never an error. */
export function readVersion(body: unknown, operation: string): ServerVersion {
  const o = asObject(body, operation);
  const sub = (k: string, f: string): string | undefined => {
    const v = o[k];
    if (v && typeof v === 'object') {
      const x = (v as Record<string, unknown>)[f];
      return typeof x === 'string' && x ? x : undefined;
    }
    return undefined;
  };
  return { service: sub('service', 'version'), api: sub('api', 'version'), db: sub('db', 'schema_version') };
}

/** The set of "METHOD /path" (below /v2, params as {}) an OpenAPI document declares. */
export function operationsInSpec(spec: unknown): Set<string> {
  const out = new Set<string>();
  if (!spec || typeof spec !== 'object') return out;
  const s = spec as Record<string, unknown>;
  // OpenAPI 3 puts "/v2" in servers[].url; Swagger 2 in basePath; some documents spell it in every path.
  const paths = s['paths'];
  if (!paths || typeof paths !== 'object') return out;
  for (const [p, item] of Object.entries(paths as Record<string, unknown>)) {
    if (!item || typeof item !== 'object') continue;
    const norm = p.replace(/^\/v2(?=\/|$)/, '').replace(/\{[^}]*\}/g, '{}') || '/';
    for (const m of Object.keys(item)) {
      if (['get', 'post', 'put', 'delete', 'patch'].includes(m)) out.add(`${m.toUpperCase()} ${norm}`);
    }
  }
  return out;
}

/**
 * Reads an AnchoreImage. The two fields the operator acts on must be right: image_digest a sha256 digest (it is what
 * gets recorded and polled) and analysis_status a string — else `problem` says what is wrong. An analysis_status
 * string this operator does not know becomes "unknown" (not final: polled again) and is returned in `unknownStatus`.
 * Optional fields of the wrong type are dropped.
 */
export function parseImage(raw: unknown): { image?: AnchoreImage; problem?: string; unknownStatus?: string } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { problem: `expected an image object, got ${describeValue(raw)}` };
  const o = raw as Record<string, unknown>;
  const digest = o['image_digest'];
  if (!isDigest(digest)) return { problem: `image_digest is ${describeValue(digest)}, not a sha256 digest` };
  const status = o['analysis_status'];
  if (typeof status !== 'string') return { problem: `analysis_status of ${digest} is ${describeValue(status)}, not a string` };
  const known = ANALYSIS_STATUSES.includes(status as AnalysisStatus);
  const tags: string[] = [];
  if (Array.isArray(o['image_detail'])) {
    for (const d of o['image_detail']) {
      const t = d && typeof d === 'object' ? (d as Record<string, unknown>)['full_tag'] : undefined;
      if (typeof t === 'string') tags.push(t);
    }
  }
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
  const img: AnchoreImage = {
    image_digest: digest,
    analysis_status: known ? (status as AnalysisStatus) : 'unknown',
    full_tags: tags,
  };
  const parent = str('parent_digest');
  if (parent) img.parent_digest = parent;
  const imageStatus = str('image_status');
  if (imageStatus) img.image_status = imageStatus;
  const accountName = str('account_name');
  if (accountName) img.account_name = accountName;
  const created = str('created_at');
  if (created) img.created_at = created;
  const updated = str('last_updated');
  if (updated) img.last_updated = updated;
  // Only the operator's own annotations are kept (they say how it added the image); the rest is not its to read.
  const ann = o['annotations'];
  if (ann && typeof ann === 'object' && !Array.isArray(ann)) {
    for (const [k, v] of Object.entries(ann)) if (k.startsWith('anchore-operator/') && typeof v === 'string') (img.annotations ??= {})[k] = v;
  }
  return known ? { image: img } : { image: img, unknownStatus: status };
}

/** add_image and get_image must answer one readable image: its digest is what the operator records. */
export function readImage(body: unknown, operation: string): { image: AnchoreImage; unknownStatus?: string } {
  const r = parseImage(single(body));
  if (!r.image) throw protocolError(operation, r.problem ?? 'response is not an AnchoreImage');
  return r.unknownStatus === undefined ? { image: r.image } : { image: r.image, unknownStatus: r.unknownStatus };
}

export interface ImageList {
  images: AnchoreImage[];
  /** Images whose analysis_status this operator does not know (they read as "unknown"), in list order. */
  unknownStatuses: Array<{ digest: string; value: string }>;
  /** Entries that could not be read, and what was wrong with the first of them. */
  dropped: number;
  example?: string;
}

/**
 * GET /images. The list itself must be one; an unreadable entry is counted and skipped, because one bad entry must
 * not hide the others (the operator re-adds, idempotently, what it could not read).
 */
export function readImageList(body: unknown, operation: string): ImageList {
  // V2 wraps the list in {items}; tolerate a bare array (V1 shape) as well.
  const items = Array.isArray(body) ? body : asObject(body, operation)['items'];
  if (!Array.isArray(items)) throw protocolError(operation, `"items" is ${describeValue(items)}, not an array of images`);
  const out: ImageList = { images: [], unknownStatuses: [], dropped: 0 };
  for (const item of items) {
    const r = parseImage(item);
    if (r.image) {
      out.images.push(r.image);
      if (r.unknownStatus !== undefined) out.unknownStatuses.push({ digest: r.image.image_digest, value: r.unknownStatus });
    } else {
      out.dropped++;
      out.example ??= r.problem;
    }
  }
  return out;
}

/** POST /system/integrations/registration: the uuid is what every health report is filed under. */
export function readIntegrationUuid(body: unknown, operation: string): string {
  const uuid = asObject(body, operation)['uuid'];
  if (typeof uuid !== 'string' || !uuid) throw protocolError(operation, 'response has no uuid');
  return uuid;
}

/** A PolicyRecord, or undefined when it has no policy_id (the only field a binding resolves by). */
function toPolicy(raw: unknown): PolicyRecord | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o['policy_id'] !== 'string' || !o['policy_id']) return undefined;
  const p: PolicyRecord = { policy_id: o['policy_id'], name: typeof o['name'] === 'string' ? o['name'] : o['policy_id'], active: o['active'] === true };
  if (typeof o['last_updated'] === 'string') p.last_updated = o['last_updated'];
  return p;
}

/** GET /policies: a bare array in V2 ({items} tolerated); entries without a policy_id are skipped. */
export function readPolicyList(body: unknown, operation: string): PolicyRecord[] {
  const items = Array.isArray(body) ? body : asObject(body, operation)['items'];
  if (!Array.isArray(items)) throw protocolError(operation, 'expected an array of policies');
  return items.map(toPolicy).filter((p): p is PolicyRecord => p !== undefined);
}

export function readPolicy(body: unknown, operation: string): PolicyRecord {
  const p = toPolicy(single(body));
  if (!p) throw protocolError(operation, 'response is not a PolicyRecord');
  return p;
}

const ACTIONS = new Set(['go', 'warn', 'stop']);

/**
 * Reads a V2 PolicyEvaluation; the V1 list shape `[{digest: {tag: [result]}}]` is accepted too. Returns what is wrong
 * instead when the verdict cannot be read — in particular a final_action other than go, warn or stop: a verdict the
 * operator does not understand must never count as a pass.
 */
export function readPolicyCheck(raw: unknown, digest: string, tag: string): PolicyCheck | string {
  let evaluation: Record<string, unknown> | undefined;
  let results: unknown[] | undefined;
  if (Array.isArray(raw)) {
    const byDigest = raw[0] && typeof raw[0] === 'object' ? (raw[0] as Record<string, unknown>)[digest] : undefined;
    const byTag = byDigest && typeof byDigest === 'object' ? Object.values(byDigest as Record<string, unknown>)[0] : undefined;
    if (Array.isArray(byTag)) results = byTag;
  } else if (raw && typeof raw === 'object') {
    evaluation = raw as Record<string, unknown>;
    if (Array.isArray(evaluation['evaluations'])) results = evaluation['evaluations'] as unknown[];
  }
  if (!results || results.length === 0) return 'response is not a PolicyEvaluation (no evaluations)';
  // KAC: any failing evaluation fails; otherwise the last one decides.
  const objs = results.filter((r): r is Record<string, unknown> => !!r && typeof r === 'object');
  const decisive = objs.find((r) => r['status'] === 'fail') ?? objs[objs.length - 1];
  if (!decisive) return 'response is not a PolicyEvaluation (no evaluation objects)';
  const status = decisive['status'] === 'pass' || decisive['status'] === 'fail' ? decisive['status'] : 'unknown';
  const rawAction = decisive['final_action'];
  if (typeof rawAction !== 'string' || !ACTIONS.has(rawAction)) {
    return `final_action is ${describeValue(rawAction)}, not go, warn or stop; the verdict cannot be read`;
  }
  const fa = rawAction;
  const findings: PolicyFinding[] = [];
  const details = decisive['details'];
  const rawFindings = details && typeof details === 'object' ? (details as Record<string, unknown>)['findings'] : undefined;
  if (Array.isArray(rawFindings)) {
    for (const f of rawFindings) {
      if (!f || typeof f !== 'object') continue;
      const o = f as Record<string, unknown>;
      const action = String(o['action'] ?? '');
      if (action === 'go' || o['allowlisted'] === true) continue;
      findings.push({
        gate: String(o['gate'] ?? ''),
        trigger: String(o['trigger'] ?? ''),
        action: ACTIONS.has(action) ? (action as 'warn') : 'unknown',
        message: String(o['message'] ?? '').slice(0, 1024),
      });
    }
  }
  findings.sort((a, b) => (a.action === 'stop' ? 0 : 1) - (b.action === 'stop' ? 0 : 1));
  const n = decisive['number_of_findings'];
  const check: PolicyCheck = {
    policy_id: String(evaluation?.['policy_id'] ?? decisive['policy_id'] ?? ''),
    image_digest: String(evaluation?.['image_digest'] ?? digest),
    evaluated_tag: String(evaluation?.['evaluated_tag'] ?? tag),
    status,
    final_action: fa as 'go' | 'warn' | 'stop',
    final_action_reason: String(decisive['final_action_reason'] ?? ''),
    number_of_findings: typeof n === 'number' && n >= 0 ? n : findings.length,
    findings,
  };
  if (typeof decisive['evaluation_time'] === 'string') check.evaluation_time = decisive['evaluation_time'];
  return check;
}

function normaliseSeverity(s: string): Severity {
  const cap = s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
  return (SEVERITIES as readonly string[]).includes(cap) ? (cap as Severity) : 'Unknown';
}

/** The highest score of an item's `epss` list (`[{cve, epss, percentile, date}]`); undefined when there is none. */
function highestEpss(list: unknown): number | undefined {
  if (!Array.isArray(list)) return undefined;
  let best: number | undefined;
  for (const e of list) {
    const score = e && typeof e === 'object' ? (e as Record<string, unknown>)['epss'] : undefined;
    if (typeof score === 'number' && Number.isFinite(score) && score >= 0 && score <= 1 && (best === undefined || score > best)) best = score;
  }
  return best;
}

/**
 * GET /images/{digest}/vuln/all. The list must be one; entries that are not objects are skipped, and a severity this
 * operator does not know counts as Unknown (counted, never dropped). Anchore spells "no fix" as "None".
 */
export function readVulnerabilities(body: unknown, operation: string): Vulnerability[] {
  const list = asObject(body, operation)['vulnerabilities'];
  if (!Array.isArray(list)) throw protocolError(operation, 'response has no vulnerabilities array');
  const out: Vulnerability[] = [];
  for (const v of list) {
    if (!v || typeof v !== 'object') continue;
    const o = v as Record<string, unknown>;
    const sev = typeof o['severity'] === 'string' ? normaliseSeverity(o['severity']) : 'Unknown';
    const vuln: Vulnerability = { id: String(o['vuln'] ?? ''), severity: sev, package: String(o['package'] ?? o['package_name'] ?? '') };
    if (typeof o['fix'] === 'string' && o['fix'] && o['fix'] !== 'None') vuln.fix = o['fix'];
    if (o['is_kev'] === true) vuln.kev = true;
    const epss = highestEpss(o['epss']);
    if (epss !== undefined) vuln.epss = epss;
    out.push(vuln);
  }
  return out;
}

/** One page of a Reports GraphQL connection: its result objects and the token of the next page, if any. */
export interface GraphqlPage {
  results: Array<Record<string, unknown>>;
  nextToken: string | undefined;
}

/**
 * A Reports GraphQL answer for `data.<field>`. GraphQL reports failures with status 200 and an `errors` list: an
 * unknown metric is `not-found` (the metric was removed), any other error `rejected`.
 */
export function readGraphqlPage(body: unknown, field: string, operation: string): GraphqlPage {
  const o = asObject(body, operation);
  const errors = Array.isArray(o['errors']) ? (o['errors'] as Array<{ message?: unknown }>) : [];
  if (errors.length) {
    const msg = errors
      .map((e) => String(e?.message ?? 'error'))
      .join('; ')
      .slice(0, 300);
    throw new AnchoreError(/unknown metric/i.test(msg) ? 'not-found' : 'rejected', operation, `${operation}: ${msg}`);
  }
  const data = o['data'] && typeof o['data'] === 'object' ? ((o['data'] as Record<string, unknown>)[field] as Record<string, unknown> | null) : null;
  if (!data || typeof data !== 'object') throw protocolError(operation, `no data.${field} in the response`);
  const results: Array<Record<string, unknown>> = [];
  for (const r of Array.isArray(data['results']) ? data['results'] : []) if (r && typeof r === 'object') results.push(r as Record<string, unknown>);
  const pageInfo = data['pageInfo'] as Record<string, unknown> | undefined;
  const token = pageInfo?.['nextToken'];
  return { results, nextToken: typeof token === 'string' && token ? token : undefined };
}

/** A `metrics` result; undefined without an id (nothing could ask for its data). */
export function readMetricInfo(r: Record<string, unknown>): ReportMetricInfo | undefined {
  return typeof r['id'] === 'string' ? { id: r['id'], name: String(r['name'] ?? r['id']), metricType: String(r['metricType'] ?? '') } : undefined;
}

/** A `metricData` result; undefined without a time or a finite value (a numeric string counts). */
export function readMetricPoint(r: Record<string, unknown>): ReportMetricPoint | undefined {
  const v = typeof r['value'] === 'number' ? r['value'] : Number(r['value']);
  return typeof r['collectedAt'] === 'string' && Number.isFinite(v) ? { collectedAt: r['collectedAt'], value: v } : undefined;
}

/**
 * A time for the Reports GraphQL MetricDataFilter: the shared formatTimestamp without its zone suffix (UTC with whole
 * seconds), the form this client has always sent there.
 */
export function graphqlDateTime(d: Date): string {
  return formatTimestamp(d).replace(/Z$/, '');
}

/** POST /oauth/token: the access token is required; a missing or odd expiry or refresh token is just absent. */
export function readTokenResponse(body: unknown, operation: string): TokenResponse {
  const o = asObject(body, operation);
  if (typeof o['access_token'] !== 'string') throw protocolError(operation, 'token response has no access_token');
  return {
    access_token: o['access_token'],
    expires_in: typeof o['expires_in'] === 'number' ? o['expires_in'] : undefined,
    refresh_token: typeof o['refresh_token'] === 'string' ? o['refresh_token'] : undefined,
  };
}

/** POST /images: exactly one source type, a digest source when the digest is known (the tag rides along with it). */
export function addImageBody(req: AddImageRequest): Record<string, unknown> {
  const source = req.digestPullString ? { digest: { pull_string: req.digestPullString, tag: req.tag } } : { tag: { pull_string: req.tag } };
  return { source, annotations: req.annotations ?? {}, image_type: 'docker' };
}

/** The spec's HealthReport body for one report: every account's batches, each filed under its account name. */
export function healthReportBody(report: HealthReport, username: string, now: Date, id: string): HealthReportBody {
  const accounts: Record<string, AccountInventoryReportBody> = {};
  for (const [name, a] of Object.entries(report.accounts)) {
    accounts[name] = {
      report_timestamp: a.report_timestamp,
      account_name: name,
      sent_as_user: username,
      batch_size: a.batch_size,
      last_successful_index: a.last_successful_index,
      has_errors: a.has_errors,
      batches: a.batches,
    };
  }
  return {
    uuid: id,
    protocol_version: 1,
    timestamp: formatTimestamp(now),
    uptime: report.uptime,
    health_report_interval: report.health_report_interval,
    health_data: { type: 'k8s_inventory_agent', version: 1, errors: report.errors, account_k8s_inventory_reports: accounts },
  };
}
