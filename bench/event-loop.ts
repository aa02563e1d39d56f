/**
 * Event-loop tasks at N pods (`npm run bench -- --event-loop [--pods N[,N…]] [--runs N] [--out FILE]`): no cluster.
 *
 * Builds the operator's in-memory pieces as src/operator.ts composes them (memory stores or real reflectors, the image
 * catalog and running images, the image and inventory controllers' pod handlers, OperatorMetrics with the findings
 * gauges) for N Running pods (10 pods per image, each image one Deployment, 200 namespaces), then measures, while each
 * of these tasks runs, how long the event loop went without running a 1 ms interval timer (the longest synchronous
 * stretch, plus about 1 ms) and the p99 of those gaps, in wall-clock time and in the main thread's CPU time (the task's
 * own length, whatever else the machine runs), with perf_hooks' monitorEventLoopDelay (resolution 1 ms) beside:
 *
 *   initial-list      the reflectors' initial list as the apiserver would page it (500 per page, JSON parsed per page),
 *                     with the image and inventory controllers' handlers attached (src/kube/reflector.ts)
 *   image-start       the image controller's start(): every pod judged again once the caches synced
 *   anchore-list      one refresh of an account's image list into the catalog (pods/10 images; src/model/anchore-images.ts)
 *   report-full       a full inventory report built and serialised: collectInventory, measureInventory, planBatches,
 *                     assembleBatch and jsonInSlices, as InventoryController#report does (src/controllers/inventory.ts)
 *   report-changed    a changed-namespaces report with every namespace changed: collectInventory of those namespaces
 *                     and the fingerprint filter that leaves out unchanged ones (InventoryController#report)
 *   scrape            one GET /metrics through the real metrics server (startMetricsServer), every running image with
 *                     vulnerability counts, one cluster binding failing on a tenth of the workloads
 *
 * Each size runs in its own child process (`--runs` times, default 3: the median of each figure is printed), so one
 * size's heap does not slow the next, with the node flags of the container image's ENTRYPOINT (its small young
 * generation sets how long a garbage collection holds the loop; `--no-image-flags`: node's defaults). Each task also
 * reports the GC pauses while it ran and the longest run of its synchronous steps. Prints one JSON document and a
 * Markdown table (stdout).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { SEVERITIES } from '../src/anchore/anchore.port.ts';
import type { AnchoreApi, AnchoreImage } from '../src/anchore/anchore.port.ts';
import { ImageController } from '../src/controllers/image.controller.ts';
import { assembleBatch, changedShares, collectInventory, type InventorySnapshot, measureInventory, planBatches } from '../src/controllers/inventory.ts';
import { InventoryController } from '../src/controllers/inventory.controller.ts';
import type { BindingInfo } from '../src/crds/types.ts';
import type { ClusterStores, PodInfo, WorkloadRef } from '../src/kube/cluster.port.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { projectNamespace, projectNode, projectOwner, projectPod } from '../src/kube/projections.ts';
import { createClusterStores } from '../src/kube/stores.ts';
import { AnchoreImages } from '../src/model/anchore-images.ts';
import { ImageCatalog } from '../src/model/image-catalog.ts';
import { MissingAccounts } from '../src/model/missing-accounts.ts';
import { Scope } from '../src/model/scope.ts';
import type { VulnerabilitySummary } from '../src/model/vulnerability-summary.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { jsonInSlices } from '../src/runtime/cooperative.ts';
import { registerFindingsMetrics } from '../src/reports/findings-metrics.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { METRIC, OperatorMetrics } from '../src/telemetry/metrics.ts';
import { startMetricsServer } from '../src/telemetry/server.ts';
import { aBinding, hex64, memoryStores } from '../src/testing/factories.ts';
import { imageNodeFlags } from './support/operator.ts';
import { median } from './support/stats.ts';

const NAMESPACES = 200;
const PODS_PER_IMAGE = 10;
const PODS_PER_NODE = 110;
const PAGE = 500;
const ACCOUNT = 'admin';
const CLUSTER = 'bench';

export const EVENT_LOOP_TASKS = ['initial-list', 'image-start', 'anchore-list', 'report-full', 'report-changed', 'scrape'] as const;
type TaskName = (typeof EVENT_LOOP_TASKS)[number];

/** What one task did to the event loop, in ms. */
export interface TaskFigures {
  /** Longest time between two runs of a 1 ms interval timer (the longest synchronous stretch, plus about 1 ms). */
  maxGapMs: number;
  p99GapMs: number;
  /**
   * The same gaps in CPU time of the main thread (process.threadCpuUsage): what the task itself took, without the time
   * a busy machine kept the process off a core. The figure to compare runs by; wall-clock gaps are what a caller waited.
   */
  cpuMaxGapMs: number;
  cpuP99GapMs: number;
  /** monitorEventLoopDelay (resolution 1 ms): its max and p99 delay, less the resolution. */
  eldMaxMs: number;
  eldP99Ms: number;
  totalMs: number;
  /** Main-thread CPU time the task took, start to end (ms). */
  cpuTotalMs: number;
  /** The five longest gaps, longest first (ms). */
  topGapsMs?: number[];
  /** Garbage-collection pauses while it ran (perf_hooks 'gc' entries): the longest, and their sum (ms). */
  gcMaxMs?: number;
  gcTotalMs?: number;
  /** Per step of the task: the longest gap it took part in (ms). */
  steps?: Record<string, number>;
  /** Per synchronous step (one call, no yield inside): its longest run, in main-thread CPU time (ms). */
  syncMs?: Record<string, number>;
  /** What the task produced (bytes, series), to check that before and after did the same work. */
  output?: Record<string, number>;
}

