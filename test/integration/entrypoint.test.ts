import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, ensureCrds, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { operatorEnv } from '../support/operator.ts';
import { selfSigned } from '../support/tls.ts';

/* The real entry point (`node src/main.ts`) as a user runs it: exit codes, one-line causes, readiness, SIGTERM. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECRET = 'do-not-log-this-pw-7f3a';

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
}

function run(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [join(root, 'src', 'main.ts')], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Run = { child, stdout: [], stderr: [], exit: new Promise((res) => child.on('exit', (code) => res(code))) };
  child.stdout?.on('data', (d: Buffer) => r.stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => r.stderr.push(d.toString()));
  return r;
}

async function readyPort(r: Run): Promise<number> {
  // The health server logs its port when it listens (HEALTH_PORT=0 picks a free one).
  const line = await eventually(
    () =>
      r.stdout
        .join('')
        .split('\n')
        .find((l) => l.includes('health server listening')),
    20_000,
  );
  return (JSON.parse(line) as { port: number }).port;
}

describe('entry point (node src/main.ts)', () => {
  let sim: AnchoreSimulator;
  const ns = uniqueName('entry');
  beforeAll(async () => {
    sim = await startSimulator({ config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: SECRET }] }] } });
    await apply(namespaceManifest(ns));
    await ensureCrds();
  });
  afterAll(async () => {
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the configuration is invalid, then it exits 2 with a one-line cause', async () => {
    const r = run({ ANCHORE_URL: 'not a url', CLUSTER_NAME: 'c', ANCHORE_USERNAME: 'a', ANCHORE_PASSWORD: SECRET });
    expect(await r.exit).toBe(2);
    expect(r.stderr.join('').trim()).toBe('anchore-operator: invalid configuration: ANCHORE_URL "not a url" is not an http(s) URL');
  });

  it('when the environment holds a mistyped setting (ANCHORE_ACOUNT), then it exits 2 with one line naming it and the closest setting, instead of ignoring it', async () => {
    const r = run(operatorEnv(sim.url, { ANCHORE_PASSWORD: SECRET, ANCHORE_ACOUNT: 'team-a' }));
    expect(await r.exit).toBe(2);
    expect(r.stderr.join('').trim()).toBe(
      "anchore-operator: invalid configuration: ANCHORE_ACOUNT is not a setting of this operator (did you mean ANCHORE_ACCOUNT?); the container's environment is its configuration, so correct or remove it",
    );
  });

  it('when Anchore cannot be reached, then /readyz fails on Anchore and says the caches wait on it (not "not synced"); the service-link variables of a Service named anchore-operator are accepted; SIGTERM exits 0', async () => {
    // Port 1 on loopback: connection refused at once, retried with backoff for as long as it lasts.
    const r = run(
      operatorEnv('http://127.0.0.1:1', {
        ANCHORE_PASSWORD: SECRET,
        // What the kubelet injects for the chart's Service when the release is named anchore-operator.
        ANCHORE_OPERATOR_SERVICE_HOST: '10.96.0.12',
        ANCHORE_OPERATOR_SERVICE_PORT: '8080',
        ANCHORE_OPERATOR_SERVICE_PORT_METRICS: '8080',
        ANCHORE_OPERATOR_PORT: 'tcp://10.96.0.12:8080',
        ANCHORE_OPERATOR_PORT_8080_TCP: 'tcp://10.96.0.12:8080',
        ANCHORE_OPERATOR_PORT_8080_TCP_PROTO: 'tcp',
        ANCHORE_OPERATOR_PORT_8080_TCP_PORT: '8080',
        ANCHORE_OPERATOR_PORT_8080_TCP_ADDR: '10.96.0.12',
      }),
    );
    try {
      const port = await readyPort(r);
      await eventually(() => r.stdout.join('').includes('Anchore not reachable yet'), 15_000, 100);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      const body = await res.text();
      expect(res.status).toBe(503);
      expect(body).toContain('[-]anchore failed: Anchore has not answered the version check yet');
      expect(body).toContain('[-]caches failed: informers start once Anchore answers');
      expect(body).not.toContain('informer caches not synced');
      // Nothing else is said to be wrong: the credentials are not judged before Anchore answers.
      expect(body).toContain('[+]anchore-credentials ok');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      r.child.kill('SIGTERM');
      expect(await r.exit).toBe(0);
    } finally {
      r.child.kill('SIGKILL');
    }
  });

  it('when ANCHORE_URL names the V1 API, then it exits 2 at once with the cause instead of retrying "not reachable"', async () => {
    const r = run({ ANCHORE_URL: `${sim.url}/v1`, CLUSTER_NAME: 'c', ANCHORE_USERNAME: 'admin', ANCHORE_PASSWORD: SECRET });
    expect(await r.exit).toBe(2);
    expect(r.stderr.join('').trim()).toBe(
      `anchore-operator: invalid configuration: ANCHORE_URL "${sim.url}/v1" ends in /v1, but the operator uses Anchore's V2 API: give the base URL (${sim.url}) or ${sim.url}/v2`,
    );
  });

  it('when ANCHORE_CA_FILE holds no certificate, then it exits 2 at start naming the file and what it must be', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), 'this is the password, not a CA\n');
      const r = run(operatorEnv(sim.url, { ANCHORE_PASSWORD: SECRET, ANCHORE_CA_FILE: join(dir, 'ca.pem') }));
      expect(await r.exit).toBe(2);
      const err = r.stderr.join('').trim();
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toContain(`ANCHORE_CA_FILE ${join(dir, 'ca.pem')}: holds no PEM certificate`);
      expect(err).not.toContain('password, not a CA');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when ANCHORE_URL has a path Anchore does not serve, then it exits 1 saying the path is wrong (not "not reachable yet" for ever)', async () => {
    const r = run(operatorEnv(`${sim.url}/anchore`, { ANCHORE_PASSWORD: SECRET }));
    expect(await r.exit).toBe(1);
    const err = r.stderr.join('').trim();
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toContain('its path is wrong; give the base URL Anchore serves /v2 under');
  });

  describe('when Anchore speaks TLS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anchore-tls-'));
    let tlsSim: AnchoreSimulator;
    let otherCa: string;
    beforeAll(async () => {
      const own = selfSigned(dir, 'anchore');
      const otherDir = mkdtempSync(join(dir, 'other-'));
      otherCa = selfSigned(otherDir, 'someone-else').certFile;
      tlsSim = await startSimulator({
        tls: { cert: readFileSync(own.certFile, 'utf8'), key: readFileSync(own.keyFile, 'utf8') },
        config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: SECRET }] }] },
      });
    });
    afterAll(async () => {
      await tlsSim?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('when its certificate is signed by a CA the operator does not trust, then it exits 1 naming ANCHORE_CA_FILE as the fix', async () => {
      const r = run(operatorEnv(tlsSim.url, { ANCHORE_PASSWORD: SECRET, ANCHORE_CA_FILE: otherCa }));
      expect(await r.exit).toBe(1);
      const err = r.stderr.join('').trim();
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toContain('not signed by a CA the operator trusts: set ANCHORE_CA_FILE');
    });

    it('when the certificate does not name the host in ANCHORE_URL, then it exits 1 saying so', async () => {
      // A certificate (its own CA) for anchore.example only: trusted, but not for 127.0.0.1.
      const cert = selfSigned(mkdtempSync(join(dir, 'named-')), 'anchore.example', [], 'DNS:anchore.example');
      const named = await startSimulator({
        tls: { cert: cert.pem, key: readFileSync(cert.keyFile, 'utf8') },
        config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: SECRET }] }] },
      });
      try {
        const r = run(operatorEnv(named.url, { ANCHORE_PASSWORD: SECRET, ANCHORE_CA_FILE: cert.certFile }));
        expect(await r.exit).toBe(1);
        expect(r.stderr.join('').trim()).toContain('does not name the host in ANCHORE_URL');
      } finally {
        await named.stop();
      }
    });
  });

  it('when ANCHORE_URL says https:// to a plain-http port, then it exits 1 naming the likely mix-up', async () => {
    const r = run(operatorEnv(sim.url.replace('http://', 'https://'), { ANCHORE_PASSWORD: SECRET }));
    expect(await r.exit).toBe(1);
    expect(r.stderr.join('').trim()).toContain('is ANCHORE_URL https:// pointing at a plain-http port');
  });

  it('when Anchore rejects the credentials, then it exits 1 saying so, and the password is never printed', async () => {
    const r = run(operatorEnv(sim.url, { ANCHORE_PASSWORD: 'wrong-password-123', LOG_LEVEL: 'debug' }));
    expect(await r.exit).toBe(1);
    const err = r.stderr.join('').trim();
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toContain("Anchore rejected the operator's credentials");
    expect(r.stdout.join('') + err).not.toContain('wrong-password-123');
  });

  it('when Anchore is a V1 server, then it exits 1 naming the API version problem', async () => {
    const v1 = await startSimulator({ config: { api_version: '' } });
    try {
      const r = run(operatorEnv(v1.url));
      expect(await r.exit).toBe(1);
      expect(r.stderr.join('')).toContain('needs the V2 API');
    } finally {
      await v1.stop();
    }
  });

  it('when Anchore lacks an operation the operator needs, then it exits 1 naming the operation', async () => {
    const old = await startSimulator({ config: { openapi_missing: ['add_image'], accounts: [{ name: 'admin', users: [{ username: 'admin', password: SECRET }] }] } });
    try {
      const r = run(operatorEnv(old.url, { ANCHORE_PASSWORD: SECRET }));
      expect(await r.exit).toBe(1);
      expect(r.stderr.join('').trim()).toBe('anchore-operator: Anchore lacks operations this operator needs: POST /images');
    } finally {
      await old.stop();
    }
  });

  it('when started correctly (OAuth, debug logs), then it becomes ready, registers running images, never logs a credential, and exits 0 on SIGTERM', async () => {
    const r = run(operatorEnv(sim.url, { ANCHORE_PASSWORD: SECRET, ANCHORE_AUTH_MODE: 'oauth', CLUSTER_NAME: uniqueName('entry'), LOG_LEVEL: 'trace', NAMESPACES_INCLUDE: ns }));
    try {
      const port = await readyPort(r);
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 30_000, 200);
      await apply(deployment(ns, 'app', 1, [{ name: 'app', image: 'nginx:1.26' }]));
      const [pod] = await waitForRunningPods(ns, 'app=app', 1);
      const digest = digestOf(pod?.containers[0]?.imageID ?? '');
      await eventually(() => sim.images('admin').some((i) => i.image_digest === digest), 15_000);
      r.child.kill('SIGTERM');
      expect(await r.exit).toBe(0);
      const out = r.stdout.join('') + r.stderr.join('');
      expect(out).toContain('work queues stopped');
      expect(out).toContain('"reconcileId"');
      expect(sim.requests({ path: '/v2/oauth/token' }).length).toBeGreaterThan(0);
      // The password, its Basic-auth encoding, and any bearer token the simulator issued never reach the log.
      expect(out).not.toContain(SECRET);
      expect(out).not.toContain(Buffer.from(`admin:${SECRET}`).toString('base64'));
      expect(out).not.toMatch(/bearer\s+[A-Za-z0-9._~+/-]{8,}/i);
      expect(out).not.toMatch(/authorization/i);
    } finally {
      r.child.kill('SIGKILL');
    }
  });
});
