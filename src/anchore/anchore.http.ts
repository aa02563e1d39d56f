import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { type BackoffPolicy, backoffDelay } from '../runtime/backoff.ts';
import { sleep } from '../runtime/clock.ts';
import { type Priority, Semaphore, TokenBucket } from '../runtime/limits.ts';
import type { Logger } from '../telemetry/logger.ts';
import type {
  AccountInventoryReportBody,
  AddImageRequest,
  AnalysisStatus,
  AnchoreApi,
  AnchoreImage,
  CapabilityReport,
  HealthReport,
  HealthReportBody,
  IntegrationRegistration,
  KubernetesInventory,
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
import { type AnchoreAuth, OAuthTokenManager, type TokenResponse, basicHeader } from './auth.ts';
import { AnchoreError, parseErrorBody } from './errors.ts';
import { parseAnchoreUrl } from './url.ts';
import { jsonInSlices } from '../runtime/cooperative.ts';
import { systemClock } from '../runtime/clock.ts';
import { formatTimestamp } from '../runtime/time.ts';

export interface AnchoreHttpConfig {
  /** Base URL, with or without a trailing `/v2` (checked by parseAnchoreUrl). */
  url: string;
  auth: AnchoreAuth;
  /** PEM CA bundle to verify Anchore's certificate (in addition to nothing: the system store is replaced). */
  caFile?: string;
  /** Disables TLS verification. Only by explicit opt-in; logged as a warning. */
  insecureSkipTlsVerify?: boolean;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number; requestMs?: number };
  retry?: { attempts?: number; backoff?: BackoffPolicy; maxRetryAfterMs?: number };
  concurrency?: number;
  ratePerSecond?: number;
  burst?: number;
  /**
   * Largest response body read (default 64 MiB). A larger one — or a body that never ends — fails the call with a
   * `protocol` error instead of growing the heap. Client option only; no setting exposes it.
   */
  maxResponseBytes?: number;
  userAgent?: string;
  log: Logger;
  /** Metrics hook, called once per HTTP attempt. `status` is 0 when no response arrived. */
  onRequest?: (e: { operation: string; status: number; durationMs: number; errorKind?: string }) => void;
}

interface CallOptions<T = unknown> {
  account?: string;
  query?: Record<string, string | boolean | undefined>;
  json?: unknown;
  /** A JSON body already serialised (large documents, serialised without blocking the event loop). */
  rawJson?: Buffer;
  form?: Record<string, string>;
  /** Skip auth (version, token endpoints). */
  anonymous?: boolean;
  /** The response has no body worth parsing (201 empty). */
  expectEmpty?: boolean;
  /**
   * Reads the parsed 2xx body into the domain type, throwing a `protocol` AnchoreError when it cannot. It runs inside
   * the attempt, so a malformed answer is retried and reported to onRequest as an error like any other failure.
   */
  read?: (body: unknown) => T;
}

interface Response<T = unknown> {
  status: number;
  body: T;
}

