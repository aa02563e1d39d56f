import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from './logger.ts';

/**
 * An HTTPS server whose certificate follows its files: a rotated Secret (cert-manager, or a chart upgrade) is picked
 * up without a restart. A pair that cannot be read keeps the previous one and says so. The files are watched until
 * the server closes (including a server closed after a failed listen, as `listen` in ./server.ts does).
 */
export function reloadingHttpsServer(opts: {
  certFile: string;
  keyFile: string;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  log: Logger;
  /** Named in the log lines, e.g. "metrics". */
  what: string;
  pollMs?: number | undefined;
}): Server {
  const { certFile, keyFile } = opts;
  const load = (): { cert: Buffer; key: Buffer } => ({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  const https = createHttpsServer({ ...load(), minVersion: 'TLSv1.2' }, opts.handler);
  const reload = (): void => {
    try {
      https.setSecureContext({ ...load(), minVersion: 'TLSv1.2' });
      opts.log.info({ certFile }, `${opts.what} TLS certificate reloaded`);
    } catch (err) {
      opts.log.warn({ certFile, err: String((err as Error).message) }, `cannot reload the ${opts.what} TLS certificate; keeping the previous one`);
    }
  };
  const interval = opts.pollMs || 30_000;
  watchFile(certFile, { interval, persistent: false }, reload);
  watchFile(keyFile, { interval, persistent: false }, reload);
  https.once('close', () => {
    unwatchFile(certFile, reload);
    unwatchFile(keyFile, reload);
  });
  return https;
}
