/**
 * How every Anchore call travels: one keep-alive undici Agent for the process (TLS per ANCHORE_CA_FILE and
 * ANCHORE_INSECURE_SKIP_TLS_VERIFY), bounded concurrency and rate, retries with backoff and Retry-After, a cap on
 * response size, credentials, and the mapping of every failure to an AnchoreError. It knows no endpoint: what to ask
 * and how to read the answer is the caller's (anchore.http.ts, decode.ts).
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { type BackoffPolicy, backoffDelay } from '../runtime/backoff.ts';
import { sleep, systemClock } from '../runtime/clock.ts';
import { type Priority, Semaphore, TokenBucket } from '../runtime/limits.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type AnchoreAuth, OAuthTokenManager, SecretFile, type TokenResponse, basicHeader } from './auth.ts';
import { ANCHORE_CLIENT_DEFAULTS, type CallLimits } from './anchore.port.ts';
import { readTokenResponse } from './decode.ts';
import { AnchoreError, parseErrorBody, protocolError, tlsError } from './errors.ts';
import { parseAnchoreUrl } from './url.ts';

export interface AnchoreTransportConfig {
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
  onRequest?: (e: AnchoreRequestEvent) => void;
}

/** One HTTP attempt, as the metrics and the reachability tracker see it. */
export interface AnchoreRequestEvent {
  operation: string;
  /** 0 when no response arrived. */
  status: number;
  durationMs: number;
  errorKind?: string;
  /** The attempt carried the operator's credentials (a 2xx then proves they are accepted). */
  authenticated?: boolean;
}

export interface CallOptions<T = unknown> extends CallLimits {
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

/** Operations served first by the rate limiter and the concurrency limit (see call). */
const URGENT_OPERATIONS = new Set(['add_image', 'post_kubernetes_inventory']);

export class AnchoreTransport {
  /** The normalised base URL (no trailing slash, no `/v2`); paths passed to call start with `/v2/` or `/`. */
  readonly baseUrl: string;
  readonly #cfg: AnchoreTransportConfig;
  readonly #agent: Agent;
  readonly #sem: Semaphore;
  readonly #bucket: TokenBucket;
  readonly #tokens: OAuthTokenManager | undefined;
  readonly #attempts: number;
  readonly #backoff: BackoffPolicy;
  readonly #maxRetryAfterMs: number;
  readonly #requestMs: number;
  readonly #maxBytes: number;
  #staticAuthHeader: string | undefined;
  /** The mounted Secret the password or key came from, read again when it changes. */
  readonly #secret: SecretFile | undefined;
  #secretSeen: string | undefined;

