import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { selfSigned } from '../../test/support/tls.ts';
import { reloadingHttpsServer } from './https.ts';
import { createLogger } from './logger.ts';
import { listen } from './server.ts';

/** A logger that keeps its lines, to see whether a reload happened. */
function recordingLog(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', pretty: false }, { write: (s: string) => void lines.push(s) });
  return { log, lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reloadingHttpsServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'https-'));
  const a = selfSigned(mkdtempSync(join(dir, 'a-')), 'cert-a');
  const b = selfSigned(mkdtempSync(join(dir, 'b-')), 'cert-b');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const live = (name: string) => {
    const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
    copyFileSync(a.certFile, files.certFile);
    copyFileSync(a.keyFile, files.keyFile);
    return files;
  };
  const rotate = (files: { certFile: string; keyFile: string }) => {
    copyFileSync(b.certFile, files.certFile);
    copyFileSync(b.keyFile, files.keyFile);
  };
  const reloaded = (lines: string[]) => lines.filter((l) => l.includes('TLS certificate reloaded')).length;

  it('when the files change while it listens, then it reloads; once it is closed, it stops watching them', async () => {
    const files = live('open');
    const { log, lines } = recordingLog();
    const server = reloadingHttpsServer({ ...files, handler: (_q, r) => void r.end(), log, what: 'test', pollMs: 20 });
    await listen(server, 0, '127.0.0.1');
    rotate(files);
    for (let i = 0; i < 100 && reloaded(lines) === 0; i++) await sleep(20);
    expect(reloaded(lines)).toBeGreaterThan(0);
    await new Promise<void>((r) => server.close(() => r()));
    const before = reloaded(lines);
    copyFileSync(a.certFile, files.certFile);
    await sleep(300);
    expect(reloaded(lines)).toBe(before);
  });

  it('when it cannot listen (the port is taken), then listen fails and the files are no longer watched', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const files = live('taken');
      const { log, lines } = recordingLog();
      const server = reloadingHttpsServer({ ...files, handler: (_q, r) => void r.end(), log, what: 'test', pollMs: 20 });
      await expect(listen(server, port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
      await sleep(50);
      rotate(files);
      await sleep(300);
      expect(reloaded(lines)).toBe(0);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});
