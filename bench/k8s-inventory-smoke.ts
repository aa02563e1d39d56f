// Smoke test for running anchore/k8s-inventory beside the operator: the real agent (periodic mode, 10 s polls)
// against the local control plane and the Anchore V2 simulator, restricted to one fresh namespace. Creates a
// Deployment, and prints the delay from its pod turning Running to the first inventory report that names the image.
//
//   node_modules/.bin/node bench/k8s-inventory-smoke.ts [--poll-seconds 10] [--image nginx:1.27]
//
// Needs the local control plane (npm run cluster:up) or KUBECONFIG_FOR_BENCH/KUBECTL_FOR_BENCH. The agent comes from
// bench/build-k8s-inventory.sh (or K8S_INVENTORY_BINARY). Exit status: 0 ok, 1 failed, 3 the agent cannot be had here.
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from '../test/anchore-sim/index.ts';
import type { AnchoreSimulator, InventoryReport } from '../test/anchore-sim/index.ts';
import { ensureK8sInventory, K8sInventoryUnavailableError, k8sInventoryVersionName, startK8sInventory } from './support/k8s-inventory.ts';
import type { RunningK8sInventory } from './support/k8s-inventory.ts';

const { values: args } = parseArgs({
  options: {
    'poll-seconds': { type: 'string', default: '10' },
    image: { type: 'string', default: 'nginx:1.27' },
  },
});
const POLL_SECONDS = Number(args['poll-seconds']);
const IMAGE = args.image;
const T0 = Date.now();
const say = (s: string): void => console.log(`[k8s-inventory-smoke +${((Date.now() - T0) / 1000).toFixed(1).padStart(5)}s] ${s}`);

function clusterPaths(): { kubeconfig: string; kubectl: string } {
  const cache = process.env['ANCHORE_OPERATOR_CACHE'] ?? join(homedir(), '.cache', 'anchore-operator');
  const kubeconfig = process.env['KUBECONFIG_FOR_BENCH'] ?? join(cache, 'cluster', 'kubeconfig');
  let kubectl = process.env['KUBECTL_FOR_BENCH'];
  if (!kubectl) {
    const env = join(cache, 'bin', 'paths.env');
    if (existsSync(env)) kubectl = /^KUBECTL=(.*)$/m.exec(readFileSync(env, 'utf8'))?.[1];
  }
  if (!kubectl || !existsSync(kubeconfig)) throw new Error(`no local cluster: kubeconfig ${kubeconfig} / kubectl ${String(kubectl)} (run npm run cluster:up)`);
  return { kubeconfig, kubectl };
}

const { kubeconfig, kubectl: KUBECTL } = clusterPaths();

