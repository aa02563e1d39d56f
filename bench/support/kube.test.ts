import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type PodWatch, waitFor, watchRunning } from './kube.ts';

const pod = (name: string, phase: string, rv: number) => ({
  metadata: { namespace: 'ns', name, resourceVersion: String(rv) },
  status: { phase, containerStatuses: [{ imageID: `x@sha256:${name.repeat(64).slice(0, 64)}` }] },
});
const line = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`;
const status = (code: number, reason: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message: `simulated ${reason}` });

/**
 * A fake apiserver on 127.0.0.1 that plays one script per watch request, in order, and answers lists from `lists`.
 * Every watch request's resourceVersion is recorded, to check where the client resumed.
 */
function fakeApiserver(watches: Array<(res: ServerResponse) => void>, lists: Array<{ rv: number; items: unknown[] }>): Promise<{ url: string; server: Server; watchVersions: string[] }> {
  const watchVersions: string[] = [];
  let listed = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/v1/pods') return void res.writeHead(404).end();
    if (url.searchParams.get('watch') === '1') {
      watchVersions.push(url.searchParams.get('resourceVersion') ?? '');
      const script = watches.shift();
      if (!script) return; // keep it open, silent, until the client goes
      return script(res);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('limit') === '1') return void res.end(JSON.stringify({ metadata: { resourceVersion: '10' }, items: [] }));
    const l = lists[listed++] ?? { rv: 99, items: [] };
    res.end(JSON.stringify({ metadata: { resourceVersion: String(l.rv) }, items: l.items }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, watchVersions })));
}

const stream = (res: ServerResponse): void => void res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });

describe('watchRunning', () => {
  let watch: PodWatch | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    watch?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r) ?? r(undefined));
  });

  it('when the apiserver ends the watch, sends ERROR events and answers 410, then it resumes from the last resourceVersion, re-lists on Gone and keeps every pod', async () => {
    const fake = await fakeApiserver(
      [
        // 1: a turns Running, a bookmark moves the version on, then the apiserver closes the stream (its timeout).
        (res) => {
          stream(res);
          res.write(line('ADDED', pod('a', 'Pending', 11)));
          res.write(line('MODIFIED', pod('a', 'Running', 12)));
          res.end(line('BOOKMARK', { metadata: { resourceVersion: '15' } }));
        },
        // 2: resumed at 15; b Running, a deleted, then 410 Expired as an ERROR event (the stream is left open).
        (res) => {
          stream(res);
          res.write(line('MODIFIED', pod('b', 'Running', 16)));
          res.write(line('DELETED', pod('a', 'Running', 17)));
          res.write(line('ERROR', status(410, 'Expired')));
        },
        // 3: after the re-list (version 30): the version is already gone again, as an HTTP status this time.
        (res) => void res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify(status(410, 'Gone'))),
        // 4: after the second re-list (version 40): an ERROR that is not 410 (resumed at the same version).
        (res) => {
          stream(res);
          res.write(line('ERROR', status(500, 'InternalError')));
        },
        // 5: resumed at 40: e Running.
        (res) => {
          stream(res);
          res.write(line('MODIFIED', pod('e', 'Running', 41)));
        },
      ],
      [
        { rv: 30, items: [pod('b', 'Running', 16), pod('c', 'Running', 20)] },
        { rv: 40, items: [pod('b', 'Running', 16), pod('c', 'Running', 20), pod('d', 'Running', 35), pod('p', 'Pending', 36)] },
      ],
    );
    server = fake.server;
    const logged: string[] = [];
    watch = await watchRunning({ server: fake.url }, 'bench-run=x', { retryDelayMs: 5, log: (l) => logged.push(l) });
    const w = watch;
    await waitFor('pod e seen', () => w.running.has('ns/e'), 10_000, 10);

    expect(fake.watchVersions).toEqual(['10', '15', '30', '40', '40']);
    expect([...w.running.keys()].sort()).toEqual(['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e']);
    // Seen by a list, not by an event: when they turned Running is unknown.
    expect([...w.running].filter(([, r]) => r.viaRelist).map(([k]) => k)).toEqual(['ns/c', 'ns/d']);
    expect([...w.deleted.keys()]).toEqual(['ns/a']);
    expect(w.health()).toMatchObject({ resumes: 2, relists: 2, errorEvents: 2 });
    expect(logged.length).toBe(4);
  });

  it('when a pod is deleted before it was ever Running, then it is recorded as deleted and never as Running', async () => {
    const fake = await fakeApiserver(
      [
        (res) => {
          stream(res);
          res.write(line('ADDED', pod('q', 'Pending', 11)));
          res.write(line('DELETED', pod('q', 'Pending', 12)));
          res.write(line('MODIFIED', pod('q', 'Running', 13))); // a late event for the same name is ignored
        },
      ],
      [],
    );
    server = fake.server;
    watch = await watchRunning({ server: fake.url }, 'bench-run=x', { log: () => undefined });
    const w = watch;
    await waitFor('q deleted', () => w.deleted.has('ns/q'), 10_000, 10);
    await new Promise((r) => setTimeout(r, 50));
    expect(w.running.size).toBe(0);
    expect(w.health()).toMatchObject({ resumes: 0, relists: 0, errorEvents: 0 });
  });
});
