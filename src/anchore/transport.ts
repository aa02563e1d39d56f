/**
 * How every Anchore call travels: one keep-alive undici Agent for the process (TLS per ANCHORE_CA_FILE and
 * ANCHORE_INSECURE_SKIP_TLS_VERIFY; through the proxy HTTPS_PROXY / HTTP_PROXY name unless NO_PROXY exempts Anchore),
 * bounded concurrency and rate, retries with backoff and Retry-After, caps on response size (per operation, and one
 * byte budget for all answers being read), credentials, and the mapping of every failure to an AnchoreError. It knows
 * no endpoint: what to ask and how to read the answer is the caller's (anchore.http.ts, decode.ts); only the size of
 * each operation's answer is known here (response-limits.ts).
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { Agent, type Dispatcher, ProxyAgent } from 'undici';
import { type BackoffPolicy, backoffDelay } from '../runtime/backoff.ts';
import { sleep, systemClock } from '../runtime/clock.ts';
import { timeoutSignal } from '../runtime/deadline.ts';
import { ByteBudget, ByteBudgetError, type ByteLease, type Priority, Semaphore, TokenBucket } from '../runtime/limits.ts';
import type { Logger } from '../telemetry/logger.ts';
import { type AnchoreAuth, OAuthTokenManager, SecretFile, type TokenResponse, basicHeader } from './auth.ts';
import { ANCHORE_CLIENT_DEFAULTS, type CallLimits } from './anchore.port.ts';
import { readTokenResponse } from './decode.ts';
import { AnchoreError, credentialsRefused, parseErrorBody, protocolError, tlsError } from './errors.ts';
import { type ProxyChoice, type ProxyEnv, proxyFor } from './proxy.ts';
import { DEFAULT_RESPONSE_BUDGET, ERROR_BODY_LIMIT, formatBytes, responseLimit } from './response-limits.ts';
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
   * Caps every operation's answer at this many bytes where that is below the operation's own limit (RESPONSE_LIMITS);
   * for tests. A larger body — or one that never ends — fails the call with a `protocol` error instead of growing the
   * heap.
   */
  maxResponseBytes?: number;
  /**
   * The byte budget shared by every answer being read at once (default: one budget of DEFAULT_RESPONSE_BUDGET for the
   * whole process, shared by every client). Client option only; no setting exposes it.
   */
  responseBudget?: ByteBudget;
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and their lower-case forms) are read; default process.env. */
  proxyEnv?: ProxyEnv;
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

let processBudget: ByteBudget | undefined;

/** The response budget every client of this process shares unless given its own. */
export function processResponseBudget(): ByteBudget {
  processBudget ??= new ByteBudget(DEFAULT_RESPONSE_BUDGET);
  return processBudget;
}

export class AnchoreTransport {
  /** The normalised base URL (no trailing slash, no `/v2`); paths passed to call start with `/v2/` or `/`. */
  readonly baseUrl: string;
  /** baseUrl parsed once: each call's path is appended to it without parsing a URL per call (requestTarget). */
  readonly #base: UrlBase;
  readonly #cfg: AnchoreTransportConfig;
  readonly #agent: Dispatcher;
  /** How calls reach Anchore: directly, or through which proxy (never its credentials). */
  readonly proxy: ProxyChoice;
  readonly #proxySecrets: string[];
  readonly #budget: ByteBudget;
  readonly #sem: Semaphore;
  readonly #bucket: TokenBucket;
  readonly #tokens: OAuthTokenManager | undefined;
  readonly #attempts: number;
  readonly #backoff: BackoffPolicy;
  readonly #maxRetryAfterMs: number;
  readonly #requestMs: number;
  readonly #maxBytes: number | undefined;
  #staticAuthHeader: string | undefined;
  /** The mounted Secret the password or key came from, read again when it changes. */
  readonly #secret: SecretFile | undefined;
  #secretSeen: string | undefined;

