// The operations of the published V2 spec the simulator serves, each with what a request may carry and what each
// success status answers. The strict simulator checks both directions against this table (contract.ts).
import { type BooleanSchema, type NumberSchema, type Schema, type StringSchema, type Violation } from './schema.ts';
import * as S from './spec.ts';

export interface ParamContract {
  schema: StringSchema | BooleanSchema | NumberSchema;
  required?: boolean;
}

export interface OperationContract {
  /** The spec's operationId. */
  operationId: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Full path with `{param}` segments, as the simulator routes it. */
  path: string;
  pathParams?: Record<string, StringSchema>;
  query?: Record<string, ParamContract>;
  body?: { media: 'application/json' | 'application/x-www-form-urlencoded'; schema: Schema; required: boolean };
  /** Success statuses and their body (null: no body). Error statuses are checked against S.ErrorBody. */
  success: Record<number, Schema | null>;
  /** What the spec says in prose (or k8s-inventory does) that a schema cannot express. */
  rules?: (body: unknown) => Violation[];
  /** Where the facts come from, when not the published spec document itself. */
  source?: string;
}

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const digestParam = { type: 'string', pattern: S.DIGEST_PATTERN } as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "A set of analysis source types. Only one may be set in any given request." */
function oneImageSource(body: unknown): Violation[] {
  const source = isObject(body) ? body.source : undefined;
  if (!isObject(source)) return [{ path: '$.source', message: 'is required: one of tag, digest, archive, import' }];
  const set = ['tag', 'digest', 'archive', 'import'].filter((k) => source[k] !== undefined && source[k] !== null);
  return set.length === 1 ? [] : [{ path: '$.source', message: `must set exactly one source type, got ${set.length === 0 ? 'none' : set.join(', ')}` }];
}

/**
 * Per account of a health report, the batches must tell one consistent story, as k8s-inventory's do: every batch that
 * was sent is listed (successful ones too), numbered from 1 in the order sent; has_errors says whether any of them
 * carries an error; last_successful_index is the batch_index of a listed batch, or -1 when none got through. A
 * report without errors lists all batch_size batches and names the last one as the last successful.
 * (k8s-inventory may note an error on a batch that then got through to the default account, so with errors the last
 * successful batch is not derived from the error fields.)
 */
export function healthReportConsistency(body: unknown): Violation[] {
  const out: Violation[] = [];
  const data = isObject(body) && isObject(body.health_data) ? body.health_data : undefined;
  const reports = data !== undefined && isObject(data.account_k8s_inventory_reports) ? data.account_k8s_inventory_reports : {};
  for (const [account, info] of Object.entries(reports)) {
    if (!isObject(info) || !Array.isArray(info.batches) || typeof info.batch_size !== 'number') continue;
    const at = `$.health_data.account_k8s_inventory_reports[${JSON.stringify(account)}]`;
    const batches = info.batches.filter(isObject);
    if (info.account_name !== account) out.push({ path: `${at}.account_name`, message: `must name the account it is filed under (${account}), got ${JSON.stringify(info.account_name)}` });
    if (batches.length > info.batch_size) out.push({ path: `${at}.batches`, message: `lists ${batches.length} batches but batch_size is ${info.batch_size}` });
    batches.forEach((b, i) => {
      if (b.batch_index !== i + 1)
        out.push({ path: `${at}.batches[${i}].batch_index`, message: `must be ${i + 1} (batches are numbered from 1, in the order sent), got ${JSON.stringify(b.batch_index)}` });
    });
    const failed = batches.filter((b) => typeof b.error === 'string' && b.error !== '').length;
    if (info.has_errors !== failed > 0) out.push({ path: `${at}.has_errors`, message: `must be ${failed > 0} (${failed} of the listed batches carry an error)` });
    const last = info.last_successful_index;
    if (failed === 0) {
      if (batches.length !== info.batch_size) out.push({ path: `${at}.batches`, message: `must list every batch sent: ${batches.length} listed, batch_size ${info.batch_size}, none failed` });
      if (last !== info.batch_size) out.push({ path: `${at}.last_successful_index`, message: `must be ${info.batch_size} (every batch got through), got ${JSON.stringify(last)}` });
    } else if (last !== -1 && !batches.some((b) => b.batch_index === last)) {
      out.push({ path: `${at}.last_successful_index`, message: `must be -1 or the batch_index of a listed batch, got ${JSON.stringify(last)}` });
    }
  }
  return out;
}