function kubectl(argv: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(KUBECTL, ['--kubeconfig', kubeconfig, ...argv], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${argv.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Resolves with the time a pod of the namespace was first seen Running (a kubectl watch, so no polling lag). */
function watchFirstRunning(namespace: string): { running: Promise<{ uid: string; name: string; at: number }>; stop(): void } {
  const child = spawn(KUBECTL, ['--kubeconfig', kubeconfig, 'get', 'pods', '-n', namespace, '-w', '-o', 'jsonpath={.metadata.uid} {.metadata.name} {.status.phase}{"\\n"}'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const running = new Promise<{ uid: string; name: string; at: number }>((resolve, reject) => {
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const at = Date.now();
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const [uid, name, phase] = line.trim().split(/\s+/);
        if (phase === 'Running' && uid && name) resolve({ uid, name, at });
      }
    });
    child.on('exit', (code) => reject(new Error(`kubectl get pods -w exited ${String(code)}: ${stderr.trim()}`)));
  });
  running.catch(() => undefined);
  return { running, stop: () => child.kill('SIGTERM') };
}

async function until<T>(what: string, timeoutMs: number, fn: () => T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function names(report: InventoryReport, image: string, podUid: string): boolean {
  const want = new Set([image, `docker.io/library/${image}`]);
  return (report.body.containers ?? []).some((c) => want.has(String(c.image_tag)) && c.pod_uid === podUid);
}

async function main(): Promise<number> {
  let binary: string;
  try {
    binary = await ensureK8sInventory();
  } catch (err) {
    if (err instanceof K8sInventoryUnavailableError) {
      say(`BLOCKED: ${err.message}`);
      return 3;
    }
    throw err;
  }
  const agentVersion = `version ${k8sInventoryVersionName(binary) ?? 'unknown'}`;
  say(`agent: ${binary} (${agentVersion})`);
  await kubectl(['get', '--raw', '/readyz']);

  const simLog: string[] = [];
  const namespace = `ki-smoke-${randomBytes(3).toString('hex')}`;
  const workDir = mkdtempSync(join(tmpdir(), 'k8s-inventory-smoke-'));
  let sim: AnchoreSimulator | undefined;
  let agent: RunningK8sInventory | undefined;
  let watch: ReturnType<typeof watchFirstRunning> | undefined;
  let ok = false;
  try {
    sim = await startSimulator({ log: (l) => simLog.push(`${new Date().toISOString()} ${l}`) });
    say(`simulator at ${sim.url}`);
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }));
    say(`namespace ${namespace} created`);

    agent = await startK8sInventory({
      binary,
      kubeconfig,
      anchoreUrl: sim.url,
      username: 'admin',
      password: 'foobar',
      account: 'admin',
      pollSeconds: POLL_SECONDS,
      namespaces: [namespace],
      clusterName: 'ki-smoke',
      workDir,
    });
    say(`anchore-k8s-inventory pid ${agent.pid}, polling every ${POLL_SECONDS} s`);

    // Steady state first: the agent checks /version, registers, then sends its first (empty) report.
    const s = sim;
    const first = await until('the first inventory report', 60_000 + 2 * POLL_SECONDS * 1000, () => s.inventories('admin')[0]);
    say(
      `first report at +${((first.receivedAt - T0) / 1000).toFixed(1)}s: cluster_name=${first.body.cluster_name}, ${first.body.namespaces?.length ?? 0} namespace(s), ${first.body.containers?.length ?? 0} container(s)`,
    );

    watch = watchFirstRunning(namespace);
    const applyAt = Date.now();
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'web', image: IMAGE }] } },
        },
      }),
    );
    const pod = await watch.running;
    say(`pod ${pod.name} Running ${pod.at - applyAt} ms after kubectl apply`);

    const report = await until(`a report naming ${IMAGE} in pod ${pod.uid}`, 3 * POLL_SECONDS * 1000 + 30_000, () =>
      s.inventories('admin').find((r) => r.receivedAt >= applyAt && names(r, IMAGE, pod.uid)),
    );
    const c = report.body.containers!.find((x) => x.pod_uid === pod.uid)!;
    say(`report received: image_tag=${c.image_tag} image_digest=${c.image_digest} id=${c.id}`);
    say(
      `RESULT: the agent (${agentVersion}) reported ${IMAGE} ${report.receivedAt - pod.at} ms after the pod was Running (poll ${POLL_SECONDS} s; ${report.receivedAt - applyAt} ms after kubectl apply)`,
    );
    ok = true;
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
  } finally {
    watch?.stop();
    if (sim !== undefined) {
      const rejected = sim.requests().filter((r) => r.status < 200 || r.status > 299);
      const summary = new Map<string, number>();
      for (const r of sim.requests()) summary.set(`${r.method} ${r.path} -> ${r.status}`, (summary.get(`${r.method} ${r.path} -> ${r.status}`) ?? 0) + 1);
      say(`requests the simulator saw: ${[...summary].map(([k, n]) => `${k} x${n}`).join(', ') || 'none'}`);
      if (rejected.length > 0) {
        ok = false;
        say(`the simulator answered ${rejected.length} request(s) with a non-2xx status:`);
        for (const r of rejected.slice(0, 10)) say(`  ${r.method} ${r.path} -> ${r.status} body=${JSON.stringify(r.body)?.slice(0, 300)}`);
        for (const l of simLog.filter((x) => !/ -> 2\d\d /.test(x)).slice(0, 10)) say(`  sim log: ${l}`);
      }
    }
    if (agent !== undefined) {
      await agent.stop();
      if (!ok) say(`agent output (last 40 lines):\n${agent.output.slice(-40).join('\n')}`);
    }
    await kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']).catch((e: Error) => say(`cleanup: ${e.message}`));
    await sim?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
