/**
 * Benchmarks (`npm run bench -- [options]`): scripts that print figures, not timed tests. On the local control plane
 * (kwok makes pods Running) and the Anchore simulator, with the operator as a child process through its real entry
 * point (dist/main.js, built first with tsc as in the container image). Prints one JSON document and a Markdown table.
 *
 *   npm run bench                     the full suite: 10,000 pods, 2,000 images, 200 namespaces, churn 50 pods/s for 60 s
 *   npm run bench -- --small          a few hundred pods (what CI runs to keep the harness working)
 *   npm run bench -- --compare-k8s-inventory   also run anchore/k8s-inventory beside it (scenario 7)
 *   options: --pods N --images N --namespaces N --churn-rate N --churn-seconds N --steady-seconds N --out FILE
 *            --keep (leave the namespaces) --cpu-prof (write a .cpuprofile of the operator to the log dir)
 *            --heap-snapshot (a .heapsnapshot of the operator at the end of the steady-state window, in the log dir)
 *            --skip policy,steady,restart (leave scenarios out, to iterate on churn)
 *            --samples FILE (every churn pod's timestamps and every inventory report, for looking at the tail)
 *   npm run bench -- --admission [--small] ...   the admission webhook instead: latency at 50 requests/s, cache hit,
 *            miss and tag miss (bench/admission.ts lists its options)
 *   npm run bench -- --event-loop [--pods N]   no cluster: the longest event-loop task of report, scrape and list (bench/event-loop.ts)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type AnchoreSimulator, startSimulator } from '../test/anchore-sim/index.ts';
import { acquireTestCluster } from '../test/support/cluster.ts';
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
import { OperatorProcess, benchOperatorEnv, imageNodeFlags, prepareCluster, startReady, waitBindingEvaluated, waitForQuiet } from './support/operator.ts';
import { ReportCollector } from './support/reports.ts';
import { type Percentiles, markdownTable, median, percentiles } from './support/stats.ts';

interface Options {
  pods: number;
  images: number;
  namespaces: number;
  churnRate: number;
  churnSeconds: number;
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
  const o: Options = { ...size, compare: false, keep: false, cpuProf: false, heapProf: false, heapSnapshot: false, skip: new Set<string>(), small };
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
  return o;
}

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
const sec = (ms: number): number => Math.round(ms / 10) / 100;
const MiB = 1024 * 1024;

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
    // Inventory reports are read through onInventory; the request log keeps the small bodies (image adds).
    retention: { requestBodyMaxBytes: MiB, inventoryReportBytes: 16 * MiB },
    onInventory: (r) => collector.add(r),
  });
  const clusterName = `bench-${run}`;
  const label = { 'bench-run': run };
  const selector = `bench-run=${run}`;
  const nsNames = Array.from({ length: o.namespaces }, (_, i) => `bench-${run}-${i}`);
  const churnNs = `bench-${run}-churn`;
  const results: Record<string, unknown> = { run, params: { ...o, nodeFlags: imageNodeFlags() }, machine: { cpus: (await import('node:os')).cpus().length } };
  const env = benchOperatorEnv(sim.url, cluster.kubeconfig, run, clusterName);
  const operatorLog = join(logDir, 'operator.log');
  const nodeArgs = [
    ...(o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${logDir}`] : []),
    // Sampling heap profile of what is still live when the process exits (after the steady-state window).
    ...(o.heapProf ? ['--heap-prof', `--heap-prof-dir=${logDir}`] : []),
    ...(o.heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${logDir}`] : []),
  ];
  let op: OperatorProcess | undefined;

  try {
    // --- Setup (not measured): namespaces, one Deployment per image, all pods Running before the operator starts.
    const perNs = o.images / o.namespaces;
    const replicas = o.pods / o.images;
    let t = Date.now();
    prepareCluster(cluster);
    await parallel(nsNames, 32, (n) => createNamespace(conn, n, label));
    await createNamespace(conn, churnNs, label);
    const deployments = nsNames.flatMap((ns, i) => Array.from({ length: perNs }, (_, j) => ({ ns, name: `app-${j}`, image: `bench.registry.local/${run}/team-${i}/app-${j}:1.0` })));
    await parallel(deployments, 32, (d) => req(conn, 'POST', `/apis/apps/v1/namespaces/${d.ns}/deployments`, deploymentBody(d.ns, d.name, replicas, d.image, label)).then(() => undefined));
    let running = 0;
    await waitFor(
      `${o.pods} pods Running`,
      async () => (running = await countRunning(conn, selector)) >= o.pods,
      900_000,
      2000,
      () => `${running}/${o.pods}`,
    );
    results['setup'] = { podsRunningSeconds: sec(Date.now() - t) };
    say(`setup: ${o.pods} pods Running after ${sec(Date.now() - t)} s`);

    // --- 1. Cold start: every image registered and the inventory sent.
    t = Date.now();
    let registeredMs = 0;
    let inventoryMs = 0;
    const expected = new Set<string>();
    op = await startReady(env, operatorLog, nodeArgs);
    const readyMs = Date.now() - t;
    await waitFor(
      `${o.images} images registered`,
      () => sim.images('admin').length >= o.images,
      600_000,
      100,
      () => `${sim.images('admin').length}/${o.images}`,
    );
    registeredMs = Date.now() - t;
    for (const i of sim.images('admin')) expected.add(i.image_digest);
    let scanned = 0;
    await waitFor(
      'inventory with every image',
      () => {
        const reports = collector.of(clusterName, scanned);
        scanned = collector.seen.length;
        if (reports.some((r) => [...expected].every((d) => r.digests.has(d)))) return true;
        // Batched reports: the union of the latest batch set also counts.
        return false;
      },
      600_000,
      200,
    );
    inventoryMs = Date.now() - t;
    results['coldStart'] = { readySeconds: sec(readyMs), allRegisteredSeconds: sec(registeredMs), inventorySentSeconds: sec(inventoryMs), uniqueImages: expected.size };
    say(`cold start: ready ${sec(readyMs)} s, all ${expected.size} images registered ${sec(registeredMs)} s, inventory ${sec(inventoryMs)} s`);

    const bindingName = `bench-${run}`;
    type Capb = { metadata: { generation: number; resourceVersion: string }; status?: { observedGeneration?: number; summary?: Record<string, number> } };
    const getBinding = async (): Promise<Capb | undefined> =>
      o.skip.has('policy') ? undefined : ((await req(conn, 'GET', `/apis/anchore.io/v1alpha1/clusteranchorepolicybindings/${bindingName}`)) as Capb);

    // --- 6. Policy evaluation: one cluster binding over every image.
    if (!o.skip.has('policy')) {
      await waitFor('analysis complete in Anchore', () => sim.images('admin').every((i) => i.analysis_status === 'analyzed' || i.analysis_status === 'analysis_failed'), 600_000, 500);
      // The operator learns of finished analyses by polling each image with backoff (1 s doubling up to
      // ANALYSIS_POLL_MAX_SECONDS): measured separately, so the evaluation figure is about evaluation only.
      t = Date.now();
      await waitFor('operator sees every image analysed', async () => (await op!.metricSum('anchore_operator_images', 'analysis_status="analyzed"')) >= expected.size, 600_000, 500);
      results['analysisObserved'] = { secondsAfterAnchoreFinished: sec(Date.now() - t), sinceOperatorStartSeconds: sec(Date.now() - op.startedAt) };
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
    }

    // --- 5. Steady state: RSS, CPU, status writes, Anchore calls over a quiet window — after the first-time work
    // (vulnerability reads of every new image) is done.
    if (!o.skip.has('steady')) {
      await waitForQuiet(op, () => sim.requests().length, 'work queues idle and Anchore quiet', 600_000, 3000);
      await new Promise((r) => setTimeout(r, 5_000));
      const b0 = await getBinding();
      const writes0 = await op.metricSum('anchore_operator_reconcile_total', 'controller="binding-status"', 'result="written"');
      const reqs0 = sim.requests().length;
      const s0 = op.stats();
      const t0 = Date.now();
      const rss: number[] = [];
      const anon: number[] = [];
      const file: number[] = [];
      while (Date.now() - t0 < o.steadySeconds * 1000) {
        rss.push(op.stats().rssBytes);
        const split = op.rssSplit();
        anon.push(split.anonBytes);
        file.push(split.fileBytes);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const s1 = op.stats();
      const window = (Date.now() - t0) / 1000;
      const b1 = await getBinding();
      const writes1 = await op.metricSum('anchore_operator_reconcile_total', 'controller="binding-status"', 'result="written"');
      const heapUsed = await op.metricSum('anchore_operator_nodejs_heap_size_used_bytes');
      const heapTotal = await op.metricSum('anchore_operator_nodejs_heap_size_total_bytes');
      const external = await op.metricSum('anchore_operator_nodejs_external_memory_bytes');
      const steady = {
        windowSeconds: Math.round(window),
        heapMiB: { used: Math.round(heapUsed / MiB), total: Math.round(heapTotal / MiB), external: Math.round(external / MiB) },
        rssMiB: { median: Math.round(median(rss) / MiB), max: Math.round(Math.max(...rss) / MiB), anonymousMedian: Math.round(median(anon) / MiB), fileBackedMedian: Math.round(median(file) / MiB) },
        cpuPercentOfOneCore: Math.round(((s1.cpuSeconds - s0.cpuSeconds) / window) * 10000) / 100,
        bindingStatusWrites: writes1 - writes0,
        bindingResourceVersionMoved: b0 && b1 ? b1.metadata.resourceVersion !== b0.metadata.resourceVersion : null,
        anchoreRequests: sim.requests().length - reqs0,
      };
      results['steadyState'] = steady;
      if (o.heapSnapshot) {
        // Written by the operator itself (V8 pauses it while it writes); taken after the RSS samples.
        const before = new Set(readdirSync(logDir));
        process.kill(op.pid, 'SIGUSR2');
        let size = -1;
        await waitFor(
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
    }

    // --- 3. Restart with everything registered.
    if (!o.skip.has('restart')) {
      const addsBeforeRestart = sim.requests({ method: 'POST', path: '/v2/images' }).length;
      const invBefore = collector.seen.length;
      await op.stop();
      t = Date.now();
      op = await OperatorProcess.start(env, operatorLog, nodeArgs);
      await waitFor('operator ready after restart', async () => (await op!.ready()) || op!.exited, 120_000, 100);
      const restartReadyMs = Date.now() - t;
      await waitFor('inventory after restart', () => collector.of(clusterName, invBefore).length > 0, 120_000, 100);
      const restartInventoryMs = Date.now() - t;
      // Give the image controller time to go over every running image.
      await waitFor('image controller idle', async () => (await op!.metricSum('anchore_operator_workqueue_depth', 'queue="image"')) === 0, 120_000, 500);
      await new Promise((r) => setTimeout(r, 2_000));
      const restartAdds = sim.requests({ method: 'POST', path: '/v2/images' }).length - addsBeforeRestart;
      results['restart'] = { readySeconds: sec(restartReadyMs), inventorySentSeconds: sec(restartInventoryMs), anchoreAddCalls: restartAdds };
      say(`restart: ready ${sec(restartReadyMs)} s, inventory ${sec(restartInventoryMs)} s, ${restartAdds} add calls`);
    }

    // --- 2. Churn: new pods with new images at a fixed rate; each is deleted 5 s later.
    const watch = await watchRunning(conn, selector);
    // The pod watch and the simulator share this process: its event-loop delay bounds how far their timestamps can
    // be off, so it is reported next to the latencies.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const invIndex = collector.seen.length;
    const created: Array<{ key: string; image: string; createdAt: number }> = [];
    const deleted: Array<{ key: string; deletedAt: number }> = [];
    const interval = 1000 / o.churnRate;
    const churnStart = Date.now();
    const inflight: Array<Promise<unknown>> = [];
    for (let n = 0; Date.now() - churnStart < o.churnSeconds * 1000; n++) {
      const due = churnStart + n * interval;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const name = `churn-${n}`;
      const image = `bench.registry.local/${run}/churn/img-${n}:1.0`;
      created.push({ key: `${churnNs}/${name}`, image, createdAt: Date.now() });
      inflight.push(req(conn, 'POST', `/api/v1/namespaces/${churnNs}/pods`, podBody(churnNs, name, image, label)));
      const old = created[n - Math.round(5 * o.churnRate)];
      if (old) {
        const oldName = old.key.split('/')[1]!;
        inflight.push(req(conn, 'DELETE', `/api/v1/namespaces/${churnNs}/pods/${oldName}`, undefined, [200, 202, 404]).then(() => deleted.push({ key: old.key, deletedAt: Date.now() })));
      }
    }
    await Promise.all(inflight);
    const churnEvents = created.length + deleted.length;
    const churnSpan = (Date.now() - churnStart) / 1000;
    await waitFor(
      'churn pods Running',
      () => created.every((c) => watch.running.has(c.key)),
      120_000,
      200,
      () => `${watch.running.size}/${created.length}`,
    );
    const churnDigests = new Map<string, { runningAt: number }>();
    for (const c of created) {
      const r = watch.running.get(c.key)!;
      const d = digestOf(r.imageIDs[0] ?? '');
      if (d) churnDigests.set(d, { runningAt: r.at });
    }
    await waitFor(
      'churn images registered',
      () => {
        const first = addsByDigest(sim).first;
        return [...churnDigests.keys()].every((d) => first.has(d));
      },
      120_000,
      200,
    );
    // Inventory: the first report that contains the image (a pod alive ≥ 5 s is in at least one report).
    await new Promise((r) => setTimeout(r, 5_000));
    loopDelay.disable();
    watch.stop();
    const adds = addsByDigest(sim);
    const regLatency = [...churnDigests].map(([d, v]) => adds.first.get(d)! - v.runningAt);
    const reports = collector.of(clusterName, invIndex);
    const invLatency: number[] = [];
    for (const [d, v] of churnDigests) {
      const first = reports.find((r) => r.at >= v.runningAt && r.digests.has(d));
      if (first) invLatency.push(first.at - v.runningAt);
    }
    const deletedDigests = new Map<string, number>();
    for (const del of deleted) {
      const r = watch.running.get(del.key);
      const d = r ? digestOf(r.imageIDs[0] ?? '') : undefined;
      if (d) deletedDigests.set(d, del.deletedAt);
    }
    const goneLatency: number[] = [];
    for (const [d, at] of deletedDigests) {
      const first = reports.find((r) => r.at >= at && !r.digests.has(d));
      if (first) goneLatency.push(first.at - at);
    }
    const churn = {
      podEventsPerSecond: Math.round((churnEvents / churnSpan) * 10) / 10,
      podsCreated: created.length,
      podsDeleted: deleted.length,
      registrationMs: percentiles(regLatency),
      inventoryMs: percentiles(invLatency),
      inventoryMissing: churnDigests.size - invLatency.length,
      deletionInInventoryMs: percentiles(goneLatency),
      benchEventLoopDelayMs: { p99: Math.round(loopDelay.percentile(99) / 1e6), max: Math.round(loopDelay.max / 1e6) },
    };
    results['churn'] = churn;
    if (o.samples) {
      // Raw timestamps (ms since the epoch, all taken in this process) to look at the tail: which pods were late,
      // and what the inventory reports around them looked like.
      const createdAt = new Map(created.map((c) => [c.key, c.createdAt]));
      const invRequests = sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' }).filter((r) => r.time >= churnStart - 10_000);
      writeFileSync(
        o.samples,
        JSON.stringify({
          churnStart,
          pods: [...watch.running]
            .filter(([key]) => createdAt.has(key))
            .map(([key, r]) => {
              const d = digestOf(r.imageIDs[0] ?? '');
              return {
                key,
                createdAt: createdAt.get(key),
                runningAt: r.at,
                registeredAt: d ? adds.first.get(d) : undefined,
                inventoryAt: d ? reports.find((x) => x.at >= r.at && x.digests.has(d))?.at : undefined,
              };
            }),
          inventories: invRequests.map((r) => ({ time: r.time, durationMs: r.durationMs, status: r.status })),
          reports: reports.map((r) => ({ at: r.at, containers: r.containers })),
          adds: sim
            .requests({ method: 'POST', path: '/v2/images' })
            .filter((r) => r.time >= churnStart - 10_000)
            .map((r) => ({ time: r.time, durationMs: r.durationMs, status: r.status, inFlight: r.inFlight })),
        }),
      );
      say(`churn samples written to ${o.samples}`);
    }
    say(
      `churn: ${churn.podEventsPerSecond} pod events/s; Running → registered p50 ${churn.registrationMs.p50} ms p99 ${churn.registrationMs.p99} ms; → in inventory p50 ${churn.inventoryMs.p50} ms p99 ${churn.inventoryMs.p99} ms`,
    );

    // --- 4. Anchore add calls per unique digest over the whole run.
    const counts = [...adds.count.values()];
    results['addsPerDigest'] = {
      uniqueDigests: adds.count.size,
      addCalls: counts.reduce((a, b) => a + b, 0),
      max: Math.max(...counts),
      digestsAddedMoreThanOnce: counts.filter((c) => c > 1).length,
    };

    // --- 7. anchore/k8s-inventory beside the operator, same churn scenario (opt-in: it polls, so it takes minutes).
    if (o.compare)
      results['k8sInventory'] = await (
        await import('./compare.ts')
      ).compareWithK8sInventory({ conn, sim, reports: collector, kubeconfig: cluster.kubeconfig, run, label, operatorCluster: clusterName, logDir });
  } finally {
    await op?.stop();
    if (!o.keep) {
      say('cleaning up namespaces');
      await req(conn, 'DELETE', `/apis/anchore.io/v1alpha1/clusteranchorepolicybindings/bench-${run}`, undefined, [200, 202, 404]).catch(() => undefined);
      await deleteNamespaces(conn, [...nsNames, churnNs], 900_000).catch((e: unknown) => say(`cleanup: ${(e as Error).message}`));
    }
    await sim.stop();
  }

  const json = JSON.stringify(results, null, 2);
  if (o.out) writeFileSync(o.out, json);
  process.stdout.write(`${json}\n\n${markdownTable(results)}\n`);
}

export type { Percentiles };

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