  constructor(cfg: AnchoreTransportConfig) {
    this.#cfg = cfg;
    this.baseUrl = parseAnchoreUrl(cfg.url);
    this.#base = urlBase(this.baseUrl);
    const t = cfg.timeouts ?? {};
    const connectMs = t.connectMs ?? 5000;
    // How Anchore's certificate is verified: the same whether the TLS session runs on a direct connection or inside a
    // proxy's CONNECT tunnel (the proxy never sees inside it).
    const tls: Record<string, unknown> = {};
    if (cfg.caFile) tls['ca'] = readFileSync(cfg.caFile);
    if (cfg.insecureSkipTlsVerify) {
      tls['rejectUnauthorized'] = false;
      cfg.log.warn({ url: this.baseUrl }, 'TLS verification of Anchore is DISABLED (ANCHORE_INSECURE_SKIP_TLS_VERIFY); use only for testing');
    }
    if (this.baseUrl.startsWith('http:') && !isLoopback(this.baseUrl)) {
      cfg.log.warn({ url: this.baseUrl }, 'Anchore URL uses plain http: credentials travel unencrypted');
    }
    const concurrency = cfg.concurrency ?? ANCHORE_CLIENT_DEFAULTS.concurrency;
    const pool = { connections: concurrency + 4, keepAliveTimeout: 30_000, headersTimeout: t.headersMs ?? 30_000, bodyTimeout: t.bodyMs ?? 30_000 };
    this.proxy = proxyFor(this.baseUrl, cfg.proxyEnv ?? process.env);
    if (this.proxy.kind === 'proxy') {
      const p = this.proxy.url;
      this.#proxySecrets = [p.password, safeDecode(p.password), p.username && p.password ? Buffer.from(`${safeDecode(p.username)}:${safeDecode(p.password)}`).toString('base64') : '']
        .filter((x) => x.length >= 3)
        .sort((a, b) => b.length - a.length);
      // The proxy URL's user:password become its Proxy-Authorization header (undici); only scheme://host:port is logged.
      this.#agent = new ProxyAgent({ uri: p.href, ...pool, connectTimeout: connectMs, requestTls: { ...tls, timeout: connectMs } });
      cfg.log.info({ proxy: this.proxy.display, variable: this.proxy.variable, proxyAuth: p.username !== '' }, 'Anchore calls go through a proxy');
    } else {
      this.#proxySecrets = [];
      this.#agent = new Agent({ ...pool, connect: { ...tls, timeout: connectMs } });
      if (this.proxy.kind === 'bypass') {
        cfg.log.info({ variable: this.proxy.variable, noProxyEntry: this.proxy.entry }, 'NO_PROXY exempts the Anchore host: Anchore calls go directly, not through the proxy');
      }
    }
    this.#budget = cfg.responseBudget ?? processResponseBudget();
    this.#sem = new Semaphore(concurrency);
    // A quarter of the burst is kept for registration and the inventory (high priority): a sudden batch of new images
    // is sent at once even while polls and reads use the sustained rate.
    const burst = cfg.burst ?? ANCHORE_CLIENT_DEFAULTS.burst;
    this.#bucket = new TokenBucket(cfg.ratePerSecond ?? ANCHORE_CLIENT_DEFAULTS.ratePerSecond, burst, systemClock, { highReserve: Math.floor(burst / 4) });
    this.#attempts = Math.max(1, cfg.retry?.attempts ?? 4);
    this.#backoff = cfg.retry?.backoff ?? { baseMs: 250, maxMs: 5000, jitter: 1 };
    this.#maxRetryAfterMs = cfg.retry?.maxRetryAfterMs ?? 30_000;
    this.#requestMs = t.requestMs ?? ANCHORE_CLIENT_DEFAULTS.requestTimeoutS * 1000;
    this.#maxBytes = cfg.maxResponseBytes;
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
    // How much of an answer without a content-length an earlier attempt had read when it gave its share of the budget
    // back (and how often that happened): the next attempt takes that much before reading, so it is not caught in the
    // same standstill again. A standstill in this process is not Anchore failing: it costs no attempt (at most 8 times).
    const reserve = { bytes: 0, gaveBack: 0 };
    let gaveBackSeen = 0;
    for (let attempt = 0; ; attempt++) {
      if (opts.deadlineAt !== undefined && Date.now() >= opts.deadlineAt) {
        throw new AnchoreError('unavailable', operation, `${operation}: the caller's deadline passed before Anchore answered`, {});
      }
      try {
        // Registering a new image and reporting the inventory are what users wait for; polls and reads queue behind.
        // The rate token is taken before a concurrency slot, so requests waiting for the rate never hold a slot.
        const priority: Priority = URGENT_OPERATIONS.has(operation) ? 'high' : 'normal';
        await this.#bucket.take(priority);
        return await this.#sem.run(() => this.#once(operation, method, path, opts, reserve), priority);
      } catch (err) {
        if (!(err instanceof AnchoreError)) throw err;
        // A 401 may mean the Secret was rotated under us: read it again, and retry once with what it holds now.
        if (credentialsRefused(err) && !opts.anonymous && !reauthenticated && (this.#followSecret(true) || this.#tokens)) {
          reauthenticated = true;
          attempt--;
          continue;
        }
        if (reserve.gaveBack > gaveBackSeen) {
          gaveBackSeen = reserve.gaveBack;
          if (reserve.gaveBack <= 8) attempt--;
        }
        if (!err.retryable || attempt + 1 >= attempts) throw err;
        const retryAfterMs = (err.retryAfterSeconds ?? 0) * 1000;
        if (retryAfterMs > this.#maxRetryAfterMs) throw err; // let the caller's queue wait that long
        const delay = Math.max(retryAfterMs, backoffDelay(this.#backoff, Math.max(0, attempt)));
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

  async #once<T>(operation: string, method: string, path: string, opts: CallOptions<T>, reserve: { bytes: number; gaveBack: number } = { bytes: 0, gaveBack: 0 }): Promise<T> {
    const target = requestTarget(this.#base, path, opts.query);
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
    // Every byte of the answer held in memory is counted in the process-wide budget until the attempt is over (read,
    // parsed and decoded): the sum over all answers being read never exceeds it, whatever Anchore sends.
    const lease = this.#budget.lease();
    // The attempt's time limit, dropped as soon as the attempt is over (see timeoutSignal).
    const timeout = timeoutSignal(opts.deadlineAt === undefined ? this.#requestMs : Math.max(1, Math.min(this.#requestMs, opts.deadlineAt - Date.now())));
    const signal = timeout.signal;
    try {
      // The agent's own request(): what undici's top-level request(url, { dispatcher }) calls, minus parsing a URL.
      const res = await this.#agent.request({ origin: target.origin, path: target.path, method, headers, body, signal });
      status = res.statusCode;
      const ok = status >= 200 && status < 300;
      const limit = Math.min(responseLimit(operation), this.#maxBytes ?? Infinity, ok ? Infinity : ERROR_BODY_LIMIT);
      const limitName = this.#maxBytes !== undefined && this.#maxBytes < responseLimit(operation) ? '(maxResponseBytes)' : `for ${operation}`;
      const cl = res.headers['content-length'];
      const declared = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : undefined;
      // An error answer too large to read is still classified by its status (and Retry-After), without its body.
      if (declared !== undefined && declared > limit) {
        res.body.destroy();
        if (ok) throw protocolError(operation, `response body of ${declared} bytes (content-length) exceeds the ${formatBytes(limit)} limit ${limitName}; not read`);
        throw classify(operation, status, '', res.headers['retry-after']);
      }
      let text: string;
      try {
        text = await this.#readBody(res.body, { operation, limit, limitName, declared, lease, signal, reserve });
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
      const e = err instanceof AnchoreError ? err : networkError(operation, err, this.#proxySecrets);
      this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started, errorKind: e.kind, authenticated: !opts.anonymous || opts.form !== undefined });
      throw e;
    } finally {
      timeout.clear();
      lease.release();
    }
    this.#cfg.onRequest?.({ operation, status, durationMs: performance.now() - started, authenticated: !opts.anonymous || opts.form !== undefined });
    return out;
  }

  /**
   * Reads a body of at most `limit` bytes as UTF-8 text, holding each byte in `lease` before keeping it. With a
   * content-length the whole answer is taken from the budget first (it waits, reading nothing, until it fits) and read
   * into one buffer; without one the budget grows chunk by chunk (each chunk decoded at once, so no second copy is
   * made at the end), and a chunk that does not fit waits (the socket is not read meanwhile). A longer (or endless)
   * body is cut off at the limit and the connection dropped.
   */
  async #readBody(
    body: ReadableBody,
    o: { operation: string; limit: number; limitName: string; declared: number | undefined; lease: ByteLease; signal: AbortSignal; reserve: { bytes: number; gaveBack: number } },
  ): Promise<string> {
    let size = 0;
    const take = async (bytes: number): Promise<void> => {
      try {
        await o.lease.take(bytes, o.signal);
      } catch (err) {
        body.destroy?.();
        const budget = formatBytes(this.#budget.limit);
        if (err instanceof ByteBudgetError && err.reason === 'too-large') {
          const what = o.declared === undefined ? 'response body exceeds' : `response body of ${o.declared} bytes (content-length) exceeds`;
          throw protocolError(o.operation, `${what} the whole ${budget} response budget (shared by all answers being read at once); not read`);
        }
        if (err instanceof ByteBudgetError) {
          o.reserve.bytes = Math.min(this.#budget.limit, Math.max(o.reserve.bytes, size));
          o.reserve.gaveBack++;
          throw protocolError(o.operation, `the ${budget} response budget is held by other answers being read, all waiting for more; this one gave its share back (retried)`);
        }
        if (o.signal.aborted) throw protocolError(o.operation, `timed out waiting for room in the ${budget} response budget (answers being read by other calls)`);
        throw err;
      }
    };
    const tooLong = (): AnchoreError => {
      body.destroy?.();
      return protocolError(o.operation, `response body exceeds the ${formatBytes(o.limit)} limit ${o.limitName}; stopped reading there`);
    };
    if (o.declared !== undefined) {
      await take(o.declared);
      return readDeclared(body, o.declared, tooLong);
    }
    const decoder = new StringDecoder('utf8');
    const parts: string[] = [];
    let taken = Math.min(o.reserve.bytes, o.limit);
    await take(taken);
    for await (const chunk of body) {
      size += chunk.length;
      if (size > o.limit) throw tooLong();
      if (size > taken) {
        await take(size - taken);
        taken = size;
      }
      parts.push(decoder.write(chunk));
    }
    parts.push(decoder.end());
    return parts.join('');
  }
}

/** Path characters URL parsing keeps as they are (RFC 3986 unreserved, sub-delims, ':', '@', '/', '%'). */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
/** Segments URL parsing resolves or rewrites: '.', '..' and their percent-encoded forms. */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$)/i;

/** A base URL (parseAnchoreUrl's) parsed once: its origin and its path ('' for none). */
export interface UrlBase {
  readonly baseUrl: string;
  readonly origin: string;
  readonly basePath: string;
}

export function urlBase(baseUrl: string): UrlBase {
  const u = new URL(baseUrl);
  return { baseUrl, origin: u.origin, basePath: u.pathname === '/' ? '' : u.pathname };
}

/**
 * Where a call goes: the origin and path (with the query) that `new URL(baseUrl + path)`, with each defined `query`
 * entry set on its searchParams, would give (what undici's top-level request() sends for that URL). A path of plain URL
 * characters without dot segments (every path this client builds: fixed segments, digests, encodeURIComponent'd ids)
 * is one URL parsing leaves as it is, so it is appended as it is; anything else goes through URL.
 */
export function requestTarget(base: UrlBase, path: string, query?: Record<string, string | boolean | undefined>): { origin: string; path: string } {
  let pathname: string;
  let origin = base.origin;
  if (PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path)) {
    pathname = base.basePath + path;
  } else {
    const u = new URL(base.baseUrl + path);
    if (u.search || u.hash) {
      // Not a path this client builds: URL's full treatment of it.
      for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
      return { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
    }
    origin = u.origin;
    pathname = u.pathname;
  }
  let search = '';
  if (query) {
    const params = new URLSearchParams();
    for (const k of Object.keys(query)) {
      const v = query[k];
      if (v !== undefined) params.set(k, String(v));
    }
    search = params.toString();
  }
  return { origin, path: search ? `${pathname}?${search}` : pathname };
}

/** An answer's body (undici's is a stream.Readable): what #readBody uses of it. */
type ReadableBody = AsyncIterable<Buffer> & Pick<Readable, 'on' | 'off' | 'destroy' | 'destroyed' | 'errored'>;

/**
 * The whole of a body of `declared` bytes (its content-length) as UTF-8 text, read into one buffer of that size as
 * `for await (const chunk of body)` would read it, with its errors: the stream's own error (an abort's reason, a socket
 * or body timeout, also one that came while the budget was awaited), a premature close as ERR_STREAM_PREMATURE_CLOSE,
 * and `tooLong()` for a byte past `declared`. Listeners instead of an async iterator: no iterator, end-of-stream watcher
 * or promise per chunk on every Anchore answer.
 */
export function readDeclared(body: ReadableBody, declared: number, tooLong: () => Error): Promise<string> {
  // Torn down before it was read (nothing was read from it yet, so it cannot have ended); its 'error' event may still be
  // on its way, and is listened to as the iterator would.
  if (body.errored || body.destroyed) {
    body.on('error', noop);
    return Promise.reject(body.errored ?? prematureClose());
  }
  return new Promise<string>((resolve, reject) => {
    const buf = Buffer.allocUnsafe(declared);
    let off = 0;
    let settled = false;
    function settle(err: Error | undefined, text?: string): void {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      // A later error (the stream torn down after tooLong) has a listener, as the iterator's would.
      if (err !== undefined) body.on('error', noop);
      if (err === undefined) resolve(text as string);
      else reject(err);
    }
    function onData(chunk: Buffer): void {
      if (settled) return;
      if (off + chunk.length > declared) {
        settle(tooLong());
        return;
      }
      chunk.copy(buf, off);
      off += chunk.length;
    }
    function onEnd(): void {
      settle(undefined, buf.toString('utf8', 0, off));
    }
    function onError(err: Error): void {
      settle(err);
    }
    function onClose(): void {
      settle(prematureClose());
    }
    body.on('error', onError);
    body.on('end', onEnd);
    body.on('close', onClose);
    body.on('data', onData);
  });
}

function noop(): void {}

/** What a stream's async iterator throws when the stream closes before its end (Node's ERR_STREAM_PREMATURE_CLOSE). */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === 'localhost' || h.startsWith('127.') || h === '[::1]';
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
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

function networkError(operation: string, err: unknown, secrets: readonly string[] = []): AnchoreError {
  const tls = tlsError(operation, err);
  if (tls) return tls;
  const e = err as { code?: string; name?: string; message?: string };
  const proxyStatus = /^Proxy response \((\d+)\) !== 200/.exec(e.message ?? '')?.[1];
  let what = e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timed out' : (e.code ?? e.message ?? String(err));
  if (proxyStatus === '407') what = 'the proxy answered 407 Proxy Authentication Required: check the user and password in HTTPS_PROXY / HTTP_PROXY';
  else if (proxyStatus) what = `the proxy refused to open a tunnel to Anchore (${proxyStatus}): check the proxy's allow-list and NO_PROXY`;
  // Never let a proxy password reach a message (and so a log line), whatever the error says.
  for (const s of secrets) what = what.split(s).join('***');
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
