import type { IncomingMessage, ServerResponse } from 'node:http';
import { reloadingHttpsServer } from '../telemetry/https.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { listen } from '../telemetry/server.ts';
import { type AdmissionRequest, type AdmissionResponse, parseReview, reviewResponse } from './review.ts';

/** An AdmissionReview of a Pod with many containers is a few hundred KiB at most; the apiserver caps at 3 MiB. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const TOO_LARGE = `request body over ${MAX_BODY_BYTES} bytes (8 MiB): not an AdmissionReview the apiserver would send\n`;
/**
 * How long, and how much, of a refused body is read and dropped before the connection is cut. A connection closed
 * with unread data is reset by the kernel, and a client still sending then sees a broken pipe or loses the 413
 * altogether; one that keeps sending past these bounds is cut off anyway.
 */
const DRAIN_MS = 5_000;
const DRAIN_BYTES = 64 * 1024 * 1024;

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
  /**
   * 413 with `connection: close`, sent at once. The rest of the body is read and dropped (bounded by DRAIN_MS and
   * DRAIN_BYTES) and the response ends when it has been, so Node closes a connection that has no unread data.
   */
  const refuse = (req: IncomingMessage, res: ServerResponse): void => {
    opts.metrics.admissionRequests.inc({ kind: 'other', verdict: 'error' });
    log.warn({ contentLength: req.headers['content-length'], transferEncoding: req.headers['transfer-encoding'] }, 'admission request body over the limit: answered 413');
    res.writeHead(413, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(TOO_LARGE), connection: 'close' });
    res.write(TOO_LARGE);
    let dropped = 0;
    const cut = (): void => {
      req.socket.destroy();
    };
    const timer = setTimeout(cut, DRAIN_MS);
    // The bound on a lingering client, not work: it alone must not keep the process alive.
    timer.unref();
    req.on('data', (c: Buffer) => {
      dropped += c.length;
      if (dropped > DRAIN_BYTES) cut();
    });
    req.on('end', () => res.end());
    req.on('close', () => clearTimeout(timer));
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
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
      // Announced too big: refused before a byte of it is read.
      refuse(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const collect = (c: Buffer): void => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(c);
        return;
      }
      // Chunked (no length announced): found only by counting. What was collected is let go, the rest never kept.
      refused = true;
      chunks.length = 0;
      req.off('data', collect);
      refuse(req, res);
    };
    req.on('data', collect);
    req.on('end', () => {
      if (refused) return;
      let body: unknown;
      try {
        // One chunk (a body of up to 64 KiB or so) needs no copy; the chunks are let go once parsed, not kept while the
        // review waits for Anchore.
        body = JSON.parse((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8'));
      } catch {
        fail(res, 400, 'request body is not JSON');
        return;
      } finally {
        chunks.length = 0;
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
          // The line's fields are gathered only when it is written (debug is off by default).
          if (log.isLevelEnabled('debug')) {
            log.debug(
              { uid: r.uid, kind: r.kind.kind, namespace: r.namespace, name: r.name, operation: r.operation, allowed: answer.allowed, warnings: answer.warnings?.length ?? 0 },
              'admission review answered',
            );
          }
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
  // A client that asks before sending (Expect: 100-continue, as curl does for large bodies) is not invited to send one
  // that is announced too big: it gets the 413 instead of Node's automatic 100 Continue.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers['content-length']) > MAX_BODY_BYTES)) res.writeContinue();
    handler(req, res);
  });
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
