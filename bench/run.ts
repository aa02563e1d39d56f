/**
 * Benchmarks (`npm run bench -- [options]`): scripts that print figures, not timed tests. On the local control plane
 * (kwok makes pods Running) and the Anchore simulator, with the operator as a child process through its real entry
 * point (dist/main.js, built first with tsc as in the container image). Prints one JSON document and Markdown tables.
 *
 *   npm run bench                     the full suite: 10,000 pods, 2,000 images, 200 namespaces, churn 50 pods/s for 60 s
 *   npm run bench -- --small          a few hundred pods (what CI runs to keep the harness working)
 *   npm run bench -- --compare-k8s-inventory   also run anchore/k8s-inventory (60 s poll) beside the operator over
 *            every namespace of the run from the steady-state window on (bytes to Anchore of both, same windows; the
 *            steady and churn windows then last at least one poll), and scenario 7 (detection latency, 40 pods)
 *   options: --pods N --images N --namespaces N --churn-rate N --churn-seconds N --steady-seconds N --out FILE
 *            --churn-namespaces N (spread the churn pods over N namespaces; default 1)
 *            --keep (leave the namespaces) --cpu-prof (write a .cpuprofile of the operator to the log dir)
 *            --heap-snapshot (a .heapsnapshot of the operator at the end of the steady-state window, in the log dir)
 *            --skip policy,steady,restart (leave scenarios out, to iterate on churn)
 *            --samples FILE (every churn pod's timestamps, with the harness's delay at each, and every inventory report)
 *   npm run bench -- --admission [--small] ...   the admission webhook instead: latency at 50 requests/s, cache hit,
 *            miss and tag miss (bench/admission.ts lists its options)
 *   npm run bench -- --event-loop [--pods N]   no cluster: the longest event-loop task of report, scrape and list (bench/event-loop.ts)
 *
 * The run always ends with its figures: whatever could not be measured (a wait that timed out, the operator or the
 * agent gone) is listed in `notMeasured` and the other scenarios go on. Each churn latency is printed with the
 * benchmark's own delay at its two stamps beside it (bench/support/churn.ts), and bytes posted to
 * POST /v2/kubernetes-inventory are given per sender and window (`bytesToAnchore`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type AnchoreSimulator, startSimulator } from '../test/anchore-sim/index.ts';
import { acquireTestCluster } from '../test/support/cluster.ts';
import { type AgentBeside, K8S_INVENTORY_CHART_POLL_SECONDS, compareLatency, startK8sInventoryBeside, stopAgent } from './compare.ts';
import { type ChurnPod, analyseChurn } from './support/churn.ts';
import {
  type KubeConnection,
  connectionFromKubeconfig,
  countRunning,
  createNamespace,
  deleteNamespaces,
  deploymentBody,
  digestOf,
  parallel,
  podBody,
  req,
  waitFor,
  watchRunning,
} from './support/kube.ts';
import { LoopTicker } from './support/lateness.ts';
import { OperatorProcess, benchOperatorEnv, imageNodeFlags, loggedSetting, prepareCluster, procStats, startReady, waitBindingEvaluated, waitForQuiet } from './support/operator.ts';
import { ReportCollector } from './support/reports.ts';
import { type Percentiles, bytesTable, latencyTable, markdownTable, median } from './support/stats.ts';

interface Options {
  pods: number;
  images: number;
  namespaces: number;
  churnRate: number;
  churnSeconds: number;
  churnNamespaces: number;
  steadySeconds: number;
  compare: boolean;
  keep: boolean;
  cpuProf: boolean;
  heapProf: boolean;
  heapSnapshot: boolean;
  out?: string;
  samples?: string;
  skip: Set<string>;
  small: boolean;
}

/** Scenarios that --skip can leave out (cold start and churn always run: the others depend on them). */
const SKIPPABLE = ['policy', 'steady', 'restart'];

