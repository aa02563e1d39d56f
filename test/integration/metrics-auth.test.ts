import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startMetricsServer } from '../../src/telemetry/server.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, eventually, kubectl, namespaceManifest, uniqueName } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { selfSigned } from '../support/tls.ts';

async function get(port: number, ca: string, token?: string): Promise<{ status: number; body: string }> {
  const dispatcher = new Agent({ connect: { ca } });
  try {
    const res = await request(`https://127.0.0.1:${port}/metrics`, { dispatcher, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

/*
 * METRICS_SECURE: /metrics over TLS, callers authenticated with a TokenReview and authorized with a
 * SubjectAccessReview on the non-resource URL /metrics — decided by the real apiserver's RBAC.
 */
describe('secure metrics: TLS + TokenReview + SubjectAccessReview (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  let tls: { certFile: string; keyFile: string; pem: string };
  const dir = mkdtempSync(join(tmpdir(), 'metrics-tls-'));
  const ns = uniqueName('mauth');
  const reader = uniqueName('metrics-reader');
  let allowedToken = '';
  let deniedToken = '';

  beforeAll(async () => {
    tls = selfSigned(dir, 'anchore-operator-metrics');
    sim = await startSimulator();
    await apply(namespaceManifest(ns));
    await kubectl(['create', 'serviceaccount', 'prometheus', '-n', ns]);
    await kubectl(['create', 'serviceaccount', 'someone-else', '-n', ns]);
    await kubectl(['create', 'clusterrole', reader, '--verb=get', '--non-resource-url=/metrics']);
    await kubectl(['create', 'clusterrolebinding', reader, `--clusterrole=${reader}`, `--serviceaccount=${ns}:prometheus`]);
    allowedToken = (await kubectl(['create', 'token', 'prometheus', '-n', ns, '--duration=10m'])).trim();
    deniedToken = (await kubectl(['create', 'token', 'someone-else', '-n', ns, '--duration=10m'])).trim();
    operator = await startTestOperator(
      operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('mauth'), NAMESPACES_INCLUDE: ns, METRICS_SECURE: 'true', METRICS_CERT_FILE: tls.certFile, METRICS_KEY_FILE: tls.keyFile }),
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'clusterrolebinding,clusterrole', reader, '--ignore-not-found']);
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('when a scraper has a token bound to get /metrics, then it gets the metrics over TLS', async () => {
    const r = await get(operator.op.metricsPort, tls.pem, allowedToken);
    expect(r.status).toBe(200);
    expect(r.body).toContain('anchore_operator_build_info');
  });

  it('when the token is missing or not a valid token, then the answer is 401 and no metrics', async () => {
    const none = await get(operator.op.metricsPort, tls.pem);
    expect(none.status).toBe(401);
    expect(none.body).not.toContain('anchore_operator');
    const bad = await get(operator.op.metricsPort, tls.pem, 'not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.body).not.toContain('anchore_operator');
  });

  it('when the token is valid but its user may not get /metrics, then the answer is 403 naming the user', async () => {
    const r = await get(operator.op.metricsPort, tls.pem, deniedToken);
    expect(r.status).toBe(403);
    expect(r.body).toContain(`system:serviceaccount:${ns}:someone-else`);
    expect(r.body).not.toContain('anchore_operator');
  });

  it('when plain HTTP is tried, then the server does not answer with metrics', async () => {
    const res = await request(`http://127.0.0.1:${operator.op.metricsPort}/metrics`).catch((e: unknown) => e as Error);
    if (res instanceof Error) return;
    expect(res.statusCode).not.toBe(200);
    await res.body.text();
  });

  it('when the logs are read, then no bearer token appears in them', () => {
    const all = operator.logs.join('');
    expect(all).not.toContain(allowedToken);
    expect(all).not.toContain(deniedToken);
  });

  it('when the certificate files are replaced, then new connections get the new certificate without a restart', async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'metrics-rotate-'));
    const first = selfSigned(certDir, 'first');
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      log: createLogger({ level: 'silent', pretty: false }),
      tls: { certFile: first.certFile, keyFile: first.keyFile },
      certPollMs: 100,
    });
    const peerCn = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => {
          const raw = s.getPeerCertificate().raw;
          s.end();
          resolve(new X509Certificate(raw).subject);
        });
        s.on('error', reject);
      });
    try {
      expect(await peerCn()).toBe('CN=first');
      const second = selfSigned(mkdtempSync(join(tmpdir(), 'metrics-rotate2-')), 'second');
      writeFileSync(first.keyFile, readFileSync(second.keyFile));
      writeFileSync(first.certFile, readFileSync(second.certFile));
      await eventually(async () => (await peerCn()) === 'CN=second', 5_000, 100);
    } finally {
      await server.close();
      rmSync(certDir, { recursive: true, force: true });
    }
  });
});