interface Options {
  pods: number[];
  runs: number;
  child: boolean;
  /** Run each size with the container image's node flags (the Dockerfile's ENTRYPOINT), as the operator runs. */
  imageFlags: boolean;
  out?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { pods: [], runs: 3, child: false, imageFlags: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--event-loop') continue;
    if (a === '--pods') {
      for (const s of (argv[++i] ?? '').split(',')) {
        const n = Number(s.replace(/k$/i, '000'));
        if (!Number.isInteger(n) || n < PODS_PER_IMAGE || n % PODS_PER_IMAGE !== 0) throw new Error(`--pods takes multiples of ${PODS_PER_IMAGE} (10 pods per image), comma-separated; got '${s}'`);
        o.pods.push(n);
      }
    } else if (a === '--runs') {
      o.runs = Number(argv[++i]);
      if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs needs a positive whole number');
    } else if (a === '--out') o.out = argv[++i];
    else if (a === '--child') o.child = true;
    else if (a === '--no-image-flags') o.imageFlags = false;
    else throw new Error(`unknown option ${a} (--event-loop takes --pods N[,N…] --runs N --out FILE --no-image-flags)`);
  }
  if (o.pods.length === 0) o.pods.push(50_000);
  return o;
}

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * Runs `fn` and records how long the event loop went without running a 1 ms interval timer. `step(name)` labels what
 * runs from then on: each gap is credited to every step that ran during it.
 */
type Step = (name: string) => void;
type Timed = <R>(name: string, fn: () => R) => R;

