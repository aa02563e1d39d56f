/**
 * Admission webhook benchmark (`npm run bench -- --admission [options]`): latency of POST /validate at a fixed request
 * rate, on a cache hit, on a cache miss and on a tag Anchore was not known to hold, measured from outside the operator
 * process as the apiserver sees it.
 *
 * The operator runs as a child process through dist/main.js (as bench/run.ts runs it) with ADMISSION_ENABLED and a
 * self-signed certificate; the Anchore simulator runs in this process with the same fixed latency on GET …/check and
 * on GET /v2/images (the tag lookup), so "one Anchore round trip" is known, and both round trips are also timed
 * directly from here. Then, open loop:
 *   hit       reviews of Pods running images a deny binding has evaluated (no Anchore call expected);
 *   miss      reviews of Pods each with a new image (tag and digest) Anchore holds and has analysed but no binding
 *             evaluated (one /check each);
 *   tag-miss  reviews of Pods each naming only a new tag, of an image added to Anchore (analysed, verdict set) after
 *             the operator read the account's image list, which it does not read again during the run
 *             (ANCHORE_IMAGES_REFRESH_SECONDS=86400): one GET /v2/images?full_tag= then one /check each;
 *   and, for context, a few dry-run Pod creates through the real apiserver with and without the webhook registered.
 *
 *   npm run bench -- --admission                 50 requests/s for 20 s per scenario
 *   npm run bench -- --admission --small         10 requests/s for 3 s (what CI runs: test/integration/bench-admission-small.test.ts)
 *   options: --rate N --seconds N --hit-images N --check-latency-ms N --round-trips N --apiserver-rounds N (0: none)
 *            --warmup N --out FILE --keep
 *            --cpu-prof (a .cpuprofile of the operator in the log dir), --heap-prof (a .heapprofile, likewise),
 *            --trace-gc (the operator's GC lines in its log), --node-arg FLAG (repeatable: more node flags for the
 *            operator, after the image's); with any of these the JSON gives each scenario's window on the monotonic
 *            clock (profileWindows, µs, as in a .cpuprofile) and as ms since the operator started (as in --trace-gc),
 *            and the log dir gets each scenario's requests (samples-<scenario>.json: send time since the epoch, latency)
 * Prints one JSON document and a Markdown table. All traffic is to 127.0.0.1.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { DEFAULT_POLICY_ID, startSimulator } from '../test/anchore-sim/index.ts';
import { addClusterUser, freePorts, releaseClusterUser } from '../test/cluster/local-cluster.ts';
import { acquireTestCluster } from '../test/support/cluster.ts';
import { selfSigned } from '../test/support/tls.ts';
import {
  type AdmissionBenchOptions,
  type MissImage,
  type Sample,
  compareWithGoals,
  lateImages,
  lateness,
  missImages,
  openLoop,
  overOwnCall,
  parseAdmissionArgs,
  podReview,
  summarise,
  webhookConfiguration,
} from './support/admission.ts';
import { type KubeConnection, connectionFromKubeconfig, countRunning, createNamespace, deleteNamespaces, deploymentBody, digestOf, parallel, podBody, req, waitFor } from './support/kube.ts';
import { type OperatorProcess, benchOperatorEnv, imageNodeFlags, kubectlIn, prepareCluster, startReady, sumMetric, waitBindingEvaluated, waitForQuiet } from './support/operator.ts';
import { markdownTable, percentiles, round2 } from './support/stats.ts';

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
/** The digest a GET /v2/images/{digest}/check was about ('' for any other path). */
const checkedDigest = (path: string): string => /^\/v2\/images\/(sha256:[a-f0-9]{64})\/check$/.exec(path)?.[1] ?? '';
/** GET /v2/images: the operator's reads of an account's image list (no full_tag) and its tag lookups (full_tag=…). */
const IMAGE_LIST = { method: 'GET', path: '/v2/images' } as const;
const ADMIN_AUTH = `Basic ${Buffer.from('admin:foobar').toString('base64')}`;

