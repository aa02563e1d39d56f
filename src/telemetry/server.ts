import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { metricsText } from './exposition.ts';
import { reloadingHttpsServer } from './https.ts';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.ts';

interface ReadinessCheck {
  name: string;
  ok(): boolean;
  /** Why it is not ready, for the /readyz body. */
  detail?(): string;
  /**
   * Reported in the body (`[!]name warning: …`) but not failing readiness: a problem this replica should say, while
   * failing readiness would cost more (admission losing its endpoints).
   */
  advisory?: () => boolean;
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // A server that cannot listen is closed, so what it holds (a certificate watch) is released.
    const fail = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/**
 * /healthz (the process serves requests) and /readyz (every readiness check passes: caches synced, Anchore answered).
 * The body lists each check so `kubectl describe` of a failed probe says why.
 */
export async function startHealthServer(opts: { host: string; port: number; checks: ReadinessCheck[]; log: Logger }): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const lines = opts.checks.map((c) => {
        const ok = c.ok();
        if (!ok && c.advisory?.()) return { ok: true, line: `[!]${c.name} warning: ${c.detail?.() ?? 'degraded'}` };
        return { ok, line: `[${ok ? '+' : '-'}]${c.name} ${ok ? 'ok' : `failed: ${c.detail?.() ?? 'not ready'}`}` };
      });
      const ready = lines.every((l) => l.ok);
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${lines.map((l) => l.line).join('\n')}\n${ready ? 'ok' : 'not ready'}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  const port = await listen(server, opts.port, opts.host);
  opts.log.info({ port }, 'health server listening (/healthz, /readyz)');
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}

/** Bearer-token access check for /metrics (TokenReview + SubjectAccessReview in production). */
interface MetricsAccess {
  review(token: string, path: string, verb: string): Promise<{ authenticated: boolean; allowed: boolean; user?: string; reason?: string }>;
}

interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  log: Logger;
  /** Serve HTTPS with this PEM pair (re-read when the files change, so rotated certificates are picked up). */
  tls?: { certFile: string; keyFile: string };
  /** Require a bearer token allowed to GET /metrics. */
  access?: MetricsAccess;
  /** How often the certificate files are checked for changes. */
  certPollMs?: number;
  /** Called after each scrape's text is produced (e.g. to drop series recomputed at every scrape). */
  afterScrape?: () => void;
}

/**
 * /metrics on its own port. In secure mode (TLS + access) every scrape must carry a bearer token that the apiserver
 * authenticates and that may `get` the non-resource URL /metrics: 401 without or with a bad token, 403 without the
 * permission, 503 when the apiserver cannot be asked.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  // One scrape at a time: the text is made in slices with the event loop free between them (metricsText), and a
  // second scrape must not spend the findings budget again, or release it, while the first is still reading it.
  // Scrapes that arrive while one is waiting to begin share it (it begins after they arrived: as fresh as their own).
  let previous: Promise<unknown> = Promise.resolve();
  let waiting: Promise<string> | undefined;
  const scrape = (): Promise<string> => {
    if (waiting) return waiting;
    const next = previous.then(async () => {
      waiting = undefined;
      const body = await metricsText(opts.registry);
      opts.afterScrape?.();
      return body;
    });
    waiting = next;
    previous = next.catch(() => undefined);
    return next;
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const serve = (): void => {
      scrape().then(
        (body) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
        },
        (err: unknown) => {
          opts.log.error({ err: String(err) }, 'metrics collection failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    };
    if (!opts.access) return serve();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('Unauthorized: a bearer token is required\n');
      return;
    }
    opts.access.review(m[1]!, path, 'get').then(
      (d) => {
        if (!d.authenticated) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('Unauthorized\n');
        } else if (!d.allowed) {
          opts.log.debug({ user: d.user, reason: d.reason }, 'metrics scrape forbidden');
          res.writeHead(403, { 'content-type': 'text/plain' }).end(`Forbidden: ${d.reason ?? 'not allowed'}\n`);
        } else {
          serve();
        }
      },
      (err: unknown) => {
        opts.log.warn({ err: String((err as Error)?.message ?? err) }, 'cannot check metrics access with the apiserver');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('cannot check access with the Kubernetes API\n');
      },
    );
  };

  const server = opts.tls ? reloadingHttpsServer({ ...opts.tls, handler, log: opts.log, what: 'metrics', pollMs: opts.certPollMs }) : createServer(handler);
  const port = await listen(server, opts.port, opts.host);
  opts.log.info({ port, tls: Boolean(opts.tls), auth: Boolean(opts.access) }, `metrics server listening (${opts.tls ? 'https' : 'http'} /metrics)`);
  return {
    port,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      }),
  };
}
