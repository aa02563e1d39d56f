/**
 * `npm run demo`: the main job on an embedded default. Starts (or reuses) the local control plane, the Anchore V2
 * SIMULATOR, the operator through its real entry point, and sample workloads; then prints what Anchore received.
 *   npm run demo              keeps running (Ctrl-C stops operator and simulator)
 *   npm run demo -- --once    prints once and exits (stops the cluster too if the demo started it)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unknownVariable } from '../src/config.ts';
import { CONDITION } from '../src/crds/types.ts';
import { type AnchoreSimulator, startSimulator } from '../test/anchore-sim/index.ts';
import { clusterStatus, startLocalCluster, stopLocalCluster } from '../test/cluster/local-cluster.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const once = process.argv.includes('--once');
const t0 = Date.now();
const say = (s: string): void => void process.stdout.write(`[demo +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<void> {
  const wasRunning = (await clusterStatus()).running;
  say(wasRunning ? 'reusing the local control plane' : 'starting the local control plane (first run builds Kubernetes from Go modules: several minutes)');
  const cluster = await startLocalCluster({ log: (s) => say(s) });
  const kubectl = (args: string[], input?: string): string => execFileSync(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, ...args], { encoding: 'utf8', ...(input ? { input } : {}) });

  kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(root, 'deploy', 'crds')]);
  kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/anchorepolicybindings.anchore.io', 'crd/clusteranchorepolicybindings.anchore.io']);
  say('installed the CRDs from deploy/crds');
  const sim: AnchoreSimulator = await startSimulator({ port: 0, config: { analysis: { queued_ms: 500, analyzing_ms: 1500 } } });
  say(`Anchore V2 SIMULATOR (not a real Anchore) on ${sim.url}`);

  const logDir = join(cluster.stateDir || root, 'demo');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, 'operator.log');
  const operator: ChildProcess = spawn(process.execPath, [join(root, 'src', 'main.ts')], {
    cwd: root,
    env: {
      // This shell's environment, less what the operator would refuse as a mistyped setting (ADMISSION_TEST_HOST of
      // the test suites, say): the demo's own settings follow.
      ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => unknownVariable(k, v ?? '') === undefined)),
      ANCHORE_URL: sim.url,
      ANCHORE_USERNAME: 'admin',
      ANCHORE_PASSWORD: 'foobar',
      CLUSTER_NAME: 'demo',
      KUBECONFIG: cluster.kubeconfig,
      // The demo's own namespaces: on a shared cluster (a user's kind, or the test suites running beside it) what
      // other workloads run is not the demo's to show, and would change its figures.
      NAMESPACES_INCLUDE: 'demo-*',
      NAMESPACES_EXCLUDE: 'kube-*',
      NAMESPACE_LABEL_SELECTOR: 'anchore.io/scan!=false',
      ACCOUNT_NAMESPACE_LABEL: 'anchore.io/account',
      BIND_ADDRESS: '127.0.0.1',
      HEALTH_PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      // One replica, but elected as in a real install: the Lease shows who works.
      LEADER_ELECTION: 'true',
      LEADER_ELECTION_NAMESPACE: 'default',
      LEADER_ELECTION_ID: 'anchore-operator-demo',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = createWriteStream(logFile);
  operator.stdout?.pipe(out);
  operator.stderr?.pipe(out);
  let operatorExit: number | null | undefined;
  operator.on('exit', (code) => (operatorExit = code));
  say(`operator started (node src/main.ts), log: ${logFile}`);

  const stopAll = async (code: number): Promise<never> => {
    operator.kill('SIGTERM');
    await until('operator exit', () => operatorExit !== undefined, 30_000).catch(() => operator.kill('SIGKILL'));
    await sim.stop();
    if (once && !wasRunning) {
      say('stopping the local control plane the demo started');
      await stopLocalCluster();
    } else {
      say('local control plane left running (npm run cluster:down stops it)');
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  try {
    kubectl(['apply', '-f', '-'], readFileSync(join(root, 'deploy', 'samples', 'demo-workloads.yaml'), 'utf8'));
    say('applied deploy/samples/demo-workloads.yaml');
    const pods = await until(
      'sample pods Running',
      () => {
        const list = JSON.parse(kubectl(['get', 'pods', '-A', '-l', 'app', '-o', 'json'])) as { items: Array<{ metadata: { namespace: string }; status: { phase?: string } }> };
        const demo = list.items.filter((p) => p.metadata.namespace.startsWith('demo-'));
        return demo.length >= 8 && demo.every((p) => p.status.phase === 'Running') ? demo.length : undefined;
      },
      120_000,
    );
    say(`${pods} sample pods Running`);
    await until(
      'images analyzed',
      () => {
        if (operatorExit !== undefined) throw new Error(`operator exited with ${operatorExit}; see ${logFile}`);
        const imgs = sim.images('admin');
        return imgs.length >= 6 && imgs.every((i) => i.analysis_status === 'analyzed') ? imgs : undefined;
      },
      120_000,
    );
    await until('inventory', () => sim.inventories('admin').length > 0, 60_000);
    for (const f of ['anchorepolicybinding.yaml', 'anchorepolicybinding-analyze.yaml']) {
      kubectl(['apply', '-f', join(root, 'deploy', 'samples', f)]);
    }
    say('applied the sample policy bindings (deploy/samples/anchorepolicybinding*.yaml)');
    await until(
      'bindings Ready',
      () => {
        const list = JSON.parse(kubectl(['get', 'apb', '-A', '-o', 'json'])) as { items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> };
        return list.items.length >= 2 && list.items.every((b) => b.status?.conditions?.some((c) => c.type === CONDITION.ready && c.status === 'True'));
      },
      120_000,
    );
    print(sim);
    process.stdout.write(`Policy bindings (kubectl get apb -A):\n${kubectl(['get', 'apb', '-A'])}\n`);
    await checkMonitoring(logFile);
    if (once) return void (await stopAll(0));
    say('running; Ctrl-C to stop. Try: kubectl --kubeconfig ' + cluster.kubeconfig + ' scale deploy/storefront -n demo-shop --replicas=5');
    let lastCount = sim.images('admin').length;
    setInterval(() => {
      const n = sim.images('admin').length;
      if (n !== lastCount) {
        lastCount = n;
        print(sim);
      }
    }, 2000);
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
    process.stdout.write(readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') + '\n');
    await stopAll(1);
  }
}

/**
 * Scrapes the operator and checks that every metric the shipped Grafana dashboard and alert rules reference is
 * present in this scenario, so the monitoring files cannot drift from what the operator exports.
 */
