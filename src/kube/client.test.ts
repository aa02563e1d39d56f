import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KubeClient } from './client.ts';
import { KubeError } from './errors.ts';

/*
 * The client throws the cluster port's KubeError for every answer that is not 2xx, with its kind read from the HTTP
 * status and the apiserver's Status reason, and for a request that got no answer (kind unavailable). A plain-http
 * "apiserver" on 127.0.0.1 answers what each path names.
 */
const ANSWERS: Record<string, [number, Record<string, unknown> | string]> = {
  '/notfound': [404, { kind: 'Status', reason: 'NotFound', message: 'leases.coordination.k8s.io "x" not found', code: 404 }],
  '/conflict': [409, { kind: 'Status', reason: 'Conflict', message: 'the object has been modified', code: 409 }],
  '/exists': [409, { kind: 'Status', reason: 'AlreadyExists', message: 'leases "x" already exists', code: 409 }],
  '/invalid': [422, { kind: 'Status', reason: 'Invalid', message: 'status.conditions[0].message: Too long', code: 422 }],
  '/forbidden': [403, { kind: 'Status', reason: 'Forbidden', message: 'forbidden', code: 403 }],
  '/expired': [410, { kind: 'Status', reason: 'Expired', message: 'too old resource version', code: 410 }],
  '/busy': [429, { kind: 'Status', reason: 'TooManyRequests', message: 'slow down', code: 429 }],
  '/down': [503, 'upstream connect error'],
};

describe('KubeClient errors', () => {
  let server: Server;
  let dir: string;
  let client: KubeClient;
  let port: number;
  const kubeconfig = (p: number): string => {
    const path = join(dir, `config-${p}`);
    writeFileSync(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        clusters: [{ name: 'k', cluster: { server: `http://127.0.0.1:${p}` } }],
        users: [{ name: 'u', user: { token: 't' } }],
      }),
    );
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kube-client-'));
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      if (path === '/ok') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Lease"}');
      if (path.startsWith('/watch')) return void res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify(ANSWERS['/expired']?.[1]));
      const [status, body] = ANSWERS[path] ?? [500, 'no such test path'];
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    client = new KubeClient({ kubeconfig: kubeconfig(port) });
  });
  afterAll(async () => {
    await client.close();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['/notfound', 'not-found', 404, 'NotFound'],
    ['/conflict', 'conflict', 409, 'Conflict'],
    ['/exists', 'conflict', 409, 'AlreadyExists'],
    ['/invalid', 'invalid', 422, 'Invalid'],
    ['/forbidden', 'forbidden', 403, 'Forbidden'],
    ['/expired', 'gone', 410, 'Expired'],
    ['/busy', 'unavailable', 429, 'TooManyRequests'],
    ['/down', 'unavailable', 503, 'Unknown'],
  ])('when the apiserver answers %s, then the client throws a KubeError of kind %s', async (path, kind, status, reason) => {
    const err = await client.request('GET', path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect(err).toMatchObject({ kind, status, reason });
    expect((err as Error).message).toMatch(new RegExp(`^GET ${path}: ${status} ${reason}: `));
  });

  it('when the answer is 2xx, then it is the parsed body', async () => {
    await expect(client.request('GET', '/ok')).resolves.toEqual({ kind: 'Lease' });
  });

  it('when nothing answers, then the client throws a KubeError of kind unavailable carrying the cause', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const dead = new KubeClient({ kubeconfig: kubeconfig(deadPort), requestTimeoutMs: 2000 });
    try {
      const err = await dead.request('GET', '/ok').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeError);
      expect(err).toMatchObject({ kind: 'unavailable', status: undefined });
      expect((err as Error).message).toMatch(/^GET \/ok: .*ECONNREFUSED/);
      expect((err as Error).cause).toBeDefined();
    } finally {
      await dead.close();
    }
  });

  it('when a watch is answered 410, then it ends with a KubeError of kind gone', async () => {
    const ended = await new Promise<unknown>((resolve) => {
      void client.watch('/watch/pods', {}, () => undefined, resolve);
    });
    expect(ended).toBeInstanceOf(KubeError);
    expect(ended).toMatchObject({ kind: 'gone', status: 410, reason: 'Expired' });
  });
});