/** Operations the operator uses, as (method, path below /v2). Used by the capability check. */
export const REQUIRED_OPERATIONS = [
  'POST /images',
  'GET /images',
  'GET /images/{}',
  'POST /kubernetes-inventory',
] as const;
export const OPTIONAL_OPERATIONS = [
  'GET /images/{}/check',
  'GET /images/{}/vuln/{}',
  'GET /policies',
  'POST /system/integrations/registration',
  'POST /system/integrations/{}/health-report',
] as const;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Operations served first by the rate limiter and the concurrency limit (see #call). */
const URGENT_OPERATIONS = new Set(['add_image', 'post_kubernetes_inventory']);

/** Anchore V2 over HTTP with undici: one keep-alive Agent for the process, bounded concurrency and rate. */
export class AnchoreHttpClient implements AnchoreApi {
  readonly baseUrl: string;
  readonly #cfg: AnchoreHttpConfig;
  readonly #agent: Agent;
  readonly #sem: Semaphore;
  readonly #bucket: TokenBucket;
  readonly #tokens: OAuthTokenManager | undefined;
  readonly #attempts: number;
  readonly #backoff: BackoffPolicy;
  readonly #maxRetryAfterMs: number;
  readonly #requestMs: number;
  readonly #maxBytes: number;
  readonly #staticAuthHeader: string | undefined;

  constructor(cfg: AnchoreHttpConfig) {
    this.#cfg = cfg;
    this.baseUrl = parseAnchoreUrl(cfg.url);
    const t = cfg.timeouts ?? {};
    const connect: Record<string, unknown> = { timeout: t.connectMs ?? 5000 };
    if (cfg.caFile) connect['ca'] = readFileSync(cfg.caFile);
    if (cfg.insecureSkipTlsVerify) {
      connect['rejectUnauthorized'] = false;
      cfg.log.warn({ url: this.baseUrl }, 'TLS verification of Anchore is DISABLED (ANCHORE_INSECURE_SKIP_TLS_VERIFY); use only for testing');
    }
    if (this.baseUrl.startsWith('http:') && !isLoopback(this.baseUrl)) {
      cfg.log.warn({ url: this.baseUrl }, 'Anchore URL uses plain http: credentials travel unencrypted');
    }
    const concurrency = cfg.concurrency ?? 16;
    this.#agent = new Agent({
      connections: concurrency + 4,
      keepAliveTimeout: 30_000,
      headersTimeout: t.headersMs ?? 30_000,
      bodyTimeout: t.bodyMs ?? 30_000,
      connect,
    });
    this.#sem = new Semaphore(concurrency);
    // A quarter of the burst is kept for registration and the inventory (high priority): a sudden batch of new images
    // is sent at once even while polls and reads use the sustained rate.
    const burst = cfg.burst ?? 200;
    this.#bucket = new TokenBucket(cfg.ratePerSecond ?? 100, burst, systemClock, { highReserve: Math.floor(burst / 4) });
    this.#attempts = Math.max(1, cfg.retry?.attempts ?? 4);
    this.#backoff = cfg.retry?.backoff ?? { baseMs: 250, maxMs: 5000, jitter: 1 };
    this.#maxRetryAfterMs = cfg.retry?.maxRetryAfterMs ?? 30_000;
    this.#requestMs = t.requestMs ?? 60_000;
    this.#maxBytes = cfg.maxResponseBytes ?? 64 * 1024 * 1024;
    const auth = cfg.auth;
    if (auth.type === 'oauth') {
      this.#tokens = new OAuthTokenManager(auth, (form) => this.#fetchToken(form));
    } else {
      this.#staticAuthHeader =
        auth.type === 'apikey' ? basicHeader('_api_key', auth.key) : basicHeader(auth.username, auth.password);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async version(): Promise<ServerVersion> {
    const read = (b: unknown): Record<string, unknown> => asObject(b, 'version_check');
    let res: Response<Record<string, unknown>>;
    try {
      res = await this.#call('version_check', 'GET', '/v2/version', { anonymous: true, read });
    } catch (err) {
      // k8s-inventory reads /version at the root; some deployments only route that one.
      if (!(err instanceof AnchoreError && err.kind === 'not-found')) throw err;
      res = await this.#call('version_check', 'GET', '/version', { anonymous: true, read });
    }
    const o = res.body;
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

  async capabilities(): Promise<CapabilityReport> {
    let res: Response;
    try {
      res = await this.#call('openapi', 'GET', '/v2/openapi.json', {});
    } catch (err) {
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        return { specAvailable: false, missingRequired: [], missingOptional: [] };
      }
      throw err;
    }
    const ops = operationsInSpec(res.body);
    return {
      specAvailable: true,
      missingRequired: REQUIRED_OPERATIONS.filter((o) => !ops.has(o)),
      missingOptional: OPTIONAL_OPERATIONS.filter((o) => !ops.has(o)),
    };
  }

  async listImages(account: string): Promise<AnchoreImage[]> {
    const res = await this.#call('list_images', 'GET', '/v2/images', {
      account,
      query: { image_status: 'active' },
      read: (body) => {
        // V2 wraps the list in {items}; tolerate a bare array (V1 shape) as well.
        const items = Array.isArray(body) ? body : asObject(body, 'list_images')['items'];
        if (!Array.isArray(items)) throw protocolError('list_images', `"items" is ${describeValue(items)}, not an array of images`);
        return items;
      },
    });
    const out: AnchoreImage[] = [];
    let dropped = 0;
    let example: string | undefined;
    for (const item of res.body) {
      const r = parseImage(item);
      if (r.image) {
        out.push(r.image);
        if (r.unknownStatus !== undefined) this.#unknownStatus('list_images', r.image.image_digest, r.unknownStatus);
      } else {
        dropped++;
        example ??= r.problem;
      }
    }
    // One unreadable entry must not hide the others; the operator re-adds (idempotently) what it could not read.
    if (dropped) this.#cfg.log.warn({ operation: 'list_images', account, dropped, example }, 'Anchore listed images the operator cannot read; ignoring them');
    return out;
  }

  async getImage(account: string, digest: string): Promise<AnchoreImage> {
    assertDigest(digest, 'get_image');
    // V1 returned a one-element list.
    const res = await this.#call('get_image', 'GET', `/v2/images/${digest}`, { account, read: (b) => this.#readImage(Array.isArray(b) ? b[0] : b, 'get_image') });
    return res.body;
  }

  async addImage(account: string, req: AddImageRequest): Promise<AnchoreImage> {
    const source = req.digestPullString
      ? { digest: { pull_string: req.digestPullString, tag: req.tag } }
      : { tag: { pull_string: req.tag } };
    const body = { source, annotations: req.annotations ?? {}, image_type: 'docker' };
    const res = await this.#call('add_image', 'POST', '/v2/images', {
      account,
      json: body,
      query: { auto_subscribe: false, force: req.force ? true : undefined },
      read: (b) => this.#readImage(Array.isArray(b) ? b[0] : b, 'add_image'),
    });
    return res.body;
  }

  async postKubernetesInventory(account: string, inventory: KubernetesInventory): Promise<void> {
    // A 10,000-pod inventory is megabytes of JSON: serialised in slices, once for every attempt.
    const rawJson = await jsonInSlices(inventory as unknown as Record<string, unknown>);
    await this.#call('post_kubernetes_inventory', 'POST', '/v2/kubernetes-inventory', {
      account,
      rawJson,
      expectEmpty: true,
    });
  }

  async registerIntegration(account: string, reg: IntegrationRegistration): Promise<string> {
    const res = await this.#call('register_integration', 'POST', '/v2/system/integrations/registration', {
      account,
      json: reg,
      read: (b) => {
        const uuid = asObject(b, 'register_integration')['uuid'];
        if (typeof uuid !== 'string' || !uuid) throw protocolError('register_integration', 'response has no uuid');
        return uuid;
      },
    });
    return res.body;
  }

  async sendHealthReport(account: string, uuid: string, report: HealthReport): Promise<void> {
    await this.#call('handle_health_report', 'POST', `/v2/system/integrations/${encodeURIComponent(uuid)}/health-report`, {
      account,
      expectEmpty: true,
      json: healthReportBody(report, this.username, new Date(), crypto.randomUUID()),
    });
  }

  async listPolicies(account: string): Promise<PolicyRecord[]> {
    const res = await this.#call('list_policies', 'GET', '/v2/policies', {
      account,
      query: { detail: false },
      read: (b) => {
        // A bare array in V2; tolerate {items} too.
        const items = Array.isArray(b) ? b : asObject(b, 'list_policies')['items'];
        if (!Array.isArray(items)) throw protocolError('list_policies', 'expected an array of policies');
        return items;
      },
    });
    return res.body.map(toPolicy).filter((p): p is PolicyRecord => p !== undefined);
  }

  async getPolicy(account: string, policyId: string): Promise<PolicyRecord> {
    const res = await this.#call('get_policy', 'GET', `/v2/policies/${encodeURIComponent(policyId)}`, {
      account,
      query: { detail: false },
      read: (b) => {
        const p = toPolicy(Array.isArray(b) ? b[0] : b);
        if (!p) throw protocolError('get_policy', 'response is not a PolicyRecord');
        return p;
      },
    });
    return res.body;
  }

  async checkImage(account: string, digest: string, tag: string, policyId?: string): Promise<PolicyCheck> {
    assertDigest(digest, 'get_image_policy_check_by_digest');
    const res = await this.#call('get_image_policy_check_by_digest', 'GET', `/v2/images/${digest}/check`, {
      account,
      query: { tag, policy_id: policyId, detail: true, interactive: true },
      read: (b) => {
        const check = readPolicyCheck(b, digest, tag);
        if (typeof check === 'string') throw protocolError('get_image_policy_check_by_digest', check);
        return check;
      },
    });
    return res.body;
  }

  async vulnerabilities(account: string, digest: string): Promise<Vulnerability[]> {
    assertDigest(digest, 'get_image_vulnerabilities_by_digest');
    const res = await this.#call('get_image_vulnerabilities_by_digest', 'GET', `/v2/images/${digest}/vuln/all`, {
      account,
      read: (b) => {
        const list = asObject(b, 'get_image_vulnerabilities_by_digest')['vulnerabilities'];
        if (!Array.isArray(list)) throw protocolError('get_image_vulnerabilities_by_digest', 'response has no vulnerabilities array');
        return list;
      },
    });
    const out: Vulnerability[] = [];
    for (const v of res.body) {
      if (!v || typeof v !== 'object') continue;
      const o = v as Record<string, unknown>;
      const sev = typeof o['severity'] === 'string' ? normaliseSeverity(o['severity']) : 'Unknown';
      const vuln: Vulnerability = { id: String(o['vuln'] ?? ''), severity: sev, package: String(o['package'] ?? o['package_name'] ?? '') };
      if (typeof o['fix'] === 'string' && o['fix'] && o['fix'] !== 'None') vuln.fix = o['fix'];
      out.push(vuln);
    }
    return out;
  }

  async reportMetrics(account: string): Promise<ReportMetricInfo[]> {
    const out: ReportMetricInfo[] = [];
    await this.#graphqlPages(
      account,
      'query Metrics($nextToken: String) { metrics(nextToken: $nextToken) { pageInfo { nextToken count } results { id name description metricType } } }',
      {},
      'metrics',
      (r) => {
        if (typeof r['id'] === 'string') out.push({ id: r['id'], name: String(r['name'] ?? r['id']), metricType: String(r['metricType'] ?? '') });
      },
    );
    return out;
  }

  async reportMetricData(account: string, metricId: string, start: Date, end: Date): Promise<ReportMetricPoint[]> {
    const out: ReportMetricPoint[] = [];
    const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, '');
    await this.#graphqlPages(
      account,
      'query MetricData($filter: MetricDataFilter, $nextToken: String) { metricData(filter: $filter, nextToken: $nextToken) { pageInfo { nextToken count } results { collectedAt value } } }',
      { filter: { metricId, start: iso(start), end: iso(end) } },
      'metricData',
      (r) => {
        const v = typeof r['value'] === 'number' ? r['value'] : Number(r['value']);
        if (typeof r['collectedAt'] === 'string' && Number.isFinite(v)) out.push({ collectedAt: r['collectedAt'], value: v });
      },
    );
    return out;
  }

  /** Follows pageInfo.nextToken to the end (at most 1000 pages: a server that never stops is an error, not a loop). */
  async #graphqlPages(account: string, query: string, variables: Record<string, unknown>, field: string, each: (r: Record<string, unknown>) => void): Promise<void> {
    let nextToken: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const res = await this.#call('reports_graphql', 'POST', '/v2/reports/graphql', {
        account,
        json: { query, variables: { ...variables, nextToken } },
        read: (b) => {
          const body = asObject(b, 'reports_graphql');
          const errors = Array.isArray(body['errors']) ? (body['errors'] as Array<{ message?: unknown }>) : [];
          if (errors.length) {
            const msg = errors.map((e) => String(e?.message ?? 'error')).join('; ').slice(0, 300);
            throw new AnchoreError(/unknown metric/i.test(msg) ? 'not-found' : 'rejected', 'reports_graphql', `reports_graphql: ${msg}`);
          }
          const data = body['data'] && typeof body['data'] === 'object' ? ((body['data'] as Record<string, unknown>)[field] as Record<string, unknown> | null) : null;
          if (!data || typeof data !== 'object') throw protocolError('reports_graphql', `no data.${field} in the response`);
          return data;
        },
      });
      const data = res.body;
      for (const r of Array.isArray(data['results']) ? data['results'] : []) if (r && typeof r === 'object') each(r as Record<string, unknown>);
      const pageInfo = data['pageInfo'] as Record<string, unknown> | undefined;
      const token = pageInfo?.['nextToken'];
      if (typeof token !== 'string' || !token) return;
      nextToken = token;
    }
    throw protocolError('reports_graphql', 'more than 1000 pages; giving up');
  }

  get username(): string {
    const a = this.#cfg.auth;
    return a.type === 'apikey' ? '_api_key' : a.username;
  }

  async #fetchToken(form: Record<string, string>): Promise<TokenResponse> {
    const res = await this.#call('get_oauth_token', 'POST', '/v2/oauth/token', {
      form,
      anonymous: true,
      read: (b): TokenResponse => {
        const o = asObject(b, 'get_oauth_token');
        if (typeof o['access_token'] !== 'string') throw protocolError('get_oauth_token', 'token response has no access_token');
        return {
          access_token: o['access_token'],
          expires_in: typeof o['expires_in'] === 'number' ? o['expires_in'] : undefined,
          refresh_token: typeof o['refresh_token'] === 'string' ? o['refresh_token'] : undefined,
        };
      },
    });
    return res.body;
  }

  /** add_image and get_image must answer one readable image: its digest is what the operator records. */
  #readImage(raw: unknown, operation: string): AnchoreImage {
    const r = parseImage(raw);
    if (!r.image) throw protocolError(operation, r.problem ?? 'response is not an AnchoreImage');
    if (r.unknownStatus !== undefined) this.#unknownStatus(operation, r.image.image_digest, r.unknownStatus);
    return r.image;
  }

  readonly #warnedStatuses = new Set<string>();

  /** A newer Anchore may add analysis states: not final, so the image is polled again; said once per value. */
  #unknownStatus(operation: string, digest: string, value: string): void {
    if (this.#warnedStatuses.has(value) || this.#warnedStatuses.size >= 100) return;
    this.#warnedStatuses.add(value);
    this.#cfg.log.warn(
      { operation, digest, analysis_status: value.slice(0, 100) },
      'Anchore reported an analysis_status this operator does not know; treating it as not final and polling again',
    );
  }

  /** One logical call: retries transient failures with backoff, honours Retry-After, re-authenticates once on 401. */
  async #call<T = unknown>(operation: string, method: string, path: string, opts: CallOptions<T>): Promise<Response<T>> {
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      try {
        // Registering a new image and reporting the inventory are what users wait for; polls and reads queue behind.
        // The rate token is taken before a concurrency slot, so requests waiting for the rate never hold a slot.
        const priority: Priority = URGENT_OPERATIONS.has(operation) ? 'high' : 'normal';
        await this.#bucket.take(priority);
        return await this.#sem.run(() => this.#once(operation, method, path, opts), priority);
      } catch (err) {
        if (!(err instanceof AnchoreError)) throw err;
        if (err.kind === 'auth' && err.status === 401 && this.#tokens && !opts.anonymous && !reauthenticated) {
          reauthenticated = true;
          attempt--;
          continue;
        }
        if (!err.retryable || attempt + 1 >= this.#attempts) throw err;
        const retryAfterMs = (err.retryAfterSeconds ?? 0) * 1000;
        if (retryAfterMs > this.#maxRetryAfterMs) throw err; // let the caller's queue wait that long
        const delay = Math.max(retryAfterMs, backoffDelay(this.#backoff, attempt));
        this.#cfg.log.debug({ operation, attempt: attempt + 1, delayMs: delay, err: err.message }, 'retrying Anchore call');
        await sleep(delay);
      }
    }
  }

  async #once<T>(operation: string, method: string, path: string, opts: CallOptions<T>): Promise<Response<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.#cfg.userAgent ?? 'anchore-operator',
    };
    let token: string | undefined;
    if (!opts.anonymous) {
      if (this.#tokens) {
        token = await this.#tokens.token();
        headers['authorization'] = `Bearer ${token}`;
      } else if (this.#staticAuthHeader) {
        headers['authorization'] = this.#staticAuthHeader;
      }
    }
    if (opts.account) headers['x-anchore-account'] = opts.account;
    let body: string | Buffer | undefined;
    if (opts.rawJson !== undefined) {
      headers['content-type'] = 'application/json';
      body = opts.rawJson;
    } else if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(opts.form).toString();
    }
    const started = performance.now();
    let status = 0;
    let out: Response<T>;
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#requestMs),
      });
      status = res.statusCode;
      const ok = status >= 200 && status < 300;
      // An error answer too large to read is still classified by its status (and Retry-After), without its body.
      const declared = Number(res.headers['content-length']);
      if (declared > this.#maxBytes) {
        res.body.destroy();
        if (ok) throw protocolError(operation, `response body of ${declared} bytes (content-length) exceeds the ${formatBytes(this.#maxBytes)} limit (maxResponseBytes); not read`);
        throw classify(operation, status, '', res.headers['retry-after']);
      }
      let text: string;
      try {
        text = await readLimited(res.body, this.#maxBytes, operation);
      } catch (err) {
        if (!ok && err instanceof AnchoreError) throw classify(operation, status, '', res.headers['retry-after']);
        throw err;
      }
      const contentType = String(res.headers['content-type'] ?? '');
      if (!ok) {
        if (status === 401 && token) this.#tokens?.invalidate(token);
        throw classify(operation, status, text, res.headers['retry-after']);
      }
      const parsed = opts.expectEmpty || status === 204 ? undefined : parseJsonBody(text, contentType, operation);
      out = { status, body: opts.read ? opts.read(parsed) : (parsed as T) };
    } catch (err) {
      // Exactly one report per attempt: a 2xx whose body could not be read is an error, not a success.
      const e = err instanceof AnchoreError ? err : networkError(operation, err);
      this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started, errorKind: e.kind });
      throw e;
    }
    this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started });
    return out;
  }
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === 'localhost' || h.startsWith('127.') || h === '[::1]';
}