async function checkMonitoring(logFile: string): Promise<void> {
  const line = await until(
    'metrics server',
    () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .find((l) => l.includes('metrics server listening')),
    30_000,
  );
  const port = (JSON.parse(line) as { port: number }).port;
  const referenced = (file: string): string[] =>
    [...readFileSync(join(root, 'deploy', 'monitoring', file), 'utf8').matchAll(/anchore_operator_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
  const wanted = [...new Set([...referenced('grafana-dashboard.json'), ...referenced('prometheus-rules.yaml')])].sort();
  const present = await until(
    'findings metrics',
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const names = new Set(
        text
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => (/^[a-z_:]+/.exec(l)?.[0] ?? '').replace(/_(bucket|sum|count)$/, '')),
      );
      // The demo runs without the admission webhook: admission families are registered (declared by "# TYPE") but
      // have samples only once a review was answered, so declared is enough for them.
      for (const m of text.matchAll(/^# TYPE (anchore_operator_admission_\S+) /gm)) names.add(m[1] as string);
      return wanted.every((w) => names.has(w)) ? names : undefined;
    },
    30_000,
  ).catch(() => undefined);
  if (!present) throw new Error('metrics referenced by deploy/monitoring are missing from the operator scrape');
  process.stdout.write(`Monitoring: all ${wanted.length} metrics referenced by deploy/monitoring (dashboard + alert rules) are in the live scrape on :${port}\n`);
}

function print(sim: AnchoreSimulator): void {
  const imgs = sim.images('admin');
  const rows = imgs.map((i) => [
    (i.image_detail[0]?.full_tag ?? '?').padEnd(46),
    `${i.image_digest.slice(0, 19)}…`.padEnd(22),
    i.analysis_status.padEnd(10),
    String(i.annotations?.['anchore-operator/workload'] ?? ''),
  ]);
  process.stdout.write(`\nImages Anchore received (${imgs.length}):\n`);
  process.stdout.write(`${'TAG'.padEnd(46)}${'DIGEST'.padEnd(22)}${'ANALYSIS'.padEnd(10)}FIRST SEEN IN\n`);
  for (const r of rows.sort()) process.stdout.write(`${r.join('')}\n`);
  const inv = sim.inventories('admin');
  const last = inv[inv.length - 1]?.body;
  if (last) {
    process.stdout.write(
      `\nLatest runtime inventory (cluster "${last.cluster_name}", ${inv.length} reports so far): ${last.namespaces?.length ?? 0} namespaces, ${last.pods?.length ?? 0} pods, ${last.containers?.length ?? 0} containers, ${last.nodes?.length ?? 0} nodes\n`,
    );
    process.stdout.write(
      `namespaces: ${(last.namespaces ?? [])
        .map((n) => n.name)
        .sort()
        .join(', ')}\n\n`,
    );
  }
  const adds = sim.requests({ method: 'POST', path: '/v2/images' }).length;
  process.stdout.write(`POST /v2/images calls: ${adds} for ${imgs.length} unique images\n\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exit(1);
});
