import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:https';
import { selfSigned } from '../../test/support/tls.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import type { AdmissionRequest, AdmissionResponse } from './review.ts';
import { startAdmissionServer } from './server.ts';

const log = createLogger({ level: 'silent', pretty: false });
const review = (uid: string, kind = 'Pod') => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid, kind: { group: '', version: 'v1', kind }, operation: 'CREATE', namespace: 'shop', object: {} },
});

/** The subject CN of the certificate the server presents. */
function presentedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve(String(cn));
    });
    s.on('error', reject);
  });
}

describe('admission HTTPS server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adm-srv-'));
  const a = selfSigned(mkdtempSync(join(dir, 'a-')), 'cert-a');
  const b = selfSigned(mkdtempSync(join(dir, 'b-')), 'cert-b');
  const live = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
  const seen: AdmissionRequest[] = [];
  let server: { port: number; close(): Promise<void> };

  beforeAll(async () => {
    copyFileSync(a.certFile, live.certFile);
    copyFileSync(a.keyFile, live.keyFile);
    server = await startAdmissionServer({
      host: '127.0.0.1',
      port: 0,
      ...live,
      certPollMs: 50,
      log,
      metrics,
      review: async (r): Promise<AdmissionResponse> => {
        seen.push(r);
        if (r.kind.kind === 'Boom') throw new Error('bug');
        return { uid: r.uid, allowed: false, status: { code: 403, message: 'no' } };
      },
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: string, path = '/validate', method: 'POST' | 'GET' = 'POST'): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path, method, rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(method === 'POST' ? body : undefined);
    });

  it('when an AdmissionReview is posted, then the validator answers it as an AdmissionReview echoing the uid', async () => {
    const r = await post(JSON.stringify(review('u-1')));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: false, status: { code: 403, message: 'no' } } });
    expect(seen.at(-1)?.uid).toBe('u-1');
  });

  it('when the body is not an AdmissionReview, then 400 names why; other paths are 404 and other methods 405', async () => {
    expect(await post('{nope')).toEqual({ status: 400, text: 'request body is not JSON\n' });
    expect((await post(JSON.stringify({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1' }))).text).toContain('not supported');
    expect((await post('{}', '/other')).status).toBe(404);
    expect((await post('', '/validate', 'GET')).status).toBe(405);
  });

  it('when the validator fails, then 500 (the webhook failurePolicy decides), never an allow', async () => {
    const r = await post(JSON.stringify(review('u-2', 'Boom')));
    expect(r.status).toBe(500);
    expect(await metrics.registry.metrics()).toMatch(/admission_requests_total\{kind="other",verdict="error"\} 3/);
  });

  /**
   * 9 MiB, over the 8 MiB limit, announced by content-length or sent chunked (so only counting can find it too big).
   * Settles once the connection is gone, with any error the client saw on the way.
   */
  const postOversized = (framing: 'content-length' | 'chunked'): Promise<{ status: number; text: string; connection: string | undefined; error: string | undefined }> =>
    new Promise((resolve) => {
      const mib = Buffer.alloc(1024 * 1024, 0x20);
      const headers: Record<string, string | number> = { 'content-type': 'application/json', ...(framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': 9 * mib.length }) };
      const got = { status: 0, text: '', connection: undefined as string | undefined, error: undefined as string | undefined };
      const req = request({ host: '127.0.0.1', port: server.port, path: '/validate', method: 'POST', rejectUnauthorized: false, headers }, (res) => {
        got.status = res.statusCode ?? 0;
        got.connection = res.headers.connection;
        res.setEncoding('utf8');
        res.on('data', (c: string) => (got.text += c));
      });
      // A server that closes while the client still sends resets the connection: ECONNRESET (no status at all) or,
      // after the answer, EPIPE.
      req.on('error', (err: NodeJS.ErrnoException) => (got.error = err.code ?? err.message));
      req.on('close', () => resolve(got));
      for (let i = 0; i < 9; i++) req.write(mib);
      req.end();
    });

  it.each(['content-length', 'chunked'] as const)('when a body over 8 MiB is sent (%s), then the client gets 413 and the connection is closed, not reset', async (framing) => {
    const r = await postOversized(framing);
    expect(r).toEqual({ status: 413, text: 'request body over 8388608 bytes (8 MiB): not an AdmissionReview the apiserver would send\n', connection: 'close', error: undefined });
    // The server goes on answering.
    expect((await post(JSON.stringify(review(`u-${framing}`)))).status).toBe(200);
  });

  it('when a client asks first (Expect: 100-continue) with a content-length over 8 MiB, then it gets 413 and is never invited to send the body', async () => {
    const r = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const headers = { 'content-type': 'application/json', 'content-length': 9 * 1024 * 1024, expect: '100-continue' };
      const req = request({ host: '127.0.0.1', port: server.port, path: '/validate', method: 'POST', rejectUnauthorized: false, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
      });
      req.on('continue', () => (continued = true));
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(r).toEqual({ status: 413, continued: false });
  });

  it('when the certificate files are replaced, then the new certificate is served without a restart', async () => {
    expect(await presentedCn(server.port)).toBe('cert-a');
    copyFileSync(b.keyFile, live.keyFile);
    copyFileSync(b.certFile, live.certFile);
    const end = Date.now() + 5000;
    while ((await presentedCn(server.port)) !== 'cert-b') {
      if (Date.now() > end) throw new Error('certificate not reloaded');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