async function measure(fn: (step: Step, timed: Timed) => Promise<Record<string, number> | void>): Promise<TaskFigures> {
  const gaps: number[] = [];
  const cpuGaps: number[] = [];
  const cpuNow = (): number => {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  };
  const steps: Record<string, number> = {};
  const syncMs: Record<string, number> = {};
  let current = '';
  let touched = new Set<string>();
  const step = (name: string): void => {
    current = name;
    touched.add(name);
  };
  const timed: Timed = (name, f) => {
    step(name);
    const t0 = cpuNow();
    const r = f();
    syncMs[name] = Math.max(syncMs[name] ?? 0, round(cpuNow() - t0));
    return r;
  };
  const credit = (gap: number): void => {
    for (const s of touched) if (s) steps[s] = Math.max(steps[s] ?? 0, gap);
    touched = new Set([current]);
  };
  const eld = monitorEventLoopDelay({ resolution: 1 });
  const gc: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gc.push(e.duration);
  });
  // Let the timers settle before the task starts.
  await new Promise((r) => setTimeout(r, 5));
  eld.enable();
  observer.observe({ entryTypes: ['gc'] });
  let last = performance.now();
  let lastCpu = cpuNow();
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = cpuNow();
    gaps.push(now - last);
    cpuGaps.push(cpu - lastCpu);
    credit(now - last);
    last = now;
    lastCpu = cpu;
  }, 1);
  const started = performance.now();
  last = started;
  lastCpu = cpuNow();
  const cpuStarted = lastCpu;
  const output = await fn(step, timed);
  const ended = performance.now();
  const cpuEnded = cpuNow();
  gaps.push(ended - last);
  cpuGaps.push(cpuEnded - lastCpu);
  credit(ended - last);
  clearInterval(timer);
  eld.disable();
  // GC entries are delivered after the task: give the observer a turn before it is read.
  await new Promise((r) => setImmediate(r));
  observer.disconnect();
  gaps.sort((a, b) => a - b);
  cpuGaps.sort((a, b) => a - b);
  const ms = (ns: number): number => round(Math.max(0, ns / 1e6 - 1));
  return {
    maxGapMs: round(gaps[gaps.length - 1] ?? 0),
    p99GapMs: round(gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.99))] ?? 0),
    cpuMaxGapMs: round(cpuGaps[cpuGaps.length - 1] ?? 0),
    cpuP99GapMs: round(cpuGaps[Math.min(cpuGaps.length - 1, Math.floor(cpuGaps.length * 0.99))] ?? 0),
    eldMaxMs: ms(eld.max),
    eldP99Ms: ms(eld.percentile(99)),
    totalMs: round(ended - started),
    cpuTotalMs: round(cpuEnded - cpuStarted),
    topGapsMs: gaps.slice(-5).reverse().map(round),
    gcMaxMs: round(Math.max(0, ...gc)),
    gcTotalMs: round(gc.reduce((a, b) => a + b, 0)),
    steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(v)])),
    ...(Object.keys(syncMs).length ? { syncMs } : {}),
    ...(output ? { output } : {}),
  };
}

/** The cluster as the apiserver would list it: raw objects, the shape kwok's Running pods have. */
function rawCluster(pods: number): { namespaces: unknown[]; nodes: unknown[]; replicaSets: unknown[]; pods: unknown[] } {
  const images = pods / PODS_PER_IMAGE;
  const nodeCount = Math.ceil(pods / PODS_PER_NODE);
  let uidSeq = 0;
  const uid = (): string => `00000000-0000-4000-8000-${String(++uidSeq).padStart(12, '0')}`;
  const meta = (name: string, namespace: string | undefined, extra: Record<string, unknown> = {}) => ({
    name,
    ...(namespace ? { namespace } : {}),
    uid: uid(),
    resourceVersion: String(uidSeq),
    creationTimestamp: '2026-01-01T00:00:00Z',
    ...extra,
  });
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({ metadata: meta(nsName(i), undefined, { labels: { 'kubernetes.io/metadata.name': nsName(i), team: `team-${i % 20}` } }) }));
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({
    metadata: meta(`node-${i}`, undefined, { labels: { type: 'kwok', 'kubernetes.io/hostname': `node-${i}`, 'kubernetes.io/os': 'linux' } }),
    status: {
      nodeInfo: { kubeletVersion: 'v1.36.3', kubeProxyVersion: 'v1.36.3', architecture: 'amd64', operatingSystem: 'linux', kernelVersion: '6.8.0', containerRuntimeVersion: 'containerd://2.1.0' },
    },
  }));
  const replicaSets: unknown[] = [];
  const podList: unknown[] = [];
  let podIndex = 0;
  for (let i = 0; i < images; i++) {
    const ns = nsName(i % NAMESPACES);
    const app = `app-${i}`;
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', name: app, uid: uid(), controller: true, blockOwnerDeletion: true };
    const rsName = `${app}-${hex64(app).slice(0, 10)}`;
    const rs = { metadata: meta(rsName, ns, { labels: { app }, ownerReferences: [deployment] }) };
    replicaSets.push(rs);
    const rsRef = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rsName, uid: (rs.metadata as { uid: string }).uid, controller: true, blockOwnerDeletion: true };
    const repo = `registry.example/${ns}/${app}`;
    const tag = `${repo}:1.${i % 7}`;
    const digest = `sha256:${hex64(`${app}-digest`)}`;
    for (let j = 0; j < PODS_PER_IMAGE; j++) {
      const name = `${rsName}-${String(j).padStart(5, '0')}`;
      const node = `node-${podIndex++ % nodeCount}`;
      podList.push({
        metadata: meta(name, ns, { labels: { app, 'pod-template-hash': rsName.slice(app.length + 1) }, ownerReferences: [rsRef] }),
        spec: { nodeName: node, containers: [{ name: 'app', image: tag, resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
        status: {
          phase: 'Running',
          podIP: `10.${(podIndex >> 16) & 255}.${(podIndex >> 8) & 255}.${podIndex & 255}`,
          containerStatuses: [
            {
              name: 'app',
              image: tag,
              imageID: `${repo}@${digest}`,
              containerID: `containerd://${hex64(name)}`,
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: '2026-01-01T00:00:05Z' } },
            },
          ],
        },
      });
    }
  }
  return { namespaces, nodes, replicaSets, pods: podList };
}