function parseArgs(argv: string[]): Options {
  const small = argv.includes('--small');
  // --small: a size CI can afford (bench-small.test.ts); the default is the brief's 10,000-pod cluster.
  const size = small
    ? { pods: 300, images: 60, namespaces: 6, churnRate: 10, churnSeconds: 10, steadySeconds: 15 }
    : { pods: 10_000, images: 2_000, namespaces: 200, churnRate: 50, churnSeconds: 60, steadySeconds: 60 };
  const o: Options = { ...size, churnNamespaces: 1, compare: false, keep: false, cpuProf: false, heapProf: false, heapSnapshot: false, skip: new Set<string>(), small };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--pods') o.pods = num();
    else if (a === '--images') o.images = num();
    else if (a === '--namespaces') o.namespaces = num();
    else if (a === '--churn-rate') o.churnRate = num();
    else if (a === '--churn-seconds') o.churnSeconds = num();
    else if (a === '--churn-namespaces') o.churnNamespaces = num();
    else if (a === '--steady-seconds') o.steadySeconds = num();
    else if (a === '--compare-k8s-inventory') o.compare = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--cpu-prof') o.cpuProf = true;
    else if (a === '--heap-prof') o.heapProf = true;
    else if (a === '--heap-snapshot') o.heapSnapshot = true;
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--samples') o.samples = argv[++i];
    else if (a === '--skip') {
      for (const name of (argv[++i] ?? '').split(',')) {
        if (!SKIPPABLE.includes(name)) throw new Error(`--skip takes a comma-separated list of ${SKIPPABLE.join(', ')}; got '${name}'`);
        o.skip.add(name);
      }
    } else if (a !== '--small') throw new Error(`unknown option ${a}`);
  }
  if (o.images % o.namespaces !== 0 || o.pods % o.images !== 0) throw new Error('--images must be a multiple of --namespaces and --pods a multiple of --images');
  if (!Number.isInteger(o.churnNamespaces)) throw new Error('--churn-namespaces needs a whole number');
  return o;
}

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
const sec = (ms: number): number => Math.round(ms / 10) / 100;
const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** First time (ms) the simulator received an add for each digest, and how many adds per digest. */
function addsByDigest(sim: AnchoreSimulator): { first: Map<string, number>; count: Map<string, number> } {
  const first = new Map<string, number>();
  const count = new Map<string, number>();
  for (const r of sim.requests({ method: 'POST', path: '/v2/images' })) {
    // source.digest.pull_string is "<repo>@sha256:<hex>".
    const pull = (r.body as { source?: { digest?: { pull_string?: string } } } | undefined)?.source?.digest?.pull_string ?? '';
    const d = digestOf(pull);
    if (!d || r.status >= 300) continue;
    if (!first.has(d)) first.set(d, r.time);
    count.set(d, (count.get(d) ?? 0) + 1);
  }
  return { first, count };
}

/** Paths (a.b[2].c) where two JSON values differ, at most 20. */
function statusDiff(a: unknown, b: unknown, path = 'status', out: string[] = []): string[] {
  if (out.length >= 20) return out;
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) statusDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
  } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path);
  return out;
}

/**
 * Percentiles of a perf_hooks event-loop delay histogram, in ms, less its sampling interval: the histogram records the
 * time between two of its timer's runs, so an idle loop reads as the interval itself.
 */
