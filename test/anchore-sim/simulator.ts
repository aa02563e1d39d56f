// The HTTP(S) server of the simulator: dispatch, auth and account scoping, faults, the request log, and the
// programmatic AnchoreSimulator handle that tests hold.
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { resolveConfig } from './config.ts';
import { checkRequest, checkResponse, describeViolations } from './contract/contract.ts';
import { OPERATION_BY_ID, type OperationContract } from './contract/operations.ts';
import { handleControl } from './control.ts';
import { SimulatorCore } from './core.ts';
import { ApiError, NOT_FOUND_DETAIL, ProblemError, problemBody } from './errors.ts';
import { type FaultDecision, swapTypes } from './faults.ts';
import { buildRoutes, compileRoutes, matchRoute } from './routes.ts';
import type { CompiledRoute, Reply, RouteContext } from './routes.ts';
import type { Principal } from './auth.ts';
import type { AnchoreSimulator, RecordedRequest, SimulatorOptions } from './types.ts';

/** Largest request body accepted (an inventory of 10,000 pods is a few MB). */
export const MAX_BODY_BYTES = 128 * 1024 * 1024;

const REQUEST_ID_RE = /^[a-z0-9-]{1,64}$/;

const LOGIN_PAGE =
  '<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>\n<body><h1>Sign in</h1>' +
  '<form method="post" action="/login"><input name="username"><input name="password" type="password">' +
  '<button type="submit">Sign in</button></form></body></html>\n';

/** What nginx answers a body larger than `client_max_body_size`. */
const PROXY_413_PAGE =
  '<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n' + '<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

const TRUNCATED_SOURCE = JSON.stringify({
  items: [{ image_digest: `sha256:${'0'.repeat(64)}`, analysis_status: 'analyzed', image_status: 'active', note: 'this body was cut in half by a simulated fault' }],
});