function nsName(i: number): string {
  return `ns-${String(i).padStart(3, '0')}`;
}

/** Anchore as the pieces see it: answers only the list call (the controllers' queues are not started). */
function anchoreStub(images: AnchoreImage[]): AnchoreApi {
  const never = (): Promise<never> => new Promise(() => undefined);
  return new Proxy({} as AnchoreApi, {
    get: (_t, name) => (name === 'listImages' ? () => new Promise((r) => setImmediate(() => r(images))) : never),
  });
}

/** An apiserver answering lists in pages of 500 (JSON text parsed per page, as KubeClient.listPage does) and silent watches. */
function fakeApiserver(lists: Record<string, unknown[]>): KubeClient {
  const pages = new Map<string, string[]>();
  for (const [path, items] of Object.entries(lists)) {
    const out: string[] = [];
    for (let i = 0; i < items.length || i === 0; i += PAGE) {
      const next = i + PAGE < items.length ? String(i + PAGE) : undefined;
      out.push(JSON.stringify({ metadata: { resourceVersion: '1000', ...(next ? { continue: next } : {}) }, items: items.slice(i, i + PAGE) }));
    }
    pages.set(path, out);
  }
  const client = {
    async listPage(path: string, opts: { continueToken?: string }) {
      // The response arrives in a later turn of the loop, as a socket read would.
      await new Promise((r) => setImmediate(r));
      const list = pages.get(path) ?? [JSON.stringify({ metadata: { resourceVersion: '1000' }, items: [] })];
      const text = list[Math.floor(Number(opts.continueToken ?? 0) / PAGE)] ?? list[0]!;
      const res = JSON.parse(text) as { items: unknown[]; metadata: { resourceVersion: string; continue?: string } };
      return { items: res.items, resourceVersion: res.metadata.resourceVersion, continueToken: res.metadata.continue };
    },
    watch() {
      return Promise.resolve({ abort: () => undefined });
    },
  };
  return client as unknown as KubeClient;
}

function anchoreImagesOf(pods: PodInfo[]): AnchoreImage[] {
  const seen = new Map<string, AnchoreImage>();
  for (const p of pods) {
    for (const c of p.containers) {
      const digest = c.imageID?.split('@')[1];
      if (!digest || seen.has(digest)) continue;
      seen.set(digest, { image_digest: digest, analysis_status: 'analyzed', full_tags: [c.image], account_name: ACCOUNT });
    }
  }
  return [...seen.values()];
}

/** The pieces src/operator.ts composes, on the given stores. */
function compose(stores: ClusterStores, anchoreImagesList: AnchoreImage[]) {
  const log = createLogger({ level: 'silent', pretty: false });
  const metrics = new OperatorMetrics(undefined, { version: 'bench' });
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: ACCOUNT, routes: [] });
  const anchore = anchoreStub(anchoreImagesList);
  const catalog = new ImageCatalog();
  const missingAccounts = new MissingAccounts(log, metrics);
  const anchoreImages = new AnchoreImages({ anchore, catalog, refreshMs: 600_000, clock: systemClock, log });
  const images = new ImageController({ stores, scope, anchore, catalog, anchoreImages, missingAccounts, clusterName: CLUSTER, workers: 8, analysisPollMaxMs: 60_000, log, metrics });
  const inventory = new InventoryController({ stores, scope, anchore, clusterName: CLUSTER, intervalMs: 600_000, debounceMs: 2_000, minIntervalMs: 0, batchBytes: 0, missingAccounts, log, metrics });
  return { log, metrics, scope, catalog, anchoreImages, images, inventory };
}

