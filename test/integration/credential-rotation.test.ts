import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, valueOf } from '../support/prometheus.ts';
import { SecretVolume } from '../support/secret-volume.ts';

const REJECTED = 'Anchore rejects the operator credentials';

interface LogLine {
  level: string;
  msg: string;
}
const LOUD = new Set(['warn', 'error', 'fatal']);

/*
 * Issue 23, item 1, end to end: the Anchore admin rotates the operator's password; Anchore rejects the old one until
 * the Secret is updated. The operator in-process (the same config loader and composition root as the entry point)
 * reads ANCHORE_PASSWORD_FILE from a Secret volume written the kubelet's way (..data symlink swap), against the
 * simulator, whose user password is changed under it. Never restarted.
 */
describe('rotated Anchore credentials under a running operator (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const vol = new SecretVolume('password', 'rotate-me-1');
  const ns = uniqueName('rotate');
  const readyz = async (): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${operator.op.healthPort}/readyz`);
    return { status: res.status, body: await res.text() };
  };
  const rejectedGauge = async (): Promise<number | undefined> => valueOf(await scrape(operator.op.metricsPort), 'anchore_operator_anchore_credentials_rejected');
  const lines = (): LogLine[] =>
    operator.logs
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  const registered = (digest: string): boolean => sim.images('admin').some((i) => i.image_digest === digest);
  const runImage = async (name: string, image: string): Promise<string> => {
    await apply(deployment(ns, name, 1, [{ name: 'c', image }]));
    const [pod] = await waitForRunningPods(ns, `app=${name}`, 1);
    return digestOf(pod?.containers[0]?.imageID ?? '') ?? '';
  };

  beforeAll(async () => {
    sim = await startSimulator({ config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: 'rotate-me-1' }] }], analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        ANCHORE_PASSWORD: '',
        ANCHORE_PASSWORD_FILE: vol.path('password'),
        CLUSTER_NAME: uniqueName('rotate'),
        NAMESPACES_INCLUDE: ns,
        INTEGRATION_ENABLED: 'false',
        METRICS_VULNERABILITIES: 'false',
        LOG_LEVEL: 'info',
      }),
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    vol.remove();
  });

  it('when Anchore rejects the password and the Secret is then updated, then /readyz, the gauge and one log line say so meanwhile, and work resumes without a restart', async () => {
    const first = await runImage('first', 'nginx:1.25');
    await eventually(() => registered(first), 20_000, 100);
    expect((await readyz()).status).toBe(200);
    expect(await rejectedGauge()).toBe(0);

    // The admin rotates the password in Anchore; the Secret still holds the old one. New work meets 401s from several
    // controllers (registration of a new image, the inventory report of its pod) and the credential probe.
    sim.setPassword('admin', 'rotate-me-2');
    const during = await runImage('during', 'nginx:1.26');
    const notReady = await eventually(
      async () => {
        const r = await readyz();
        return r.status === 503 ? r : undefined;
      },
      20_000,
      200,
    );
    expect(notReady.body).toMatch(/^\[-\]anchore-credentials failed: Anchore rejects the operator credentials \(401\) since \d{4}-\d\d-\d\dT[\d:.]+Z: update the Secret/m);
    // The only failing check: Anchore answers and the caches are synced.
    expect(notReady.body.split('\n').filter((l) => l.startsWith('[-]'))).toHaveLength(1);
    expect(await rejectedGauge()).toBe(1);
    expect(operator.op.isReady()).toBe(true);
    // Evidence instead of a 7 s sleep: the credential probe (every 5 s) and the registration's retry have met the 401
    // again (a second refused POST /v2/images: the image controller looked again and still could not register).
    const refused = (q: Parameters<AnchoreSimulator['requests']>[0]): number => sim.requests(q).filter((r) => r.status === 401).length;
    await eventually(() => refused({ path: '/v2/policies' }) >= 1 && refused({ method: 'POST', path: '/v2/images' }) >= 2 && refused({}) >= 3, 20_000, 100).catch((err: unknown) => {
      throw new Error(`${String(err)}; 401s: policies ${refused({ path: '/v2/policies' })}, POST /v2/images ${refused({ method: 'POST', path: '/v2/images' })}, all ${refused({})}`);
    });
    expect(registered(during)).toBe(false);
    const failedCalls = refused({});
    // One line says it, however many calls, keys and controllers met the 401 (their retry lines are debug).
    const said = lines().filter((l) => l.msg.includes(REJECTED));
    expect(said).toHaveLength(1);
    expect(said[0]?.level).toBe('error');
    expect(lines().filter((l) => LOUD.has(l.level) && /401|credential/i.test(l.msg))).toEqual(said);

    // The Secret is updated (kubelet-style ..data swap): no restart.
    const fixedAt = Date.now();
    vol.update('password', 'rotate-me-2');
    await eventually(async () => (await readyz()).status === 200, 20_000, 200);
    const recoveredMs = Date.now() - fixedAt;
    expect(await rejectedGauge()).toBe(0);
    // The image that waited is registered, and new work goes through at once.
    await eventually(() => registered(during), 20_000, 100);
    const after = await runImage('after', 'nginx:1.27');
    await eventually(() => registered(after), 20_000, 100);
    expect(lines().filter((l) => l.msg.includes(REJECTED))).toHaveLength(1);
    expect(lines().filter((l) => l.msg === 'Anchore accepts the operator credentials again')).toHaveLength(1);
    // Never the password, old or new.
    expect(operator.logs.join('')).not.toMatch(/rotate-me-/);
    process.stdout.write(`[measure] ${failedCalls} calls refused with 401 while rejected, 1 log line; Secret updated → /readyz 200: ${recoveredMs} ms (credential probe every 5 s)\n`);
  }, 120_000);
});
