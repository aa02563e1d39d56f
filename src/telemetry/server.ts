import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.ts';

export interface ReadinessCheck {
  name: string;
  ok(): boolean;
  /** Why it is not ready, for the /readyz body. */
  detail?(): string;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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

export async function startMetricsServer(opts: { host: string; port: number; registry: Registry; log: Logger }): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    opts.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body),
      (err: unknown) => {
        opts.log.error({ err: String(err) }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  const port = await listen(server, opts.port, opts.host);
  opts.log.info({ port }, 'metrics server listening (/metrics)');
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}
