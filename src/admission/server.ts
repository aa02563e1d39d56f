import type { IncomingMessage, ServerResponse } from 'node:http';
import { reloadingHttpsServer } from '../telemetry/https.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { listen } from '../telemetry/server.ts';
import { type AdmissionRequest, type AdmissionResponse, parseReview, reviewResponse } from './review.ts';

/** An AdmissionReview of a Pod with many containers is a few hundred KiB at most; the apiserver caps at 3 MiB. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

interface AdmissionServerOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  review(req: AdmissionRequest): Promise<AdmissionResponse>;
  log: Logger;
  metrics: OperatorMetrics;
  certPollMs?: number;
}

/**
 * POST /validate over HTTPS (the apiserver only calls webhooks over TLS). A body that is not an admission.k8s.io/v1
 * AdmissionReview is a 400 naming what is wrong; a failure inside the validator is a 500, so the webhook's own
 * failurePolicy decides — an error is never turned into an allow or a deny here.
 */
export async function startAdmissionServer(opts: AdmissionServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const log = opts.log.child({ component: 'admission' });
  const fail = (res: ServerResponse, code: number, message: string): void => {
    opts.metrics.admissionRequests.inc({ kind: 'other', verdict: 'error' });
    res.writeHead(code, { 'content-type': 'text/plain' }).end(`${message}\n`);
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/validate') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'POST' }).end('method not allowed\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        tooBig = true;
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {
      if (tooBig && !res.headersSent) fail(res, 413, `request body over ${MAX_BODY_BYTES} bytes`);
    });
    req.on('end', () => {
      if (tooBig) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        fail(res, 400, 'request body is not JSON');
        return;
      }
      const parsed = parseReview(body);
      if (!parsed.ok) {
        log.warn({ reason: parsed.reason }, 'malformed admission review');
        fail(res, 400, `not an AdmissionReview: ${parsed.reason}`);
        return;
      }
      const r = parsed.request;
      opts.review(r).then(
        (answer) => {
          log.debug(
            { uid: r.uid, kind: r.kind.kind, namespace: r.namespace, name: r.name, operation: r.operation, allowed: answer.allowed, warnings: answer.warnings?.length ?? 0 },
            'admission review answered',
          );
          res.writeHead(200, { 'content-type': 'application/json' }).end(reviewResponse(answer));
        },
        (err: unknown) => {
          log.error({ uid: r.uid, kind: r.kind.kind, namespace: r.namespace, err: err instanceof Error ? err.stack : String(err) }, 'admission review failed');
          fail(res, 500, 'admission review failed inside anchore-operator (see its log)');
        },
      );
    });
  };
  const server = reloadingHttpsServer({ certFile: opts.certFile, keyFile: opts.keyFile, handler, log, what: 'admission', pollMs: opts.certPollMs });
  // The apiserver keeps connections open; idle ones must not hold a shutdown.
  server.keepAliveTimeout = 30_000;
  const port = await listen(server, opts.port, opts.host);
  log.info({ port }, 'admission webhook listening (https /validate)');
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
      }),
  };
}