interface Answer {
  allowed: boolean;
}

/** Lookups, server-side time and CPU of the operator, and /check calls the simulator saw, over one scenario. */
interface Counters {
  hit: number;
  miss: number;
  durSum: Record<'hit' | 'miss', number>;
  durCount: Record<'hit' | 'miss', number>;
  /** Reviews at or below each bucket bound (seconds) of the operator's own admission histogram, by lookup. */
  durLe: Record<'hit' | 'miss', Record<string, number>>;
  /** V8 garbage collection in the operator: pauses, their total, and pauses over 1 ms (prom-client's default histogram). */
  gc: { count: number; seconds: number; over1ms: number };
  cpuSeconds: number;
  at: number;
}

/** Bucket bounds of anchore_operator_admission_duration_seconds the report counts reviews above (1, 5, 25, 50 ms). */
const OPERATOR_BOUNDS = ['0.001', '0.005', '0.025', '0.05'];

async function counters(op: OperatorProcess): Promise<Counters> {
  const text = await op.metrics();
  const sum = (name: string, ...fragments: string[]): number => sumMetric(text, name, ...fragments);
  const d = 'anchore_operator_admission_duration_seconds';
  return {
    hit: sum('anchore_operator_admission_cache_lookups_total', 'result="hit"'),
    miss: sum('anchore_operator_admission_cache_lookups_total', 'result="miss"'),
    durSum: { hit: sum(`${d}_sum`, 'lookup="hit"'), miss: sum(`${d}_sum`, 'lookup="miss"') },
    durCount: { hit: sum(`${d}_count`, 'lookup="hit"'), miss: sum(`${d}_count`, 'lookup="miss"') },
    durLe: {
      hit: Object.fromEntries(OPERATOR_BOUNDS.map((b) => [b, sum(`${d}_bucket`, 'lookup="hit"', `le="${b}"`)])),
      miss: Object.fromEntries(OPERATOR_BOUNDS.map((b) => [b, sum(`${d}_bucket`, 'lookup="miss"', `le="${b}"`)])),
    },
    gc: {
      count: sum('anchore_operator_nodejs_gc_duration_seconds_count'),
      seconds: sum('anchore_operator_nodejs_gc_duration_seconds_sum'),
      over1ms: sum('anchore_operator_nodejs_gc_duration_seconds_count') - sum('anchore_operator_nodejs_gc_duration_seconds_bucket', 'le="0.001"'),
    },
    cpuSeconds: op.stats().cpuSeconds,
    at: Date.now(),
  };
}