/** Reads at most `max` bytes; a longer (or endless) body is cut off there, the connection dropped. */
async function readLimited(body: AsyncIterable<Buffer> & { destroy?: (e?: Error) => void }, max: number, operation: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy?.();
      throw protocolError(operation, `response body exceeds the ${formatBytes(max)} limit (maxResponseBytes); stopped reading there`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
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

function parseJsonBody(text: string, contentType: string, operation: string): unknown {
  // A proxy's HTML login page answers 200; it must never be mistaken for data (k8s-inventory does the same check).
  if (!/json/i.test(contentType) && !/^\s*[[{"]/.test(text)) {
    throw protocolError(operation, `expected JSON but got ${contentType || 'no content type'} (a proxy or login page in front of Anchore?)`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw protocolError(operation, `response is not valid JSON (${text.length} bytes; truncated?)`);
  }
}

function protocolError(operation: string, message: string): AnchoreError {
  return new AnchoreError('protocol', operation, `${operation}: unexpected response: ${message}`);
}

function classify(operation: string, status: number, text: string, retryAfter: string | string[] | undefined): AnchoreError {
  const parsed = parseErrorBody(text);
  const said = parsed.message ? `: ${parsed.message}` : '';
  const opts = { status, detail: parsed.detail, retryAfterSeconds: parseRetryAfter(retryAfter) };
  if (status === 401) return new AnchoreError('auth', operation, `${operation}: Anchore rejected the credentials (401)${said}`, opts);
  if (status === 403) return new AnchoreError('auth', operation, `${operation}: permission denied (403)${said}`, opts);
  if (status === 404 && /user account not found/i.test(parsed.message ?? '')) {
    return new AnchoreError('account-not-found', operation, `${operation}: the Anchore account does not exist (404)${said}`, opts);
  }
  if (status === 404) return new AnchoreError('not-found', operation, `${operation}: not found (404)${said}`, opts);
  if (status === 405) return new AnchoreError('unsupported', operation, `${operation}: method not allowed (405)${said}`, opts);
  if (status === 429 || status >= 500) {
    return new AnchoreError('unavailable', operation, `${operation}: Anchore unavailable (${status})${said}`, opts);
  }
  return new AnchoreError('rejected', operation, `${operation}: Anchore rejected the request (${status})${said}`, opts);
}

function networkError(operation: string, err: unknown): AnchoreError {
  const e = err as { code?: string; name?: string; message?: string };
  const what = e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timed out' : (e.code ?? e.message ?? String(err));
  return new AnchoreError('unavailable', operation, `${operation}: cannot reach Anchore (${what})`, { cause: err });
}

/** Retry-After as seconds (delta-seconds or HTTP-date). */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim());
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

function asObject(body: unknown, operation: string): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw protocolError(operation, `expected a JSON object, got ${describeValue(body)}`);
  return body as Record<string, unknown>;
}

function assertDigest(digest: string, operation: string): void {
  if (!DIGEST_RE.test(digest)) throw new AnchoreError('rejected', operation, `${operation}: "${digest}" is not a sha256 digest`);
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
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) return { problem: `image_digest is ${describeValue(digest)}, not a sha256 digest` };
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
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
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
  return known ? { image: img } : { image: img, unknownStatus: status };
}

function toPolicy(raw: unknown): PolicyRecord | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o['policy_id'] !== 'string' || !o['policy_id']) return undefined;
  const p: PolicyRecord = { policy_id: o['policy_id'], name: typeof o['name'] === 'string' ? o['name'] : o['policy_id'], active: o['active'] === true };
  if (typeof o['last_updated'] === 'string') p.last_updated = o['last_updated'];
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
    for (const m of Object.keys(item as Record<string, unknown>)) {
      if (['get', 'post', 'put', 'delete', 'patch'].includes(m)) out.add(`${m.toUpperCase()} ${norm}`);
    }
  }
  return out;
}