/** One size, in this process: every task once (report and scrape after one unmeasured warm-up, as they repeat). */
async function runOnce(pods: number): Promise<Record<TaskName, TaskFigures>> {
  const raw = rawCluster(pods);
  const out = {} as Record<TaskName, TaskFigures>;
  const anchoreList = anchoreImagesOf(raw.pods.map((r) => projectPod(r)!));

  // (c) The initial list through real reflectors, with the controllers' handlers attached as src/operator.ts does.
  {
    const client = fakeApiserver({ '/api/v1/namespaces': raw.namespaces, '/api/v1/nodes': raw.nodes, '/apis/apps/v1/replicasets': raw.replicaSets, '/api/v1/pods': raw.pods });
    const log = createLogger({ level: 'silent', pretty: false });
    const stores = createClusterStores({ client, log, relistIntervalMs: 0, watchdogMs: 0 });
    const c = compose(stores, anchoreList);
    out['initial-list'] = await measure(async () => {
      await stores.start();
      return { pods: stores.pods.size, runningImages: c.catalog.running.size };
    });
    out['image-start'] = await measure(async (_step, timed) => {
      timed('ImageController.start', () => c.images.start());
      await Promise.resolve();
    });
    stores.stop();
    await c.images.queue.shutdown(0);
  }

  // (a), (b): memory stores filled with the same objects, then the report and the scrape.
  const stores = memoryStores();
  for (const r of raw.namespaces) stores.namespaces.put(projectNamespace(r)!);
  for (const r of raw.nodes) stores.nodes.put(projectNode(r)!);
  for (const r of raw.replicaSets) stores.replicaSets.put(projectOwner(r)!);
  const c = compose(stores, anchoreList);
  for (const r of raw.pods) stores.pods.put(projectPod(r)!);
  raw.pods.length = 0;

  await c.anchoreImages.ensureAccount(ACCOUNT);
  out['anchore-list'] = await measure(async () => {
    // One refresh of the account's list (AnchoreImages: every ANCHORE_IMAGES_REFRESH_SECONDS, on every replica).
    await c.anchoreImages.refresh();
    return { images: anchoreList.length };
  });

  const byNs = new Map<string, PodInfo[]>();
  for (const p of stores.pods.list()) {
    const l = byNs.get(p.namespace) ?? [];
    l.push(p);
    byNs.set(p.namespace, l);
  }
  const podsOf = (ns: string): PodInfo[] => byNs.get(ns) ?? [];
  // As InventoryController#report after it has its snapshot: measured, planned, each batch assembled and serialised.
  const send = async (snapshot: InventorySnapshot, step: Step, timed: Timed): Promise<{ batches: number; bytes: number }> => {
    step('measureInventory');
    await measureInventory(snapshot);
    const batches = timed('planBatches', () => planBatches(snapshot, Infinity, false));
    let bytes = 0;
    for (const b of batches) {
      const body = timed('assembleBatch', () => assembleBatch(snapshot, b));
      step('jsonInSlices');
      bytes += (await jsonInSlices(body as unknown as Record<string, unknown>)).length;
    }
    step('');
    return { batches: batches.length, bytes };
  };
  const fullReport = async (step: Step, timed: Timed): Promise<Record<string, number>> => {
    step('collectInventory');
    return send(await collectInventory(ACCOUNT, stores, c.scope, CLUSTER, new Date(), { podsOf, sent: new Map() }), step, timed);
  };
  await measure(fullReport);
  out['report-full'] = await measure(fullReport);

  const everyNs = new Set(byNs.keys());
  const changedReport = async (step: Step, timed: Timed): Promise<Record<string, number>> => {
    step('collectInventory');
    const snapshot = await collectInventory(ACCOUNT, stores, c.scope, CLUSTER, new Date(), { only: everyNs, podsOf, sent: new Map() });
    // As InventoryController#report: shares whose fingerprint Anchore already holds are left out (here: none).
    step('fingerprintShare');
    snapshot.shares = (await changedShares(snapshot.shares, new Map())).shares;
    const { bytes } = await send(snapshot, step, timed);
    return { namespaces: snapshot.shares.length, bytes };
  };
  await measure(changedReport);
  out['report-changed'] = await measure(changedReport);

  // (b) The scrape: every running image has vulnerability counts; one cluster binding fails on a tenth of the workloads.
  const vulns = new Map<string, VulnerabilitySummary>();
  let n = 0;
  for (const key of c.catalog.running.keys()) {
    const counts = (k: number) => Object.fromEntries(SEVERITIES.map((s, i) => [s, (n * 7 + i * k) % 40])) as VulnerabilitySummary['bySeverity'];
    vulns.set(key, { bySeverity: counts(3), fixableBySeverity: counts(1), fetchedAt: Date.now() });
    n++;
  }
  const binding: BindingInfo = aBinding(
    'all',
    undefined,
    {},
    {
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Evaluated', message: '', lastTransitionTime: '' },
        { type: 'Compliant', status: 'False', reason: 'PolicyFailed', message: '', lastTransitionTime: '' },
      ],
      summary: { workloads: 0, images: vulns.size, passed: vulns.size, failed: 0, warned: 0, pending: 0, errors: 0 },
    },
  );
  const failing = new Map<string, { workload: WorkloadRef; images: string[] }>();
  let w = 0;
  for (const [wk, { workload, keys }] of c.images.workloadImages()) if (w++ % 10 === 0) failing.set(wk, { workload, images: [...keys].slice(0, 1) });
  const bindingStore = { resource: 'clusteranchorepolicybindings', get: () => binding, list: () => [binding].values(), size: 1, hasSynced: true, on: () => undefined };
  c.metrics.stateGauge(METRIC.watchObjects, 'Objects held in each informer cache', ['resource'], () =>
    [stores.pods, stores.namespaces, stores.nodes, stores.replicaSets, stores.jobs].map((s) => [{ resource: s.resource }, s.size] as [{ resource: string }, number]),
  );
  registerFindingsMetrics({
    metrics: c.metrics,
    images: c.images,
    vulnerabilities: { get: (k) => vulns.get(k), entries: () => vulns.entries() },
    bindings: { owns: () => true, failuresByWorkload: new Map([[binding.key, failing]]), lastEvaluated: new Map([[binding.key, Date.now()]]) },
    bindingStores: [bindingStore],
    queues: [c.images.queue, c.inventory.queue],
    cveSeries: false,
    isLeader: () => true,
  });
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: c.metrics.registry, log: c.log, afterScrape: () => c.metrics.releaseComputed() });
  const scrape = (): Promise<{ bytes: number; series: number }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/metrics' }, (res) => {
        // Counted as it arrives (lines not starting with '#'), not joined: the benchmark's own work stays small.
        let bytes = 0;
        let series = 0;
        let atLineStart = true;
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          for (let i = 0; i < d.length;) {
            if (atLineStart && d[i] !== 35 && d[i] !== 10) series++;
            atLineStart = false;
            const nl = d.indexOf(10, i);
            if (nl === -1) break;
            atLineStart = true;
            i = nl + 1;
          }
        });
        res.on('end', () => resolve({ bytes, series }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  await scrape();
  out.scrape = await measure(async () => scrape());
  await server.close();
  return out;
}

/** What one child process measured: every task, and its own peak RSS (the pieces of both phases, the raw list). */
interface ChildResult {
  tasks: Record<TaskName, TaskFigures>;
  peakRssMiB: number;
}

interface SizeResult {
  pods: number;
  runs: Array<Record<TaskName, TaskFigures>>;
  peakRssMiB: number[];
  median: Record<TaskName, Omit<TaskFigures, 'output' | 'topGapsMs' | 'gcTotalMs'>>;
}

function runChild(pods: number, nodeFlags: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, ...process.execArgv, process.argv[1]!, '--event-loop', '--child', '--pods', String(pods)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`event-loop child for ${pods} pods exited ${code}`));
      resolve(JSON.parse(Buffer.concat(chunks).toString()) as ChildResult);
    });
  });
}