export async function runAdmissionBench(argv: string[]): Promise<void> {
  const o: AdmissionBenchOptions = parseAdmissionArgs(argv);
  const run = `a${randomBytes(2).toString('hex')}`;
  const count = o.rate * o.seconds;
  const cluster = await acquireTestCluster();
  // Registered as a user of the local cluster while it runs, so a test run finishing meanwhile does not stop it.
  if (cluster.kind === 'local') addClusterUser({ stateDir: cluster.stateDir });
  const conn: KubeConnection = connectionFromKubeconfig(cluster.kubeconfig);
  const logDir = join(cluster.stateDir || '/tmp', 'bench', run);
  mkdirSync(logDir, { recursive: true });
  const tlsDir = mkdtempSync(join(tmpdir(), 'bench-admission-tls-'));
  say(`run ${run} (admission): ${o.rate} requests/s for ${o.seconds} s per scenario, ${o.hitImages} hit images, /check and tag lookup latency ${o.checkLatencyMs} ms; logs in ${logDir}`);

  const sim = await startSimulator({ config: { analysis: { queued_ms: 100, analyzing_ms: 300 } }, retention: { requestBodyMaxBytes: 64 * 1024 } });
  const ns = `bench-${run}-adm`;
  const label = { 'bench-run': run };
  const webhook = `anchore-operator-bench-${run}`;
  const results: Record<string, unknown> = { run, params: { ...o, requestsPerScenario: count, nodeFlags: imageNodeFlags() }, machine: { cpus: cpus().length } };
  // The miss set: warm-up, the scenario, then the apiserver rounds and their probe, each image used once.
  const misses: MissImage[] = missImages(run, o.warmup + count + o.apiserverRounds + 1);
  const missWarm = misses.slice(0, o.warmup);
  const missRun = misses.slice(o.warmup, o.warmup + count);
  const missApi = misses.slice(o.warmup + count);
  // The tag-miss set: warm-up, then the scenario, each tag used once; added to Anchore after the operator's list read.
  const late: MissImage[] = lateImages(run, o.warmup + count);
  const lateWarm = late.slice(0, o.warmup);
  const lateRun = late.slice(o.warmup);
  let op: OperatorProcess | undefined;
  let webhookRegistered = false;
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  let webhookAgent: Agent | undefined;
  const kubectl = (args: string[], input?: string): void => kubectlIn(cluster, args, input);
  const profiling = o.cpuProf || o.heapProf || o.traceGc || o.nodeArgs.length > 0;
  const profileWindows: Record<string, { monoStartUs: number; monoEndUs: number; operatorMsFrom: number; operatorMsTo: number }> = {};
  let opStartedNs = 0n;

  try {
    // --- Setup (not measured).
    let t = Date.now();
    prepareCluster(cluster);
    await createNamespace(conn, ns, label);
    // The hit set: one Deployment (one pod) per image, Running before the operator starts.
    const hitTags = Array.from({ length: o.hitImages }, (_, i) => `bench.registry.local/${run}/hit-${i}:1.0`);
    await parallel(hitTags, 16, (image, i) => req(conn, 'POST', `/apis/apps/v1/namespaces/${ns}/deployments`, deploymentBody(ns, `hit-${i}`, 1, image, label)).then(() => undefined));
    await waitFor(`${o.hitImages} hit pods Running`, async () => (await countRunning(conn, `bench-run=${run}`)) >= o.hitImages, 300_000, 500);
    const pods = (await req(conn, 'GET', `/api/v1/namespaces/${ns}/pods?labelSelector=bench-run%3D${run}`)) as {
      items: Array<{ spec: { containers: Array<{ image: string }> }; status: { containerStatuses?: Array<{ imageID?: string }> } }>;
    };
    const hitDigests = new Map<string, string>();
    for (const p of pods.items) {
      const d = digestOf(p.status.containerStatuses?.[0]?.imageID ?? '');
      if (d) hitDigests.set(p.spec.containers[0]!.image, d);
    }
    if (hitDigests.size !== o.hitImages) throw new Error(`expected ${o.hitImages} hit digests from the running pods, got ${hitDigests.size}`);
    // One image in ten fails the policy (denied: an Event on the binding, as in a real cluster); the rest pass.
    const verdictFor = (i: number) => (i % 10 === 9 ? { status: 'fail' as const, final_action: 'stop' as const, findings: 2 } : { status: 'pass' as const, final_action: 'go' as const });
    hitTags.forEach((tag, i) => sim.setVerdict(hitDigests.get(tag)!, verdictFor(i)));
    // The miss set goes in through the simulator's HTTP API, as if another scanner or team had added it.
    const addToAnchore = (images: MissImage[]): Promise<void> =>
      parallel(images, 16, async (m, i) => {
        const res = await request(`${sim.url}/v2/images?auto_subscribe=false`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: ADMIN_AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ source: { digest: { pull_string: m.pullString, tag: m.tag } }, annotations: {}, image_type: 'docker' }),
        });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`adding ${m.image} to the simulator: HTTP ${res.statusCode}`);
        sim.setVerdict(m.digest, verdictFor(i));
      });
    await addToAnchore(misses);
    results['setup'] = { seconds: round2((Date.now() - t) / 1000), hitImages: o.hitImages, missImagesAdded: misses.length };
    say(`setup: ${o.hitImages} hit pods Running, ${misses.length} miss images added to the simulator, in ${round2((Date.now() - t) / 1000)} s`);

    // --- The operator, with the webhook on.
    const tls = selfSigned(tlsDir, 'anchore-operator-admission');
    const [admissionPort] = (await freePorts(1)) as [number];
    opStartedNs = process.hrtime.bigint();
    op = await startReady(
      {
        ...benchOperatorEnv(sim.url, cluster.kubeconfig, run, `bench-${run}`),
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: String(admissionPort),
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        // The account's image list is read at start and, for this run, never again (the setting's maximum), so the
        // tag-miss images added later are known to the operator only through a lookup.
        ANCHORE_IMAGES_REFRESH_SECONDS: '86400',
        // The bench measures reviews, not the rolling-update hand-off: stop at once when it is done.
        ADMISSION_SHUTDOWN_DELAY_SECONDS: '0',
      },
      join(logDir, 'operator.log'),
      [...(o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${logDir}`] : []), ...(o.heapProf ? ['--heap-prof', `--heap-prof-dir=${logDir}`] : []), ...(o.traceGc ? ['--trace-gc'] : []), ...o.nodeArgs],
    );
    const analysed = (): number => sim.images('admin').filter((i) => i.analysis_status === 'analyzed').length;
    await waitFor(
      'every image analysed in Anchore',
      () => analysed() >= o.hitImages + misses.length,
      300_000,
      200,
      () => `${analysed()}`,
    );
    t = Date.now();
    await req(conn, 'POST', `/apis/anchore.io/v1alpha1/namespaces/${ns}/anchorepolicybindings`, {
      apiVersion: 'anchore.io/v1alpha1',
      kind: 'AnchorePolicyBinding',
      metadata: { name: 'gate', namespace: ns },
      spec: { enforcement: 'deny' },
    });
    const summary = await waitBindingEvaluated(conn, `/apis/anchore.io/v1alpha1/namespaces/${ns}/anchorepolicybindings/gate`, o.hitImages, 'the binding evaluated every hit image', 300_000, 250);
    results['binding'] = { evaluatedSeconds: round2((Date.now() - t) / 1000), summary };

    // The tag-miss set goes into Anchore only now: after the operator has read the account's image list.
    const listReads = (): number => sim.requests(IMAGE_LIST).filter((r) => r.query['full_tag'] === undefined && r.status === 200).length;
    await waitFor("the operator read the account's image list", () => listReads() >= 1, 60_000, 100);
    const listReadsBefore = listReads();
    t = Date.now();
    await addToAnchore(late);
    await waitFor(
      'every tag-miss image analysed in Anchore',
      () => analysed() >= o.hitImages + misses.length + late.length,
      300_000,
      200,
      () => `${analysed()}`,
    );
    say(`tag-miss set: ${late.length} images added to the simulator after ${listReadsBefore} image list read(s) by the operator, analysed in ${round2((Date.now() - t) / 1000)} s`);
    // Quiet before measuring: no Anchore call for 2 s and the operator's queues empty.
    await waitForQuiet(op, () => sim.requests().length, 'operator idle and Anchore quiet', 300_000, 2000);

    // "One Anchore round trip": a fixed latency on every GET …/check and every GET /v2/images (the tag lookup; the
    // exact path, so not GET /v2/images/{digest}), as a remote Anchore would have.
    sim.setFaults([
      { method: 'GET', path: /\/check$/, latencyMs: o.checkLatencyMs },
      { method: 'GET', path: '/v2/images', latencyMs: o.checkLatencyMs },
    ]);

    // --- The bare round trip, straight from here to the simulator (same query as the operator's), open loop.
    const hitList = [...hitDigests.entries()];
    const rt = await openLoop({ rate: o.rate, count: o.roundTrips, maxMs: (o.roundTrips / o.rate) * 1000 + 30_000 }, async (i) => {
      const [tag, digest] = hitList[i % hitList.length]!;
      const q = new URLSearchParams({ tag, policy_id: DEFAULT_POLICY_ID, detail: 'true', interactive: 'true' });
      const res = await request(`${sim.url}/v2/images/${digest}/check?${q}`, {
        dispatcher: agent,
        headers: { authorization: ADMIN_AUTH, 'x-anchore-account': 'admin' },
        signal: AbortSignal.timeout(10_000),
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET /check: HTTP ${res.statusCode}`);
      return res.statusCode;
    });
    const roundTrip = summarise(rt);
    results['anchoreRoundTrip'] = { injectedLatencyMs: o.checkLatencyMs, latencyMs: roundTrip, generatorLateMs: lateness(rt) };
    say(`Anchore round trip (GET /check, ${o.checkLatencyMs} ms injected): p50 ${roundTrip.p50} ms, p99 ${roundTrip.p99} ms; generator late p99 ${lateness(rt).p99} ms`);

    // --- The tag lookup's bare round trip, the same way: the operator's query (image_status=active&full_tag=…) for the
    // scenario's own tags (a GET: it changes nothing the operator could see).
    const lk = await openLoop({ rate: o.rate, count: o.roundTrips, maxMs: (o.roundTrips / o.rate) * 1000 + 30_000 }, async (i) => {
      const m = lateRun[i % lateRun.length]!;
      const q = new URLSearchParams({ image_status: 'active', full_tag: m.tag });
      const res = await request(`${sim.url}/v2/images?${q}`, {
        dispatcher: agent,
        headers: { authorization: ADMIN_AUTH, 'x-anchore-account': 'admin' },
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET /v2/images?full_tag=: HTTP ${res.statusCode}`);
      if (!text.includes(m.digest)) throw new Error(`GET /v2/images?full_tag=${m.tag}: ${m.digest} not listed`);
      return res.statusCode;
    });
    const lookupRoundTrip = summarise(lk);
    results['anchoreLookupRoundTrip'] = { injectedLatencyMs: o.checkLatencyMs, latencyMs: lookupRoundTrip, generatorLateMs: lateness(lk) };
    say(
      `Anchore tag lookup round trip (GET /v2/images?full_tag=, ${o.checkLatencyMs} ms injected): p50 ${lookupRoundTrip.p50} ms, p99 ${lookupRoundTrip.p99} ms; generator late p99 ${lateness(lk).p99} ms`,
    );

    // --- The webhook, called as the apiserver calls it: HTTPS, keep-alive, the certificate's own CA.
    webhookAgent = new Agent({ keepAliveTimeout: 30_000, connect: { ca: tls.pem } });
    const url = `https://127.0.0.1:${admissionPort}/validate`;
    const review = async (image: string, name: string): Promise<Answer> => {
      const uid = randomUUID();
      const res = await request(url, {
        method: 'POST',
        dispatcher: webhookAgent,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(podReview({ uid, namespace: ns, name, image, labels: { app: name, ...label } })),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`POST /validate: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      const body = JSON.parse(text) as { response?: { uid?: string; allowed?: boolean } };
      if (body.response?.uid !== uid || typeof body.response.allowed !== 'boolean') throw new Error(`POST /validate: not an answer to ${uid}: ${text.slice(0, 200)}`);
      return { allowed: body.response.allowed };
    };
    const hitImage = (i: number): string => hitTags[i % hitTags.length]!;

    /**
     * One scenario: `lookup` is the label its reviews carry in the operator's histogram; `tagFor`, for tag-only specs
     * whose tag the operator must look up, names the tag of request i (its lookup is then counted and timed with its /check).
     */
    interface ScenarioSpec {
      name: 'hit' | 'miss' | 'tagMiss';
      lookup: 'hit' | 'miss';
      image: (i: number) => string;
      warm: (i: number) => string;
      digestFor: (i: number) => string;
      tagFor?: (i: number) => string;
    }
    const scenario = async ({ name, lookup, image, warm, digestFor, tagFor }: ScenarioSpec): Promise<void> => {
      const checkDigests = new Set(Array.from({ length: count }, (_, i) => digestFor(i)));
      const tagDigests = new Map(tagFor ? Array.from({ length: count }, (_, i) => [tagFor(i), digestFor(i)] as const) : []);
      if (o.warmup) await openLoop({ rate: o.rate, count: o.warmup, maxMs: (o.warmup / o.rate) * 1000 + 30_000 }, (i) => review(warm(i), `warm-${name}-${i}`));
      await new Promise((r) => setTimeout(r, 1000));
      const c0 = await counters(op!);
      const checks0 = sim.requests({ method: 'GET', path: /\/check$/ }).length;
      const lists0 = sim.requests(IMAGE_LIST).length;
      const eld = monitorEventLoopDelay({ resolution: 1 });
      eld.enable();
      const w0 = process.hrtime.bigint();
      const samples: Array<Sample<Answer>> = await openLoop({ rate: o.rate, count, maxMs: o.seconds * 1000 + 30_000 }, (i) => review(image(i), `${name}-${i}`));
      const w1 = process.hrtime.bigint();
      eld.disable();
      if (profiling) {
        // CLOCK_MONOTONIC in µs (a .cpuprofile's clock) and ms since the operator was spawned (about --trace-gc's clock).
        const sinceStart = (ns: bigint): number => Math.round(Number(ns - opStartedNs) / 1e6);
        profileWindows[name] = { monoStartUs: Number(w0 / 1000n), monoEndUs: Number(w1 / 1000n), operatorMsFrom: sinceStart(w0), operatorMsTo: sinceStart(w1) };
      }
      // Metrics are read after every answer is in; the counters only move while reviews are answered.
      const c1 = await counters(op!);
      const checks = sim.requests({ method: 'GET', path: /\/check$/ }).slice(checks0);
      const forRequests = checks.filter((r) => checkDigests.has(checkedDigest(r.path)));
      const anchoreSide = percentiles(
        forRequests.map((r) => r.durationMs),
        round2,
      );
      // Reads of GET /v2/images in the window: lookups of this scenario's tags, of other tags, and whole-list reads.
      const lists = sim.requests(IMAGE_LIST).slice(lists0);
      const lookupsForRequests = lists.filter((r) => tagDigests.has(r.query['full_tag'] ?? ''));
      const wholeListReads = lists.filter((r) => r.query['full_tag'] === undefined).length;
      const lookupSide = percentiles(
        lookupsForRequests.map((r) => r.durationMs),
        round2,
      );
      // Each request's own Anchore time as the simulator timed it: its /check, plus its tag lookup when it needed one
      // (then only requests with both calls are matched).
      const checkMs = new Map(forRequests.map((r) => [checkedDigest(r.path), r.durationMs]));
      const lookupMs = new Map(lookupsForRequests.map((r) => [tagDigests.get(r.query['full_tag']!)!, r.durationMs]));
      const callMs = tagFor ? new Map([...checkMs].filter(([d]) => lookupMs.has(d)).map(([d, ms]) => [d, ms + lookupMs.get(d)!])) : checkMs;
      if (profiling) {
        // Every request of the window, on the wall clock (ms since the epoch, sub-ms), with its own Anchore calls as the
        // simulator timed them, for lining up with other logs.
        const origin = performance.timeOrigin;
        const rows = samples.map((x) => {
          const d = digestFor(x.i);
          return { i: x.i, name: `${name}-${x.i}`, digest: d, sentAt: origin + x.startedAt, latencyMs: x.latencyMs, checkMs: checkMs.get(d), lookupMs: lookupMs.get(d), error: x.error };
        });
        writeFileSync(join(logDir, `samples-${name}.json`), JSON.stringify(rows));
      }
      const lat = summarise(samples);
      const sentLate = lateness(samples);
      const answered = samples.filter((s) => s.result);
      const mean = (k: 'hit' | 'miss'): number => round2(((c1.durSum[k] - c0.durSum[k]) / Math.max(1, c1.durCount[k] - c0.durCount[k])) * 1000);
      results[name] = {
        requests: count,
        ratePerSecond: o.rate,
        latencyMs: lat,
        operatorMeanMs: { hit: mean('hit'), miss: mean('miss') },
        // The operator's own view of the same reviews (from its histogram): how many took longer than each bound
        // inside the process, from the parsed request to the answer, against the latency seen from here.
        operatorReviewsOver: Object.fromEntries(
          OPERATOR_BOUNDS.map((b) => {
            const n = c1.durCount[lookup] - c0.durCount[lookup];
            return [`${Number(b) * 1000}ms`, n - ((c1.durLe[lookup][b] ?? 0) - (c0.durLe[lookup][b] ?? 0))];
          }),
        ),
        clientRequestsOver: Object.fromEntries(OPERATOR_BOUNDS.map((b) => [`${Number(b) * 1000}ms`, samples.filter((x) => x.error === undefined && x.latencyMs > Number(b) * 1000).length])),
        lookups: { hit: c1.hit - c0.hit, miss: c1.miss - c0.miss },
        checkCalls: { forRequestImages: forRequests.length, other: checks.length - forRequests.length },
        // GET /v2/images in the window: tag lookups for this scenario's tags, for any other tag, and whole-list reads.
        imageListCalls: { lookupsForRequestTags: lookupsForRequests.length, otherLookups: lists.length - lookupsForRequests.length - wholeListReads, wholeListReads },
        anchoreCallsPerRequest: { lookups: round2(lookupsForRequests.length / count), checks: round2(forRequests.length / count) },
        ...(lookupsForRequests.length ? { anchoreSideLookupMs: { p50: lookupSide.p50, p99: lookupSide.p99 } } : {}),
        ...(forRequests.length ? { anchoreSideCheckMs: { p50: anchoreSide.p50, p99: anchoreSide.p99 }, overOwnAnchoreCallMs: overOwnCall(samples, digestFor, callMs) } : {}),
        answers: { allowed: answered.filter((s) => s.result!.allowed).length, denied: answered.filter((s) => !s.result!.allowed).length, errors: samples.length - answered.length },
        operatorGc: { pauses: c1.gc.count - c0.gc.count, totalMs: round2((c1.gc.seconds - c0.gc.seconds) * 1000), pausesOver1ms: c1.gc.over1ms - c0.gc.over1ms },
        operatorCpuPercentOfOneCore: round2(((c1.cpuSeconds - c0.cpuSeconds) / ((c1.at - c0.at) / 1000)) * 100),
        generator: { lateMs: sentLate, eventLoopDelayP99Ms: round2(eld.percentile(99) / 1e6), eventLoopDelayMaxMs: round2(eld.max / 1e6) },
      };
      const firstError = samples.find((s) => s.error)?.error;
      say(
        `${name}: p50 ${lat.p50} ms, p90 ${lat.p90} ms, p99 ${lat.p99} ms, max ${lat.max} ms (generator late p99 ${sentLate.p99} ms, max ${sentLate.max} ms); cache lookups hit ${c1.hit - c0.hit} miss ${c1.miss - c0.miss}; tag lookups ${lookupsForRequests.length} (+${lists.length - lookupsForRequests.length} other image list calls); /check calls ${forRequests.length} (+${checks.length - forRequests.length} other); errors ${lat.errors}${firstError ? ` (first: ${firstError})` : ''}`,
      );
    };

    await scenario({ name: 'hit', lookup: 'hit', image: hitImage, warm: hitImage, digestFor: (i) => hitDigests.get(hitImage(i))! });
    await scenario({ name: 'miss', lookup: 'miss', image: (i) => missRun[i]!.image, warm: (i) => missWarm[i]!.image, digestFor: (i) => missRun[i]!.digest });
    await scenario({
      name: 'tagMiss',
      lookup: 'miss',
      image: (i) => lateRun[i]!.image,
      warm: (i) => lateWarm[i]!.image,
      digestFor: (i) => lateRun[i]!.digest,
      tagFor: (i) => lateRun[i]!.tag,
    });
    if (profiling) results['profileWindows'] = { logDir, ...profileWindows };
    // Evidence that the operator learned the tag-miss tags only by asking: its image list was not read again.
    results['tagMissSet'] = { imagesAdded: late.length, operatorListReadsBeforeAdding: listReadsBefore, operatorListReadsSinceAdding: listReads() - listReadsBefore };
    const p99Of = (k: string): number => (results[k] as { latencyMs: { p99: number } }).latencyMs.p99;
    results['goals'] = compareWithGoals(p99Of('hit'), p99Of('miss'), roundTrip.p99, { p99: p99Of('tagMiss'), lookupRoundTripP99: lookupRoundTrip.p99 });

    // --- Context: Pod creates through the real apiserver (dryRun=All: nothing is stored, the webhook still runs).
    if (o.apiserverRounds > 0) {
      const rounds = async (what: string, image: (i: number) => string): Promise<ReturnType<typeof summarise>> => {
        const samples: Array<Sample<unknown>> = [];
        for (let i = 0; i < o.apiserverRounds; i++) {
          const s0 = performance.now();
          // 403: the webhook denied it (one image in ten fails); the round trip is just as complete.
          await req(conn, 'POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, podBody(ns, `api-${what}-${i}`, image(i), label), [200, 201, 403]);
          samples.push({ i, scheduledAt: s0, startedAt: s0, latencyMs: performance.now() - s0 });
        }
        return summarise(samples);
      };
      const without = await rounds('none', hitImage);
      kubectl(['apply', '-f', '-'], JSON.stringify(webhookConfiguration(webhook, admissionPort, tls.pem, [ns])));
      webhookRegistered = true;
      // The apiserver reads webhook configurations through an informer: wait until it calls ours.
      await waitFor(
        'the apiserver calls the webhook',
        async () => {
          const before = await op!.metricSum('anchore_operator_admission_requests_total');
          await req(conn, 'POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, podBody(ns, 'api-probe', hitImage(0), label));
          return (await op!.metricSum('anchore_operator_admission_requests_total')) > before;
        },
        60_000,
        250,
      );
      const c0 = await counters(op);
      const withHit = await rounds('hit', hitImage);
      const withMiss = await rounds('miss', (i) => missApi[i]!.image);
      const c1 = await counters(op);
      results['apiserverDryRunCreate'] = {
        rounds: o.apiserverRounds,
        withoutWebhookMs: without,
        webhookHitMs: withHit,
        webhookMissMs: withMiss,
        lookups: { hit: c1.hit - c0.hit, miss: c1.miss - c0.miss },
      };
      say(`apiserver dry-run create (sequential): without webhook p50 ${without.p50} ms; with webhook, hit p50 ${withHit.p50} ms, miss p50 ${withMiss.p50} ms`);
    }
  } finally {
    sim.clearFaults();
    if (webhookRegistered) {
      try {
        kubectl(['delete', 'validatingwebhookconfiguration', webhook, '--ignore-not-found']);
      } catch (e) {
        say(`cleanup: ${(e as Error).message}`);
      }
    }
    await op?.stop();
    await webhookAgent?.close();
    await agent.close();
    if (!o.keep) {
      say('cleaning up the namespace');
      await deleteNamespaces(conn, [ns], 300_000).catch((e: unknown) => say(`cleanup: ${(e as Error).message}`));
    }
    await sim.stop();
    rmSync(tlsDir, { recursive: true, force: true });
    if (cluster.kind === 'local') releaseClusterUser({ stateDir: cluster.stateDir });
  }

  const json = JSON.stringify(results, null, 2);
  if (o.out) writeFileSync(o.out, json);
  process.stdout.write(`${json}\n\n${markdownTable(results)}\n`);
}