  constructor(cfg: AnchoreTransportConfig) {
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
    const concurrency = cfg.concurrency ?? ANCHORE_CLIENT_DEFAULTS.concurrency;
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
    const burst = cfg.burst ?? ANCHORE_CLIENT_DEFAULTS.burst;
    this.#bucket = new TokenBucket(cfg.ratePerSecond ?? ANCHORE_CLIENT_DEFAULTS.ratePerSecond, burst, systemClock, { highReserve: Math.floor(burst / 4) });
    this.#attempts = Math.max(1, cfg.retry?.attempts ?? 4);
    this.#backoff = cfg.retry?.backoff ?? { baseMs: 250, maxMs: 5000, jitter: 1 };
    this.#maxRetryAfterMs = cfg.retry?.maxRetryAfterMs ?? 30_000;
    this.#requestMs = t.requestMs ?? ANCHORE_CLIENT_DEFAULTS.requestTimeoutS * 1000;
    this.#maxBytes = cfg.maxResponseBytes ?? 64 * 1024 * 1024;
    const auth = cfg.auth;
    if (auth.secretFile) this.#secret = new SecretFile(auth.secretFile, auth.type === 'apikey' ? auth.key : auth.password);
    this.#secretSeen = this.#secret?.value();
    if (auth.type === 'oauth') {
      this.#tokens = new OAuthTokenManager(
        auth,
        (form) => this.#fetchToken(form),
        Date.now,
        () => this.#secret?.value() ?? auth.password,
      );
    } else {
      this.#staticAuthHeader = this.#basicHeader();
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  #basicHeader(): string {
    const auth = this.#cfg.auth;
    if (auth.type === 'apikey') return basicHeader('_api_key', this.#secret?.value() ?? auth.key);
    if (auth.type === 'basic') return basicHeader(auth.username, this.#secret?.value() ?? auth.password);
    return '';
  }

  /**
   * Follows a rotated Secret: when the file changed since the credentials in use were built, rebuild them (and drop
   * OAuth tokens the old password earned). `force`: read the file now (Anchore just answered 401). True when changed.
   */
  #followSecret(force: boolean): boolean {
    if (!this.#secret) return false;
    if (force) this.#secret.reload();
    const now = this.#secret.value();
    if (now === this.#secretSeen) return false;
    this.#secretSeen = now;
    if (this.#tokens) this.#tokens.reset();
    else this.#staticAuthHeader = this.#basicHeader();
    this.#cfg.log.info({ file: this.#secret.path }, 'Anchore credentials file changed; using the new credentials');
    return true;
  }

  /**
   * One logical call, answering the (read) 2xx body: retries transient failures with backoff, honours Retry-After,
   * re-authenticates once on 401. `operation` is the spec's operationId: it names the call in errors and metrics.
   */
  async call<T = unknown>(operation: string, method: string, path: string, opts: CallOptions<T>): Promise<T> {
    let reauthenticated = false;
    const attempts = Math.max(1, Math.min(opts.attempts ?? this.#attempts, this.#attempts));
    for (let attempt = 0; ; attempt++) {
      if (opts.deadlineAt !== undefined && Date.now() >= opts.deadlineAt) {
        throw new AnchoreError('unavailable', operation, `${operation}: the caller's deadline passed before Anchore answered`, {});
      }
      try {
        // Registering a new image and reporting the inventory are what users wait for; polls and reads queue behind.
        // The rate token is taken before a concurrency slot, so requests waiting for the rate never hold a slot.
        const priority: Priority = URGENT_OPERATIONS.has(operation) ? 'high' : 'normal';
        await this.#bucket.take(priority);
        return await this.#sem.run(() => this.#once(operation, method, path, opts), priority);
      } catch (err) {
        if (!(err instanceof AnchoreError)) throw err;
        // A 401 may mean the Secret was rotated under us: read it again, and retry once with what it holds now.
        if (credentialsRefused(err) && !opts.anonymous && !reauthenticated && (this.#followSecret(true) || this.#tokens)) {
          reauthenticated = true;
          attempt--;
          continue;
        }
        if (!err.retryable || attempt + 1 >= attempts) throw err;
        const retryAfterMs = (err.retryAfterSeconds ?? 0) * 1000;
        if (retryAfterMs > this.#maxRetryAfterMs) throw err; // let the caller's queue wait that long
        const delay = Math.max(retryAfterMs, backoffDelay(this.#backoff, attempt));
        // A retry that could not finish before the caller's deadline only adds load: the caller has given up by then.
        if (opts.deadlineAt !== undefined && Date.now() + delay >= opts.deadlineAt) throw err;
        this.#cfg.log.debug({ operation, attempt: attempt + 1, delayMs: delay, err: err.message }, 'retrying Anchore call');
        await sleep(delay);
      }
    }
  }

  async #fetchToken(form: Record<string, string>): Promise<TokenResponse> {
    return this.call('get_oauth_token', 'POST', '/v2/oauth/token', {
      form,
      anonymous: true,
      read: (b) => readTokenResponse(b, 'get_oauth_token'),
    });
  }

  async #once<T>(operation: string, method: string, path: string, opts: CallOptions<T>): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.#cfg.userAgent ?? 'anchore-operator',
    };
    let token: string | undefined;
    if (!opts.anonymous) {
      this.#followSecret(false);
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
    let out: T;
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(opts.deadlineAt === undefined ? this.#requestMs : Math.max(1, Math.min(this.#requestMs, opts.deadlineAt - Date.now()))),
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
      out = opts.read ? opts.read(parsed) : (parsed as T);
    } catch (err) {
      // Exactly one report per attempt: a 2xx whose body could not be read is an error, not a success.
      const e = err instanceof AnchoreError ? err : networkError(operation, err);
      this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started, errorKind: e.kind, authenticated: !opts.anonymous || opts.form !== undefined });
      throw e;
    }
    this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started, authenticated: !opts.anonymous || opts.form !== undefined });
    return out;
  }
}

/** Anchore refused the credentials themselves: a 401, or the token endpoint refusing the password grant. */
export function credentialsRefused(err: AnchoreError): boolean {
  return err.kind === 'auth' && (err.status === 401 || err.operation === 'get_oauth_token');
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
  const tls = tlsError(operation, err);
  if (tls) return tls;
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
