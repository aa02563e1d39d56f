import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, digestOf, ensureCrds, eventually, kubectl, namespaceManifest, podList, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { imagesSettled } from '../support/looked.ts';
import { operatorEnv } from '../support/operator.ts';
import { scrape, valueOf } from '../support/prometheus.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/*
 * The operator process killed with SIGKILL in the middle of registering 200 new images (no shutdown hook runs, answers
 * in flight are lost), then started again: nothing is lost and nothing is added twice. The operator runs as a real
 * child process through its entry point (`node src/main.ts`), the way a Pod runs it.
 */
describe('SIGKILL mid-sync (real process, real cluster)', () => {
  let sim: AnchoreSimulator;
  const ns = uniqueName('sigkill');
  const cluster = uniqueName('sigkill');
  const label = 'sk';
  const procs: Proc[] = [];

  function start(): Proc {
    const env = operatorEnv(sim.url, {
      CLUSTER_NAME: cluster,
      NAMESPACES_INCLUDE: ns,
      LEADER_ELECTION: 'false',
      HEALTH_PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      // Few Anchore calls at once, so that with 50 ms per add the 200 registrations take a few seconds.
      ANCHORE_CONCURRENCY: '4',
      INTEGRATION_ENABLED: 'false',
      METRICS_VULNERABILITIES: 'false',
    });
    const child = spawn(process.execPath, ['src/main.ts'], { cwd: root, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = { child, stdout: [], stderr: [], exit: new Promise((res) => child.on('exit', (code, signal) => res({ code, signal }))) };
    child.stdout?.on('data', (d: Buffer) => p.stdout.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => p.stderr.push(d.toString()));
    procs.push(p);
    return p;
  }
  const logPort = async (p: Proc, message: string): Promise<number> => {
    const line = await eventually(
      () =>
        p.stdout
          .join('')
          .split('\n')
          .find((l) => l.includes(message)),
      30_000,
      50,
    );
    return (JSON.parse(line) as { port: number }).port;
  };
  const posts = () => sim.requests({ method: 'POST', path: '/v2/images' });
  const digestOfPost = (r: { body: unknown }): string => (r.body as { source?: { digest?: { pull_string?: string } } })?.source?.digest?.pull_string?.split('@')[1] ?? '';
  /** The adds for this suite's images, by digest, however they were answered. */
  const addsByDigest = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const r of posts()) if (JSON.stringify(r.body).includes(`/${label}/`)) m.set(digestOfPost(r), (m.get(digestOfPost(r)) ?? 0) + 1);
    return m;
  };
  const held = (digests: Set<string>): number => sim.images('admin').filter((i) => digests.has(i.image_digest)).length;

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    await ensureCrds();
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the operator is SIGKILLed while registering 200 new images and started again, then every image is added exactly once (answers lost in the kill are not repeated) and the inventory holds all 200', async () => {
    await apply(podList(ns, 'sk', 200, label, 'sigkill.registry.local'));
    const pods = await waitForRunningPods(ns, `batch=${label}`, 200, 180_000);
    const digests = new Set(pods.map((p) => digestOf(p.containers[0]?.imageID ?? '')).filter((d): d is string => !!d));
    expect(digests.size).toBe(200);

    // Slow Anchore: 50 ms per add.
    sim.setFaults([{ method: 'POST', path: '/v2/images', latencyMs: 50 }]);
    const first = start();
    await logPort(first, 'health server listening');
    await eventually(() => posts().length >= 50, 120_000, 5);
    // Hold the next adds inside Anchore for 2 s, so that some are certainly in flight when the process dies: Anchore
    // adds those images, but their answers never reach the operator. `remaining` counts the adds that arrived.
    sim.setFaults([
      { method: 'POST', path: '/v2/images', latencyMs: 2_000, count: 3 },
      { method: 'POST', path: '/v2/images', latencyMs: 50 },
    ]);
    const faults = async (): Promise<Array<{ remaining?: number }>> => (await fetch(`${sim.url}/_sim/faults`)).json() as Promise<Array<{ remaining?: number }>>;
    await eventually(
      async () => {
        const rule = (await faults()).find((f) => f.remaining !== undefined); // gone once all 3 arrived
        return rule === undefined || (rule.remaining ?? 0) <= 1;
      },
      10_000,
      5,
    );
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');
    const answeredBeforeKill = posts().filter((r) => r.time + r.durationMs <= killedAt).length;
    // Let the held adds land in Anchore (their answers go nowhere), then count what it holds: every held add that
    // arrived (the rule is gone once all 3 did) has been answered, and every request that arrived before the last one
    // answered has been answered too (the log records a request when it is answered; seq is taken on arrival).
    const heldArrived = 3 - ((await faults()).find((f) => f.remaining !== undefined)?.remaining ?? 0);
    await eventually(
      () => {
        const seqs = sim.requests().map((r) => r.seq);
        return posts().filter((r) => r.durationMs >= 2_000).length >= heldArrived && seqs.length === Math.max(...seqs) - Math.min(...seqs) + 1;
      },
      10_000,
      20,
    );
    const heldAtRestart = held(digests);
    const lostAnswers = heldAtRestart - answeredBeforeKill;
    expect(answeredBeforeKill).toBeGreaterThanOrEqual(40);
    expect(heldAtRestart).toBeLessThan(200);
    expect(lostAnswers).toBeGreaterThanOrEqual(2);

    sim.setFaults([{ method: 'POST', path: '/v2/images', latencyMs: 50 }]);
    const restartedAt = Date.now();
    const second = start();
    const metricsPort = await logPort(second, 'metrics server listening');
    await eventually(() => held(digests) === 200, 120_000, 20);
    const completeMs = Date.now() - restartedAt;
    const inventory = await eventually(
      () => {
        const reports = sim.inventories('admin').filter((r) => r.body.cluster_name === cluster && r.receivedAt >= restartedAt);
        const last = reports[reports.length - 1];
        const seen = new Set((last?.body.containers ?? []).map((c) => c.image_digest));
        return [...digests].every((d) => seen.has(d)) ? last : undefined;
      },
      60_000,
      100,
    );
    const inventoryMs = inventory.receivedAt - restartedAt;
    // Every image reconciled by the restarted process (each is queued once on start), none left queued (no
    // registration, poll or retry waiting): a stray duplicate add would have been sent.
    await imagesSettled(metricsPort, 200, 60_000);

    const adds = addsByDigest();
    const duplicates = [...adds].filter(([, n]) => n !== 1);
    process.stdout.write(
      `[measure] SIGKILL mid-sync, 200 new images at 50 ms per add: killed after ${answeredBeforeKill} adds answered + ${lostAnswers} whose answers were lost; ` +
        `restarted process registered the remaining ${200 - heldAtRestart} in ${completeMs} ms (process start included), inventory with all 200 after ${inventoryMs} ms; ` +
        `${duplicates.length} digests added more than once\n`,
    );
    expect([...digests].filter((d) => adds.get(d) === undefined)).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(adds.size).toBe(200);
    // The restarted process learned what Anchore holds before adding anything.
    const secondLog = second.stdout.join('');
    expect(secondLog).toMatch(/"msg":"learned the images Anchore already holds"/);
    expect(JSON.parse(secondLog.split('\n').find((l) => l.includes('learned the images Anchore already holds')) ?? '{}')).toMatchObject({ account: 'admin', images: heldAtRestart });
    // Its own count agrees: it added only what Anchore did not hold.
    expect(valueOf(await scrape(metricsPort), 'anchore_operator_images_registered_total', { account: 'admin' })).toBe(200 - heldAtRestart);
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  }, 420_000);
});