function mediaType(header: string | undefined): string {
  if (header === undefined) return '';
  const semi = header.indexOf(';');
  return (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses a body once, for both the request log and the handler. */
function parseBody(raw: Buffer, media: string): { value: unknown; jsonOk: boolean; form: Record<string, string> | undefined } {
  if (raw.length === 0) return { value: undefined, jsonOk: true, form: undefined };
  const text = raw.toString('utf8');
  if (media === 'application/x-www-form-urlencoded') {
    const form = Object.fromEntries(new URLSearchParams(text));
    return { value: form, jsonOk: false, form };
  }
  try {
    return { value: JSON.parse(text) as unknown, jsonOk: true, form: undefined };
  } catch {
    return { value: text, jsonOk: false, form: undefined };
  }
}

/**
 * The `hugeBodyBytes` fault: about `bytes` of a plausible image list, in 64 KiB chunks with backpressure and no
 * content-length. Stops early when the client hangs up or the simulator stops. Resolves with the bytes written.
 */
async function streamHugeBody(res: ServerResponse, bytes: number, stopped: () => boolean): Promise<number> {
  const entry = `{"image_digest":"sha256:${'0'.repeat(64)}","analysis_status":"analyzed","image_status":"active"},`;
  const chunk = Buffer.from(entry.repeat(Math.ceil((64 * 1024) / entry.length)));
  const head = '{"items":[';
  const tail = `${entry.slice(0, -1)}]}`;
  res.writeHead(200, { 'content-type': 'application/json' });
  let sent = 0;
  const gone = (): boolean => res.destroyed || res.writableEnded || stopped();
  const write = async (b: Buffer | string): Promise<void> => {
    sent += Buffer.byteLength(b);
    if (!res.write(b)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  };
  await write(head);
  while (!gone() && sent + chunk.length + tail.length <= bytes) await write(chunk);
  if (gone()) return sent;
  const rest = bytes - sent - tail.length;
  if (rest > 0) await write(' '.repeat(rest)); // JSON allows whitespace between elements
  if (!gone()) {
    sent += tail.length;
    res.end(tail);
  }
  return sent;
}

class SimServer {
  readonly core: SimulatorCore;
  private readonly routes: CompiledRoute[];
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly logLine: ((line: string) => void) | undefined;
  private stopped = false;
  /** API requests being served right now (control endpoints excluded). */
  private inFlight = 0;
  private handle: AnchoreSimulator | undefined;

  constructor(core: SimulatorCore, opts: SimulatorOptions) {
    this.core = core;
    this.routes = compileRoutes(buildRoutes(core));
    this.logLine = opts.log;
    const listener = (req: IncomingMessage, res: ServerResponse): void => {
      this.dispatch(req, res).catch((err: unknown) => {
        this.logLine?.(`internal error: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify(this.core.errors.body(500, 'Internal server error')));
        } else res.destroy();
      });
    };
    this.server = opts.tls === undefined ? createHttpServer(listener) : createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener);
  }

  setHandle(h: AnchoreSimulator): void {
    this.handle = h;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const time = Date.now();
    const started = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname;
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const raw = await readBody(req);

    if (path === '/_sim' || path.startsWith('/_sim/')) {
      if (raw === undefined) return this.send(res, { status: 413, json: { message: 'request body too large' } });
      let reply: Reply;
      try {
        reply = handleControl(this.handle!, this.core, method, path, query, raw);
      } catch (err) {
        reply = { status: 500, json: { message: (err as Error).message } };
      }
      return this.send(res, reply);
    }

    const seq = this.core.log.takeSeq();
    this.inFlight++;
    let done = false;
    const media = mediaType(headerValue(req.headers['content-type']));
    const parsed = raw === undefined ? { value: undefined, jsonOk: false, form: undefined } : parseBody(raw, media);
    const authorization = headerValue(req.headers.authorization);
    const requestedAccount = headerValue(req.headers['x-anchore-account']);
    const requestIdHeader = headerValue(req.headers['anchore-request-id']);
    const requestId = requestIdHeader !== undefined && REQUEST_ID_RE.test(requestIdHeader) ? requestIdHeader : undefined;
    const record: RecordedRequest = {
      seq,
      time,
      method,
      path,
      query,
      account: requestedAccount,
      user: this.core.auth.claimedUser(authorization),
      status: 0,
      body: parsed.value,
      durationMs: 0,
      inFlight: this.inFlight,
    };
    const finish = (status: number, note = ''): void => {
      if (!done) this.inFlight--;
      done = true;
      record.status = status;
      record.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      this.core.log.push(record, raw?.length ?? 0);
      this.logLine?.(`${method} ${path} -> ${status === 0 ? 'RESET' : status} ${record.durationMs.toFixed(1)}ms${record.account === undefined ? '' : ` account=${record.account}`}${note}`);
    };

    const decision: FaultDecision = this.core.faults.decide(method, path, time, raw === undefined ? Infinity : raw.length);
    if (decision.latencyMs > 0) {
      await this.sleep(decision.latencyMs);
      if (this.stopped) {
        this.inFlight--;
        return;
      }
    }
    switch (decision.action.kind) {
      case 'reset':
        req.socket.resetAndDestroy();
        return finish(0, ' [fault:reset]');
      case 'htmlLogin':
        this.send(res, { status: 200, text: LOGIN_PAGE, contentType: 'text/html; charset=utf-8' });
        return finish(200, ' [fault:htmlLogin]');
      case 'truncatedJson':
        this.send(res, { status: 200, text: TRUNCATED_SOURCE.slice(0, Math.floor(TRUNCATED_SOURCE.length / 2)), contentType: 'application/json' });
        return finish(200, ' [fault:truncatedJson]');
      case 'body': {
        const { status, body, contentType } = decision.action;
        this.send(res, { status, text: typeof body === 'string' ? body : JSON.stringify(body), contentType });
        return finish(status, ' [fault:body]');
      }
      case 'hugeBody': {
        const sent = await streamHugeBody(res, decision.action.bytes, () => this.stopped);
        return finish(200, ` [fault:hugeBody ${sent} bytes sent]`);
      }
      case 'tooLarge':
        this.send(res, { status: 413, text: PROXY_413_PAGE, contentType: 'text/html' });
        return finish(413, ' [fault:tooLarge]');
      case 'error': {
        const { status, retryAfterSeconds } = decision.action;
        const headers: Record<string, string> = retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) };
        this.send(res, { status, json: this.core.errors.body(status, `Simulated fault: HTTP ${status}`, { simulated_fault: true }, requestId), headers });
        return finish(status, ' [fault:error]');
      }
      case 'none':
      case 'wrongTypes':
        break;
    }

    let reply: Reply;
    if (raw === undefined) {
      reply = this.errorReply(new ApiError(413, 'Request body too large'), requestId);
    } else {
      let principal: Principal | undefined;
      let contract: OperationContract | undefined;
      try {
        const found = this.resolve(method, path);
        const route = found.route.def;
        if (route.auth) {
          principal = this.core.auth.authenticate(authorization);
          record.user = principal.username;
          record.account = requestedAccount ?? principal.account;
        }
        const account = principal === undefined ? '' : route.action === undefined ? principal.account : this.core.auth.resolveAccount(principal, requestedAccount, route.action);
        contract = this.core.config.strict && route.operationId !== undefined ? OPERATION_BY_ID.get(route.operationId) : undefined;
        if (contract !== undefined) {
          const form = media === 'application/x-www-form-urlencoded';
          const violations = checkRequest(contract, {
            params: found.params,
            query,
            contentType: media,
            bodyBytes: raw.length,
            body: parsed.value,
            parsed: form || parsed.jsonOk,
          });
          if (violations.length > 0) {
            this.core.recordViolation({ direction: 'request', operationId: contract.operationId, method, path, violations });
            // The framework answers a body of the wrong media type with 415, everything else with 400.
            const status = violations.some((v) => v.path === 'content-type') ? 415 : 400;
            throw new ApiError(status, `Request does not follow the Anchore API spec: ${describeViolations(violations)}`, { contract_violations: violations });
          }
        }
        const ctx: RouteContext = {
          method,
          path,
          params: found.params,
          query,
          headers: req.headers,
          contentType: media,
          raw,
          principal,
          account,
          now: time,
          json: () => {
            if (!parsed.jsonOk) throw new ApiError(400, 'Request body is not valid JSON');
            return parsed.value;
          },
          form: () => parsed.form ?? Object.fromEntries(new URLSearchParams(raw.toString('utf8'))),
        };
        reply = route.handler(ctx);
      } catch (err) {
        reply = this.errorReply(err, requestId);
      }
      if (contract !== undefined) reply = this.checkReply(contract, method, path, reply, requestId);
    }
    if (requestId !== undefined) reply.headers = { ...reply.headers, 'anchore-request-id': requestId };
    const mangled = decision.action.kind === 'wrongTypes' && reply.status >= 200 && reply.status < 300 && reply.json !== undefined;
    if (mangled) reply = { ...reply, json: swapTypes(reply.json) };
    this.send(res, reply);
    finish(reply.status, mangled ? ' [fault:wrongTypes]' : '');
  }

  /** Finds the route for a request. @throws ProblemError 404/405 the way the framework answers. */
  private resolve(method: string, path: string): { route: CompiledRoute; params: Record<string, string> } {
    const cfg = this.core.config;
    if (path.startsWith('/v2') && cfg.api_version !== '2') throw new ProblemError(404, 'Not Found', NOT_FOUND_DETAIL);
    if (path.startsWith('/v2/system/integrations/') && !cfg.integrations_enabled) throw new ProblemError(404, 'Not Found', NOT_FOUND_DETAIL);
    const parts = path.split('/').slice(1);
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchRoute(route, parts);
      if (params === undefined) continue;
      if (route.def.method === method) return { route, params };
      allowed.push(route.def.method);
    }
    if (allowed.length > 0) {
      throw new ProblemError(405, 'Method Not Allowed', 'The method is not allowed for the requested URL.', { allow: [...new Set(allowed)].join(', ') });
    }
    throw new ProblemError(404, 'Not Found', NOT_FOUND_DETAIL);
  }

  /**
   * A reply of the simulator that breaks the published spec is a simulator bug: it is recorded, logged and answered
   * 500 instead, so no test can come to rely on it (and `stop()` rejects, naming it).
   */
  private checkReply(contract: OperationContract, method: string, path: string, reply: Reply, requestId: string | undefined): Reply {
    const body = reply.json !== undefined ? reply.json : reply.text;
    const violations = checkResponse(contract, reply.status, body);
    if (violations.length === 0) return reply;
    this.core.recordViolation({ direction: 'response', operationId: contract.operationId, method, path, status: reply.status, violations });
    const message = `simulator answer to ${contract.operationId} (${reply.status}) breaks the Anchore API spec: ${describeViolations(violations)}`;
    this.logLine?.(message);
    return { status: 500, json: this.core.errors.body(500, message, { contract_violations: violations }, requestId) };
  }

  private errorReply(err: unknown, requestId: string | undefined): Reply {
    if (err instanceof ApiError) {
      return { status: err.status, json: { ...this.core.errors.body(err.status, err.message, err.detail, requestId), ...err.extra }, headers: err.headers };
    }
    if (err instanceof ProblemError) {
      return { status: err.status, json: problemBody(err.status, err.title, err.message), contentType: 'application/problem+json', headers: err.headers };
    }
    this.logLine?.(`handler error: ${(err as Error).stack ?? String(err)}`);
    return { status: 500, json: this.core.errors.body(500, 'Internal server error', { error: (err as Error).message }, requestId) };
  }

  private send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = { ...reply.headers };
    let payload: string | undefined;
    if (reply.json !== undefined) {
      payload = JSON.stringify(reply.json);
      headers['content-type'] = reply.contentType ?? 'application/json';
    } else if (reply.text !== undefined) {
      payload = reply.text;
      headers['content-type'] = reply.contentType ?? 'text/plain; charset=utf-8';
    }
    if (reply.status !== 204 && reply.status !== 304) headers['content-length'] = payload === undefined ? 0 : Buffer.byteLength(payload);
    res.writeHead(reply.status, headers);
    res.end(payload);
  }
}

/**
 * Starts an Anchore Enterprise V2 API simulator.
 * @throws SimConfigError for an invalid `config`, or the listen error (e.g. EADDRINUSE).
 */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<AnchoreSimulator> {
  const config = resolveConfig(opts.config);
  const core = new SimulatorCore(config, Date.now, opts.retention);
  core.inventory.onReport = opts.onInventory;
  const server = new SimServer(core, opts);
  const host = opts.host ?? '127.0.0.1';
  const address = await server.listen(opts.port ?? 0, host);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${opts.tls === undefined ? 'http' : 'https'}://${urlHost}:${address.port}`;

  const handle: AnchoreSimulator = {
    url,
    config,
    stop: async () => {
      await server.stop();
      const broken = core.contractViolations.filter((v) => v.direction === 'response');
      if (broken.length > 0) {
        throw new Error(`the simulator answered ${broken.length} time(s) against the Anchore API spec, first: ${broken[0]!.operationId} ${describeViolations(broken[0]!.violations)}`);
      }
    },
    requests: (filter = {}) => core.log.list(filter),
    clearRequests: () => core.log.clear(),
    setFaults: (rules) => core.faults.set(rules),
    clearFaults: () => core.faults.clear(),
    reset: () => core.reset(),
    images: (account) => core.images.snapshot(account),
    inventories: (account) => core.inventory.reports(account),
    integrations: () => core.integrations.list(),
    setVerdict: (digest, verdict, account) => core.setVerdict(digest, verdict, account),
    setActivePolicy: (account, policyId) => core.policies.setActive(account, policyId),
    deleteImage: (account, digest) => core.images.remove(account, digest),
    deletePolicy: (account, policyId) => core.policies.remove(account, policyId),
    putPolicy: (account, policy) => core.policies.put(account, policy),
    setPassword: (username, password) => core.auth.setPassword(username, password),
    revokeCredentials: (username) => core.auth.revoke(username),
    expireTokens: (o = {}) => core.auth.expireTokens(o.includeRefresh === true),
    setVulnerabilities: (digest, vulns) => core.setVulnerabilities(digest, vulns),
    contractViolations: () => structuredClone(core.contractViolations),
  };
  server.setHandle(handle);
  return handle;
}