function loopDelayMs(h: ReturnType<typeof monitorEventLoopDelay>, resolutionMs: number): Omit<Percentiles, 'n'> {
  const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - resolutionMs) * 10) / 10);
  return { p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

async function main(): Promise<void> {
  if (process.argv.includes('--admission')) return (await import('./admission.ts')).runAdmissionBench(process.argv.slice(2));
  if (process.argv.includes('--event-loop')) return (await import('./event-loop.ts')).runEventLoopBench(process.argv.slice(2));
  const o = parseArgs(process.argv.slice(2));
  const run = `b${randomBytes(2).toString('hex')}`;
  const cluster = await acquireTestCluster();
  const conn: KubeConnection = connectionFromKubeconfig(cluster.kubeconfig);
  const logDir = join(cluster.stateDir || '/tmp', 'bench', run);
  mkdirSync(logDir, { recursive: true });
  say(`run ${run}: ${o.pods} pods, ${o.images} images, ${o.namespaces} namespaces; logs in ${logDir}`);

  const collector = new ReportCollector();
  const sim = await startSimulator({
    config: { analysis: { queued_ms: 100, analyzing_ms: 500 } },
    // Inventory reports are read through onInventory. The request log keeps the small bodies (image adds, ~300
    // bytes); a larger body (an inventory, even of one namespace) is replaced by a note of its exact size, where the
    // bytes posted are read when the simulator does not pass them with the report, and costs this process no memory.
    retention: { requestBodyMaxBytes: 16 * 1024, requestBodyBytes: 64 * MiB, inventoryReportBytes: 16 * MiB },
    onInventory: (r) => collector.add(r),
  });
  const inventoryRequests = () => sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory', account: 'admin' });
  const clusterName = `bench-${run}`;
  const label = { 'bench-run': run };
  const selector = `bench-run=${run}`;
  const nsNames = Array.from({ length: o.namespaces }, (_, i) => `bench-${run}-${i}`);
  const churnNamespaces = o.churnNamespaces === 1 ? [`bench-${run}-churn`] : Array.from({ length: o.churnNamespaces }, (_, i) => `bench-${run}-churn-${i}`);
  const cmpNs = `bench-${run}-cmp`;
  const allNamespaces = [...nsNames, ...churnNamespaces, ...(o.compare ? [cmpNs] : [])];
  const results: Record<string, unknown> = { run, params: { ...o, skip: [...o.skip], nodeFlags: imageNodeFlags() }, machine: { cpus: cpus().length } };
  const notMeasured: string[] = [];
  const note = (scenario: string, what: string): void => {
    notMeasured.push(`${scenario}: ${what}`);
    say(`${scenario}: NOT MEASURED: ${what}`);
  };
  /** A wait that records a timeout in notMeasured instead of ending the run; the elapsed ms, or undefined. */
  const soft = (scenario: string, ...args: Parameters<typeof waitFor>): Promise<number | undefined> =>
    waitFor(...args).catch((err: unknown) => {
      note(scenario, (err as Error).message);
      return undefined;
    });
  /** Runs a scenario; if it fails, what it was measuring is listed in notMeasured and the run goes on. */
  const scenario = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      note(name, (err as Error).message);
    }
  };
  const env = benchOperatorEnv(sim.url, cluster.kubeconfig, run, clusterName);
  const operatorLog = join(logDir, 'operator.log');
  const nodeArgs = [
    ...(o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${logDir}`] : []),
    // Sampling heap profile of what is still live when the process exits (after the steady-state window).
    ...(o.heapProf ? ['--heap-prof', `--heap-prof-dir=${logDir}`] : []),
    ...(o.heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${logDir}`] : []),
  ];
  let op: OperatorProcess | undefined;
  /** The operator, or an error that says why there is none (the scenario is then not measured). */
  const operator = (): OperatorProcess => {
    if (!op) throw new Error('the operator is not running (it did not start)');
    if (op.exited) throw new Error(`the operator has exited; see ${operatorLog}`);
    return op;
  };
  let ki: AgentBeside | undefined;
  const bytes: Record<string, unknown> = {};
  /** When the operator was started (a full report follows each start), and the churn window: full-report intervals that span either are not steady state. */
  const operatorStarts: number[] = [];
  const windows: Record<string, { from: number; to: number }> = {};
  const bytesRows: Parameters<typeof bytesTable>[0] = [];
  let latencyRows: Parameters<typeof latencyTable>[0] = [];
  /** Bytes each sender posted in [from, to), into results.bytesToAnchore[window] and the bytes table. */
  const bytesWindow = (window: string, from: number, to: number, extra: Record<string, unknown> = {}): void => {
    collector.attachBytes(inventoryRequests());
    windows[window] = { from, to };
    const seconds = Math.round((to - from) / 100) / 10;
    const senders: Record<string, ReturnType<ReportCollector['bytesIn']>> = { operator: collector.bytesIn(clusterName, from, to) };
    if (ki) senders['k8sInventory'] = collector.bytesIn(ki.cluster, from, to);
    bytes[window] = { windowSeconds: seconds, ...extra, ...senders };
    for (const [sender, b] of Object.entries(senders)) {
      bytesRows.push({ window, sender, seconds, ...b });
      if (b.unsized > 0) note(`bytesToAnchore.${window}`, `${b.unsized} ${sender} report(s) whose size was no longer in the simulator's request log`);
    }
  };
  // With the agent beside it, a window shorter than one of its polls would see none of its reports, or one at random.
  const agentWindowSeconds = (s: number): number => (ki ? Math.max(s, K8S_INVENTORY_CHART_POLL_SECONDS) : s);

  try {
    // --- Setup (not measured): namespaces, one Deployment per image, all pods Running before the operator starts.
    const perNs = o.images / o.namespaces;
    const replicas = o.pods / o.images;
    let t = Date.now();
    prepareCluster(cluster);
    await parallel(allNamespaces, 32, (n) => createNamespace(conn, n, label));
    const deployments = nsNames.flatMap((ns, i) => Array.from({ length: perNs }, (_, j) => ({ ns, name: `app-${j}`, image: `bench.registry.local/${run}/team-${i}/app-${j}:1.0` })));
    await parallel(deployments, 32, (d) => req(conn, 'POST', `/apis/apps/v1/namespaces/${d.ns}/deployments`, deploymentBody(d.ns, d.name, replicas, d.image, label)).then(() => undefined));
    let running = 0;
    await soft(
      'setup',
      `${o.pods} pods Running`,
      async () => (running = await countRunning(conn, selector)) >= o.pods,
      900_000,
      2000,
      () => `${running}/${o.pods}`,
    );
    results['setup'] = { podsRunning: running, podsRunningSeconds: sec(Date.now() - t) };
    say(`setup: ${running} pods Running after ${sec(Date.now() - t)} s`);

    // --- 1. Cold start: every image registered and the inventory sent.
    const expected = new Set<string>();
    await scenario('coldStart', async () => {
      t = Date.now();
      operatorStarts.push(t);
      op = await startReady(env, operatorLog, nodeArgs);
      const readyMs = Date.now() - t;
      const registered = await soft(
        'coldStart',
        `${o.images} images registered`,
        () => sim.images('admin').length >= o.images || operator().exited,
        600_000,
        100,
        () => `${sim.images('admin').length}/${o.images}`,
      );
      const registeredMs = Date.now() - t;
      for (const i of sim.images('admin')) expected.add(i.image_digest);
      let scanned = 0;
      const sent = await soft(
        'coldStart',
        'inventory with every image',
        () => {
          const reports = collector.of(clusterName, scanned);
          scanned = collector.seen.length;
          return reports.some((r) => [...expected].every((d) => r.digests.has(d))) || operator().exited;
        },
        600_000,
        200,
      );
      const inventoryMs = Date.now() - t;
      results['coldStart'] = {
        readySeconds: sec(readyMs),
        allRegisteredSeconds: registered === undefined ? null : sec(registeredMs),
        inventorySentSeconds: sent === undefined ? null : sec(inventoryMs),
        uniqueImages: expected.size,
      };
      say(`cold start: ready ${sec(readyMs)} s, ${expected.size} images registered ${sec(registeredMs)} s, inventory ${sec(inventoryMs)} s`);
    });

    // --- The agent beside the operator, from here to the end, over every namespace of the run.
    if (o.compare) {
      await scenario('k8sInventory', async () => {
        t = Date.now();
        const started = await startK8sInventoryBeside({ sim, reports: collector, kubeconfig: cluster.kubeconfig, run, namespaces: allNamespaces, logDir });
        if ('blocked' in started) {
          results['k8sInventory'] = { blocked: started.blocked };
          note('k8sInventory', started.blocked);
          return;
        }
        ki = started;
        results['k8sInventory'] = { agent: ki.about, firstReportSeconds: sec(Date.now() - t) };
        say(`k8s-inventory ${ki.about.version} polling every ${ki.about.pollSeconds} s over ${ki.about.namespaces} namespaces; first report after ${sec(Date.now() - t)} s`);
      });
    }

    const bindingName = `bench-${run}`;
    type Capb = { metadata: { generation: number; resourceVersion: string }; status?: { observedGeneration?: number; summary?: Record<string, number> } };
    const getBinding = async (): Promise<Capb | undefined> =>
      o.skip.has('policy') ? undefined : ((await req(conn, 'GET', `/apis/anchore.io/v1alpha1/clusteranchorepolicybindings/${bindingName}`, undefined, [200, 404])) as Capb);

    // --- 6. Policy evaluation: one cluster binding over every image.
    if (!o.skip.has('policy')) {
      await scenario('policyEvaluation', async () => {
        await waitFor('analysis complete in Anchore', () => sim.images('admin').every((i) => i.analysis_status === 'analyzed' || i.analysis_status === 'analysis_failed'), 600_000, 500);
        // The operator learns of finished analyses by polling each image with backoff (1 s doubling up to
        // ANALYSIS_POLL_MAX_SECONDS): measured separately, so the evaluation figure is about evaluation only.
        t = Date.now();
        await waitFor('operator sees every image analysed', async () => (await operator().metricSum('anchore_operator_images', 'analysis_status="analyzed"')) >= expected.size, 600_000, 500);
        results['analysisObserved'] = { secondsAfterAnchoreFinished: sec(Date.now() - t), sinceOperatorStartSeconds: sec(Date.now() - operator().startedAt) };
        const checksBefore = sim.requests({ method: 'GET', path: /\/check$/ }).length;
        t = Date.now();
        await req(conn, 'POST', '/apis/anchore.io/v1alpha1/clusteranchorepolicybindings', {
          apiVersion: 'anchore.io/v1alpha1',
          kind: 'ClusterAnchorePolicyBinding',
          metadata: { name: bindingName },
          spec: { namespaceSelector: { matchLabels: label } },
        });
        const summary = await waitBindingEvaluated(conn, `/apis/anchore.io/v1alpha1/clusteranchorepolicybindings/${bindingName}`, o.images, `binding over ${o.images} images evaluated`, 600_000, 200);
        const evalMs = Date.now() - t;
        const checks = sim.requests({ method: 'GET', path: /\/check$/ }).length - checksBefore;
        results['policyEvaluation'] = { images: o.images, allEvaluatedSeconds: sec(evalMs), checkCalls: checks, summary };
        say(`policy evaluation: ${o.images} images evaluated in ${sec(evalMs)} s with ${checks} /check calls`);
      });
    }

    // --- 5. Steady state: RSS, CPU, status writes, Anchore calls, bytes to Anchore over a quiet window — after the
    // first-time work (vulnerability reads of every new image) is done.
    if (!o.skip.has('steady')) {
      await scenario('steadyState', async () => {
        await waitForQuiet(operator(), () => sim.requests().length, 'work queues idle and Anchore quiet', 600_000, 3000);
        // A status write can still be due (coalesced or paced, so in no ready queue): the window starts once the
        // binding has not changed for 5 s.
        let lastVersion: string | undefined = '(not read yet)';
        await soft(
          'steadyState',
          'binding status unchanged for 5 s',
          async () => {
            const v = (await getBinding())?.metadata.resourceVersion;
            const same = v === lastVersion;
            lastVersion = v;
            return same;
          },
          120_000,
          5000,
        );
        const opNow = operator();
        const b0 = await getBinding();
        const writes0 = await opNow.metricSum('anchore_operator_reconcile_total', 'controller="binding-status"', 'result="written"');
        const reqs0 = sim.requests().length;
        const s0 = opNow.stats();
        const k0 = ki && !ki.agent.exited() ? procStats(ki.agent.pid) : undefined;
        const t0 = Date.now();
        const windowMs = agentWindowSeconds(o.steadySeconds) * 1000;
        const rss: number[] = [];
        const anon: number[] = [];
        const file: number[] = [];
        const kiRss: number[] = [];
        while (Date.now() - t0 < windowMs) {
          rss.push(operator().stats().rssBytes);
          const split = operator().rssSplit();
          anon.push(split.anonBytes);
          file.push(split.fileBytes);
          if (ki && !ki.agent.exited()) kiRss.push(procStats(ki.agent.pid).rssBytes);
          await sleep(1000);
        }
        const t1 = Date.now();
        const s1 = operator().stats();
        const k1 = ki && !ki.agent.exited() ? procStats(ki.agent.pid) : undefined;
        const window = (t1 - t0) / 1000;
        const b1 = await getBinding();
        const writes1 = await operator().metricSum('anchore_operator_reconcile_total', 'controller="binding-status"', 'result="written"');
        const heapUsed = await operator().metricSum('anchore_operator_nodejs_heap_size_used_bytes');
        const heapTotal = await operator().metricSum('anchore_operator_nodejs_heap_size_total_bytes');
        const external = await operator().metricSum('anchore_operator_nodejs_external_memory_bytes');
        const steady = {
          windowSeconds: Math.round(window),
          heapMiB: { used: Math.round(heapUsed / MiB), total: Math.round(heapTotal / MiB), external: Math.round(external / MiB) },
          rssMiB: { median: Math.round(median(rss) / MiB), max: Math.round(Math.max(...rss) / MiB), anonymousMedian: Math.round(median(anon) / MiB), fileBackedMedian: Math.round(median(file) / MiB) },
          cpuPercentOfOneCore: Math.round(((s1.cpuSeconds - s0.cpuSeconds) / window) * 10000) / 100,
          bindingStatusWrites: writes1 - writes0,
          bindingResourceVersionMoved: b0 && b1 ? b1.metadata.resourceVersion !== b0.metadata.resourceVersion : null,
          // What a write in the window changed, to tell a real change from a rewrite of the same status.
          bindingStatusFieldsChanged: b0 && b1 ? statusDiff(b0.status, b1.status) : [],
          anchoreRequests: sim.requests().length - reqs0,
          ...(k0 && k1 && kiRss.length
            ? {
                k8sInventory: {
                  rssMiB: { median: Math.round(median(kiRss) / MiB), max: Math.round(Math.max(...kiRss) / MiB) },
                  cpuPercentOfOneCore: Math.round(((k1.cpuSeconds - k0.cpuSeconds) / window) * 10000) / 100,
                },
              }
            : {}),
        };
        results['steadyState'] = steady;
        bytesWindow('steady', t0, t1);
        if (o.heapSnapshot) {
          // Written by the operator itself (V8 pauses it while it writes); taken after the RSS samples.
          const before = new Set(readdirSync(logDir));
          process.kill(operator().pid, 'SIGUSR2');
          let size = -1;
          await soft(
            'steadyState',
            'heap snapshot written',
            () => {
              const file = readdirSync(logDir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
              const now = file ? statSync(join(logDir, file)).size : -1;
              const done = now > 0 && now === size; // unchanged for one poll: the operator finished writing it
              size = now;
              return done;
            },
            120_000,
            1000,
          );
          say(`heap snapshot in ${logDir}`);
        }
        say(
          `steady state (${steady.windowSeconds} s): RSS median ${steady.rssMiB.median} MiB (max ${steady.rssMiB.max}), CPU ${steady.cpuPercentOfOneCore} % of a core, ${steady.bindingStatusWrites} status writes`,
        );
      });
    }

    // --- 3. Restart with everything registered.
    if (!o.skip.has('restart')) {
      await scenario('restart', async () => {
        const addsBeforeRestart = sim.requests({ method: 'POST', path: '/v2/images' }).length;
        const invBefore = collector.seen.length;
        await op?.stop();
        t = Date.now();
        operatorStarts.push(t);
        op = await OperatorProcess.start(env, operatorLog, nodeArgs);
        await waitFor('operator ready after restart', async () => (await operator().ready()) || operator().exited, 120_000, 100);
        const restartReadyMs = Date.now() - t;
        await waitFor('inventory after restart', () => collector.of(clusterName, invBefore).length > 0 || operator().exited, 120_000, 100);
        const restartInventoryMs = Date.now() - t;
        // Give the image controller time to go over every running image.
        await waitFor('image controller idle', async () => (await operator().metricSum('anchore_operator_workqueue_depth', 'queue="image"')) === 0, 120_000, 500);
        await sleep(2_000);
        const restartAdds = sim.requests({ method: 'POST', path: '/v2/images' }).length - addsBeforeRestart;
        results['restart'] = { readySeconds: sec(restartReadyMs), inventorySentSeconds: sec(restartInventoryMs), anchoreAddCalls: restartAdds };
        say(`restart: ready ${sec(restartReadyMs)} s, inventory ${sec(restartInventoryMs)} s, ${restartAdds} add calls`);
      });
    }

    // --- 2. Churn: new pods with new images at a fixed rate over --churn-namespaces namespaces; each is deleted 5 s
    // later. A pod that never turns Running (a control-plane stall longer than its life) is counted, not waited for.
    let adds = addsByDigest(sim);
    await scenario('churn', async () => {
      operator();
      const watch = await watchRunning(conn, selector);
      // The pod watch and the simulator share this process: its event-loop delay bounds how far their timestamps can
      // be off. The histogram gives the whole window; the ticker gives the delay around each sample's stamps.
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      const ticker = new LoopTicker(10);
      loopDelay.enable();
      ticker.start();
      const invIndex = collector.seen.length;
      const pods: ChurnPod[] = [];
      const interval = 1000 / o.churnRate;
      const churnMs = agentWindowSeconds(o.churnSeconds) * 1000;
      const lifeInPods = Math.round(5 * o.churnRate);
      const churnStart = Date.now();
      const inflight: Array<Promise<unknown>> = [];
      const creates = new Map<string, Promise<boolean>>();
      for (let n = 0; ; n++) {
        const due = churnStart + n * interval;
        if (due - churnStart >= churnMs) break;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const namespace = churnNamespaces[n % churnNamespaces.length]!;
        const name = `churn-${n}`;
        const image = `bench.registry.local/${run}/churn/img-${n}:1.0`;
        const p: ChurnPod = { key: `${namespace}/${name}`, namespace, dueAt: due, sentAt: Date.now() };
        pods.push(p);
        const created = req(conn, 'POST', `/api/v1/namespaces/${namespace}/pods`, podBody(namespace, name, image, label)).then(
          () => (p.created = true),
          (err: unknown) => {
            p.createError = (err as Error).message;
            return false;
          },
        );
        creates.set(p.key, created);
        inflight.push(created);
        const old = pods[n - lifeInPods];
        if (old) {
          const oldName = old.key.split('/')[1]!;
          inflight.push(
            creates.get(old.key)!.then((ok) =>
              ok
                ? req(conn, 'DELETE', `/api/v1/namespaces/${old.namespace}/pods/${oldName}`, undefined, [200, 202, 404]).then(
                    () => (old.deletedAt = Date.now()),
                    (err: unknown) => (old.deleteError = (err as Error).message),
                  )
                : undefined,
            ),
          );
        }
      }
      const churnEnd = churnStart + churnMs;
      await Promise.all(inflight);
      const churnSpan = (Date.now() - churnStart) / 1000;
      const settled = (p: ChurnPod): boolean => !p.created || watch.running.has(p.key) || p.deletedAt !== undefined || watch.deleted.has(p.key);
      await soft(
        'churn',
        'every churn pod Running or deleted',
        () => pods.every(settled),
        120_000,
        200,
        () => `${pods.filter(settled).length}/${pods.length}`,
      );
      // Digests of the pods seen turning Running (a re-list gives no Running time, so those are not waited for).
      const wanted = (): string[] =>
        pods.flatMap((p) => {
          const r = watch.running.get(p.key);
          const d = r && !r.viaRelist ? digestOf(r.imageIDs[0] ?? '') : undefined;
          return d ? [d] : [];
        });
      await soft(
        'churn',
        'churn images registered',
        () => {
          adds = addsByDigest(sim);
          return wanted().every((d) => adds.first.has(d));
        },
        120_000,
        200,
        () => `${wanted().filter((d) => adds.first.has(d)).length}/${wanted().length}`,
      );
      // Inventory: the first report that contains the image (a pod alive ≥ 5 s is in at least one report).
      await sleep(5_000);
      loopDelay.disable();
      ticker.stop();
      watch.stop();
      adds = addsByDigest(sim);
      const reports = collector.of(clusterName, invIndex);
      const figures = analyseChurn({ pods, running: watch.running, firstAdd: adds.first, reports, delayAt: (x) => ticker.delayAt(x) });
      const deleted = figures.podsDeleted;
      const churn = {
        churnNamespaces: churnNamespaces.length,
        windowSeconds: churnMs / 1000,
        podEventsPerSecond: Math.round(((figures.podsCreated + deleted) / churnSpan) * 10) / 10,
        ...figures,
        benchEventLoopDelayMs: loopDelayMs(loopDelay, 10),
        benchWatch: watch.health(),
      };
      results['churn'] = churn;
      latencyRows = [
        { what: 'churn: Running → image registered (POST /v2/images)', ...figures.registration },
        { what: 'churn: Running → image in an inventory report', ...figures.inventory },
        { what: 'churn: pod deleted → its namespace reported without it', ...figures.deletionInInventory },
      ];
      bytesWindow('churn', churnStart, churnEnd, { churnNamespaces: churnNamespaces.length, podsCreated: figures.podsCreated });
      if (figures.neverRunning.count > 0)
        say(`churn: ${figures.neverRunning.count} pod(s) never seen Running (${figures.neverRunning.deletedFirst} deleted first), e.g. ${figures.neverRunning.examples.join(', ')}`);
      if (ki) {
        // The agent's view of the same churn: how many of the short-lived pods it ever reported.
        const kiReports = collector.of(ki.cluster).filter((r) => r.at >= churnStart);
        const digests = pods.flatMap((p) => digestOf(watch.running.get(p.key)?.imageIDs[0] ?? '') ?? []);
        (results['k8sInventory'] as Record<string, unknown>)['churnPodsEverReported'] = `${digests.filter((d) => kiReports.some((r) => r.digests.has(d))).length}/${digests.length}`;
      }
      if (o.samples) {
        // Raw timestamps (ms since the epoch, all taken in this process) to look at the tail: which pods were late,
        // what the harness's delay was at each stamp, and what the inventory reports around them looked like.
        const invRequests = inventoryRequests().filter((r) => r.time >= churnStart - 10_000);
        writeFileSync(
          o.samples,
          JSON.stringify({
            churnStart,
            pods: pods.map((p) => {
              const r = watch.running.get(p.key);
              const d = r ? digestOf(r.imageIDs[0] ?? '') : undefined;
              const registeredAt = d ? adds.first.get(d) : undefined;
              return {
                ...p,
                runningAt: r?.at,
                viaRelist: r?.viaRelist,
                harnessDelayAtRunningMs: r ? ticker.delayAt(r.at) : undefined,
                registeredAt,
                harnessDelayAtRegisteredMs: registeredAt === undefined ? undefined : ticker.delayAt(registeredAt),
                inventoryAt: d && r ? reports.find((x) => x.at >= r.at && x.digests.has(d))?.at : undefined,
              };
            }),
            inventories: invRequests.map((r) => ({ time: r.time, durationMs: r.durationMs, status: r.status })),
            reports: reports.map((r) => ({ at: r.at, containers: r.containers, namespaces: r.namespaces.size, bytes: r.bytes, harnessDelayMs: ticker.delayAt(r.at) })),
            adds: sim
              .requests({ method: 'POST', path: '/v2/images' })
              .filter((r) => r.time >= churnStart - 10_000)
              .map((r) => ({ time: r.time, durationMs: r.durationMs, status: r.status, inFlight: r.inFlight })),
          }),
        );
        say(`churn samples written to ${o.samples}`);
      }
      const reg = figures.registration;
      say(
        `churn: ${churn.podEventsPerSecond} pod events/s over ${churnNamespaces.length} namespace(s); Running → registered p50 ${reg.ms.p50} p90 ${reg.ms.p90} p99 ${reg.ms.p99} max ${reg.ms.max} ms ` +
          `(harness delay at the stamps p50 ${reg.harnessDelayMs.p50} p90 ${reg.harnessDelayMs.p90} p99 ${reg.harnessDelayMs.p99} max ${reg.harnessDelayMs.max} ms); ` +
          `→ in inventory p50 ${figures.inventory.ms.p50} p99 ${figures.inventory.ms.p99} ms`,
      );
    });

    // --- 4. Anchore add calls per unique digest over the whole run.
    adds = addsByDigest(sim);
    const counts = [...adds.count.values()];
    results['addsPerDigest'] = {
      uniqueDigests: adds.count.size,
      addCalls: counts.reduce((a, b) => a + b, 0),
      max: counts.length ? Math.max(...counts) : 0,
      digestsAddedMoreThanOnce: counts.filter((c) => c > 1).length,
    };

    // --- 7. Detection latency, operator vs anchore/k8s-inventory (opt-in: it polls, so it takes minutes).
    if (ki) {
      const agent = ki;
      await scenario('k8sInventory', async () => {
        if (agent.agent.exited()) throw new Error(`anchore-k8s-inventory exited; see ${logDir}/k8s-inventory/output.log`);
        const latency = await compareLatency({
          conn,
          reports: collector,
          run,
          label,
          namespace: cmpNs,
          operatorCluster: clusterName,
          kiCluster: agent.cluster,
          note: (what) => note('k8sInventory', what),
        });
        Object.assign(results['k8sInventory'] as Record<string, unknown>, latency);
      });
    }
  } catch (err) {
    // Setup itself failed (the cluster, the simulator, the namespaces): report what there is.
    note('run', (err as Error).message);
  } finally {
    await op?.stop();
    if (ki) await stopAgent(ki.agent, logDir).catch((e: unknown) => say(`k8s-inventory stop: ${(e as Error).message}`));
    if (!o.keep) {
      say('cleaning up namespaces');
      await req(conn, 'DELETE', `/apis/anchore.io/v1alpha1/clusteranchorepolicybindings/bench-${run}`, undefined, [200, 202, 404]).catch(() => undefined);
      await deleteNamespaces(conn, allNamespaces, 900_000).catch((e: unknown) => say(`cleanup: ${(e as Error).message}`));
    }
    await sim.stop().catch((e: unknown) => note('simulator', (e as Error).message));
  }

  // Full reports (every setup namespace in one report) over the whole run, and the steady state with them at their
  // own pace: a steady window shorter than their interval would see one of them or none, by chance.
  collector.attachBytes(inventoryRequests());
  const churnWindow = windows['churn'];
  const notSteady = (from: number, to: number): boolean => operatorStarts.some((s) => s > from && s <= to) || (churnWindow !== undefined && from < churnWindow.to + 10_000 && to > churnWindow.from);
  const senders: Array<[string, string]> = [['operator', clusterName], ...(ki ? [['k8sInventory', ki.cluster] as [string, string]] : [])];
  const full: Record<string, unknown> = {};
  for (const [sender, c] of senders) {
    let f = collector.fullReports(c, nsNames, notSteady);
    let basis = f.medianIntervalSeconds === null ? 'not seen' : 'observed';
    // The operator's heartbeat can be longer than the whole run: then its own logged setting stands in.
    const configured = sender === 'operator' ? loggedSetting(operatorLog, ['inventory', 'intervalMs']) : undefined;
    if (f.medianIntervalSeconds === null && typeof configured === 'number' && configured > 0) {
      f = { ...f, medianIntervalSeconds: configured / 1000 };
      basis = 'configured (the operator’s logged inventory.intervalMs)';
    }
    full[sender] = { ...f, intervalBasis: basis };
    const w = windows['steady'];
    const steady = bytes['steady'] as Record<string, Record<string, unknown>> | undefined;
    if (w && steady?.[sender]) {
      const projected = collector.projectedBytesPerHour(c, w.from, w.to, nsNames, f);
      steady[sender]['projectedBytesPerHour'] = projected;
      steady[sender]['projectedMBPerHour'] = projected === null ? null : Math.round(projected / 1e4) / 100;
      const row = bytesRows.find((r) => r.window === 'steady' && r.sender === sender);
      if (row) row.projectedMBPerHour = steady[sender]['projectedMBPerHour'] as number | null;
    }
  }
  if (senders.length) bytes['fullReports'] = full;
  results['bytesToAnchore'] = bytes;
  results['notMeasured'] = notMeasured;
  const json = JSON.stringify(results, null, 2);
  if (o.out) writeFileSync(o.out, json);
  const tables = [markdownTable(results)];
  if (latencyRows.length) tables.push(latencyTable(latencyRows));
  if (bytesRows.length) tables.push(bytesTable(bytesRows));
  process.stdout.write(`${json}\n\n${tables.join('\n\n')}\n`);
  if (notMeasured.length) say(`NOT MEASURED (${notMeasured.length}):\n  ${notMeasured.join('\n  ')}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