function medianOf(runs: Array<Record<TaskName, TaskFigures>>): SizeResult['median'] {
  const out = {} as SizeResult['median'];
  for (const task of EVENT_LOOP_TASKS) {
    const of = (f: (t: TaskFigures) => number): number => round(median(runs.map((r) => f(r[task]))));
    const stepNames = new Set(runs.flatMap((r) => Object.keys(r[task].steps ?? {})));
    const syncNames = new Set(runs.flatMap((r) => Object.keys(r[task].syncMs ?? {})));
    out[task] = {
      maxGapMs: of((t) => t.maxGapMs),
      p99GapMs: of((t) => t.p99GapMs),
      cpuMaxGapMs: of((t) => t.cpuMaxGapMs),
      cpuP99GapMs: of((t) => t.cpuP99GapMs),
      eldMaxMs: of((t) => t.eldMaxMs),
      eldP99Ms: of((t) => t.eldP99Ms),
      totalMs: of((t) => t.totalMs),
      cpuTotalMs: of((t) => t.cpuTotalMs),
      gcMaxMs: of((t) => t.gcMaxMs ?? 0),
      ...(syncNames.size ? { syncMs: Object.fromEntries([...syncNames].map((s) => [s, of((t) => t.syncMs?.[s] ?? 0)])) } : {}),
      ...(stepNames.size ? { steps: Object.fromEntries([...stepNames].map((s) => [s, of((t) => t.steps?.[s] ?? 0)])) } : {}),
    };
  }
  return out;
}