/** The operations, keyed by operationId. */
export const OPERATIONS: readonly OperationContract[] = [
  { operationId: 'ping', method: 'GET', path: '/v2/', success: { 200: { type: 'string' } } },
  { operationId: 'version_check', method: 'GET', path: '/v2/version', success: { 200: S.ServiceVersion } },
  { operationId: 'health_check', method: 'GET', path: '/v2/health', success: { 200: null } },
  {
    operationId: 'get_oauth_token',
    method: 'POST',
    path: '/v2/oauth/token',
    body: { media: 'application/x-www-form-urlencoded', schema: S.TokenRequestForm, required: false },
    success: { 200: S.TokenResponse },
  },
  {
    operationId: 'revoke_oauth_token',
    method: 'POST',
    path: '/v2/oauth/revoke',
    body: { media: 'application/x-www-form-urlencoded', schema: { type: 'object', properties: { token: str, token_type_hint: { type: 'string', enum: ['refresh_token'] } } }, required: false },
    success: { 200: null },
  },
  {
    operationId: 'add_image',
    method: 'POST',
    path: '/v2/images',
    query: { force: { schema: bool }, auto_subscribe: { schema: bool } },
    body: { media: 'application/json', schema: S.ImageAnalysisRequest, required: true },
    success: { 200: S.AnchoreImage },
    rules: oneImageSource,
  },
  {
    operationId: 'list_images',
    method: 'GET',
    path: '/v2/images',
    query: {
      image_id: { schema: str },
      history: { schema: bool },
      full_tag: { schema: str },
      image_status: { schema: { type: 'string', enum: ['all', 'active', 'deleting'] } },
      analysis_status: { schema: { type: 'string', enum: ['not_analyzed', 'analyzed', 'analyzing', 'analysis_failed'] } },
      analyzed_since: { schema: { type: 'string', format: 'datetime' } },
    },
    success: { 200: S.AnchoreImageList },
  },
  { operationId: 'get_image', method: 'GET', path: '/v2/images/{image_digest}', pathParams: { image_digest: digestParam }, success: { 200: S.AnchoreImage } },
  {
    operationId: 'get_image_vulnerability_types',
    method: 'GET',
    path: '/v2/images/{image_digest}/vuln',
    pathParams: { image_digest: digestParam },
    success: { 200: S.VulnerabilityTypes },
  },
  {
    operationId: 'get_image_vulnerabilities_by_digest',
    method: 'GET',
    path: '/v2/images/{image_digest}/vuln/{vuln_type}',
    pathParams: { image_digest: digestParam, vuln_type: { type: 'string', enum: ['os', 'non-os', 'all'] } },
    query: { force_refresh: { schema: bool }, include_vuln_description: { schema: bool }, vendor_only: { schema: bool }, base_digest: { schema: str } },
    success: { 200: S.ImagePackageVulnerabilityResponse },
  },
  {
    operationId: 'get_image_policy_check_by_digest',
    method: 'GET',
    path: '/v2/images/{image_digest}/check',
    pathParams: { image_digest: digestParam },
    query: {
      policy_id: { schema: str },
      tag: { schema: str, required: true },
      detail: { schema: bool },
      history: { schema: bool },
      interactive: { schema: bool },
      base_digest: { schema: str },
    },
    success: { 200: S.PolicyEvaluation },
  },
  { operationId: 'list_policies', method: 'GET', path: '/v2/policies', query: { detail: { schema: bool } }, success: { 200: S.PolicyList } },
  { operationId: 'get_policy', method: 'GET', path: '/v2/policies/{policy_id}', query: { detail: { schema: bool } }, success: { 200: S.PolicyRecord } },
  {
    operationId: 'post_kubernetes_inventory',
    method: 'POST',
    path: '/v2/kubernetes-inventory',
    body: { media: 'application/json', schema: S.KubernetesInventory, required: true },
    // 201 in spec 2.13.0 (the contract notes, §7); the 2.10.2 document declared 204. Both without a body.
    success: { 201: null, 204: null },
  },
  {
    operationId: 'register_integration',
    method: 'POST',
    path: '/v2/system/integrations/registration',
    body: { media: 'application/json', schema: S.IntegrationRegister, required: true },
    success: { 200: S.Integration, 201: S.Integration },
  },
  {
    operationId: 'handle_health_report',
    method: 'POST',
    path: '/v2/system/integrations/{integration_uuid}/health-report',
    pathParams: { integration_uuid: S.UUID },
    body: { media: 'application/json', schema: S.HealthReport, required: true },
    success: { 201: null },
    rules: healthReportConsistency,
    source: 'consistency rules: what k8s-inventory sends (the spec gives only the field list)',
  },
];

/** operationId → contract. */
export const OPERATION_BY_ID: ReadonlyMap<string, OperationContract> = new Map(OPERATIONS.map((o) => [o.operationId, o]));
