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