export async function runEventLoopBench(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  if (o.child) {
    const result = await runOnce(o.pods[0]!);
    const child: ChildResult = { tasks: result, peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) };
    process.stdout.write(`${JSON.stringify(child)}\n`);
    process.exit(0);
  }
  const nodeFlags = o.imageFlags ? imageNodeFlags() : [];
  const loadBefore = loadavg();
  const started = new Date();
  const sizes: SizeResult[] = [];
  for (const pods of o.pods) {
    const runs: SizeResult['runs'] = [];
    const peakRssMiB: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      say(
        `${pods} pods, run ${i + 1}/${o.runs} (load ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')})`,
      );
      const r = await runChild(pods, nodeFlags);
      runs.push(r.tasks);
      peakRssMiB.push(r.peakRssMiB);
    }
    sizes.push({ pods, runs, peakRssMiB, median: medianOf(runs) });
  }
  const doc = {
    benchmark: 'event-loop',
    command: `npm run bench -- --event-loop --pods ${o.pods.join(',')} --runs ${o.runs}${o.imageFlags ? '' : ' --no-image-flags'}`,
    nodeFlags,
    date: started.toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavg: { before: loadBefore, after: loadavg() },
    shape: { podsPerImage: PODS_PER_IMAGE, namespaces: NAMESPACES, podsPerNode: PODS_PER_NODE, listPage: PAGE },
    sizes,
  };
  const json = JSON.stringify(doc, null, 2);
  if (o.out) writeFileSync(o.out, json);
  const rows = sizes.flatMap((s) =>
    EVENT_LOOP_TASKS.map((task) => {
      const m = s.median[task];
      const worst = Object.entries(m.syncMs ?? {}).sort((a, b) => b[1] - a[1])[0];
      return [
        task,
        String(s.pods),
        String(m.maxGapMs),
        String(m.p99GapMs),
        String(m.cpuMaxGapMs),
        String(m.cpuP99GapMs),
        String(m.totalMs),
        String(m.cpuTotalMs),
        String(m.gcMaxMs),
        worst ? `${worst[0]} ${worst[1]}` : '',
      ];
    }),
  );
  const header = [
    'task',
    'pods',
    'longest gap (ms)',
    'p99 gap (ms)',
    'longest gap, CPU (ms)',
    'p99 gap, CPU (ms)',
    'total (ms)',
    'total, CPU (ms)',
    'longest GC pause (ms)',
    'longest synchronous step, CPU (ms)',
  ];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const rss = sizes.map((s) => `${s.pods} pods ${median(s.peakRssMiB)} MiB`).join(', ');
  process.stdout.write(`${json}\n\n${table}\n\nPeak RSS of the benchmark process (median; it holds the raw list and both phases' pieces): ${rss}\n`);
  say(`medians of ${o.runs} run(s); load average ${doc.loadavg.before.map((l) => l.toFixed(2)).join(' ')} → ${doc.loadavg.after.map((l) => l.toFixed(2)).join(' ')}`);
}
