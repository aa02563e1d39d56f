import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import { EvaluationCache } from '../model/evaluation-cache.ts';
import { ImageController } from '../controllers/image.controller.ts';
import { Scope } from '../model/scope.ts';
import type { BindingInfo, BindingSpec, BindingStatus } from '../crds/types.ts';
import type { EventRecorder, ObjectRef } from '../kube/cluster.port.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aPod, hex64, memoryStores, type MemoryStores } from '../testing/factories.ts';
import { MemoryStore } from '../testing/memory-store.ts';
import type { AdmissionRequest } from './review.ts';
import { AdmissionValidator } from './validator.ts';

const log = createLogger({ level: 'silent', pretty: false });
const d = (s: string): string => `sha256:${hex64(s)}`;
const BAD = d('bad');
const GOOD = d('good');
const WARN = d('warn');

let uidSeq = 0;
function aBinding(name: string, spec: BindingSpec, opts: { namespace?: string; status?: BindingStatus; generation?: number } = {}): BindingInfo {
  const ns = opts.namespace ?? 'shop';
  return { key: `apb/${ns}/${name}`, resourceVersion: '1', kind: 'AnchorePolicyBinding', name, namespace: ns, uid: `b-${++uidSeq}`, generation: opts.generation ?? 1, spec, status: opts.status ?? {} };
}

function aReview(spec: {
  kind?: string;
  image?: string | string[];
  init?: string;
  ephemeral?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  dryRun?: boolean;
  operation?: 'CREATE' | 'UPDATE';
  oldImage?: string;
}): AdmissionRequest {
  const images = Array.isArray(spec.image) ? spec.image : [spec.image ?? `docker.io/library/nginx@${BAD}`];
  const podSpec: Record<string, unknown> = { containers: images.map((image, i) => ({ name: `c${i}`, image })) };
  if (spec.init) podSpec['initContainers'] = [{ name: 'init', image: spec.init }];
  if (spec.ephemeral) podSpec['ephemeralContainers'] = [{ name: 'debug', image: spec.ephemeral }];
  const kind = spec.kind ?? 'Deployment';
  const meta = { name: 'web', namespace: spec.namespace ?? 'shop', labels: spec.labels ?? { app: 'web' }, annotations: spec.annotations ?? {} };
  const object =
    kind === 'Pod'
      ? { apiVersion: 'v1', kind, metadata: meta, spec: podSpec }
      : { apiVersion: 'apps/v1', kind, metadata: { name: 'web', namespace: meta.namespace }, spec: { template: { metadata: { labels: meta.labels, annotations: meta.annotations }, spec: podSpec } } };
  const req: AdmissionRequest = {
    uid: `req-${++uidSeq}`,
    kind: { group: kind === 'Pod' ? '' : 'apps', version: 'v1', kind },
    namespace: meta.namespace,
    name: 'web',
    operation: spec.operation ?? 'CREATE',
    userInfo: { username: 'alice' },
    object,
    dryRun: spec.dryRun ?? false,
  };
  if (spec.oldImage) req.oldObject = { ...object, spec: { template: { metadata: { labels: meta.labels }, spec: { containers: [{ name: 'c0', image: spec.oldImage }] } } } };
  return req;
}

class Events implements EventRecorder {
  readonly list: Array<{ regarding: ObjectRef; type: string; reason: string; note: string; related?: ObjectRef }> = [];
  event(regarding: ObjectRef, type: 'Normal' | 'Warning', reason: string, _action: string, note: string, related?: ObjectRef): void {
    this.list.push({ regarding, type, reason, note, ...(related ? { related } : {}) });
  }
}

describe('AdmissionValidator', () => {
  let sim: AnchoreSimulator;
  let anchore: AnchoreHttpClient;
  let stores: MemoryStores;
  let bindings: MemoryStore<BindingInfo>;
  let events: Events;
  let metrics: OperatorMetrics;
  let images: ImageController | undefined;
  let cache: EvaluationCache | undefined;

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
    anchore = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log, retry: { attempts: 1 } });
  });
  afterAll(async () => {
    await anchore.close();
    await sim.stop();
  });
  beforeEach(async () => {
    sim.reset();
    for (const [digest, repo] of [
      [BAD, 'nginx'],
      [GOOD, 'redis'],
      [WARN, 'busybox'],
    ] as const) {
      await anchore.addImage('admin', { tag: `docker.io/library/${repo}:1`, digestPullString: `docker.io/library/${repo}@${digest}` });
    }
    sim.setVerdict(BAD, { status: 'fail', final_action: 'stop', findings: 2 });
    sim.setVerdict(GOOD, { status: 'pass', final_action: 'go', findings: 0 });
    sim.setVerdict(WARN, { status: 'pass', final_action: 'warn', findings: 1 });
    // Analysis is asynchronous even at 0 ms: wait until the simulator says every image is analysed.
    for (let i = 0; i < 100 && sim.images('admin').some((x) => x.analysis_status !== 'analyzed'); i++) await new Promise((r) => setTimeout(r, 10));
    sim.clearRequests();
    stores = memoryStores();
    stores.namespaces.put(aNamespace('shop'));
    stores.namespaces.put(aNamespace('kube-system'));
    stores.namespaces.put(aNamespace('anchore-operator'));
    bindings = new MemoryStore('bindings');
    events = new Events();
    metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    images = undefined;
    cache = undefined;
  });
  afterEach(async () => {
    await images?.queue.shutdown(100);
  });

  function validator(opts: { deadlineMs?: number; registerUnknown?: boolean } = {}): AdmissionValidator {
    const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] });
    // One image controller and evaluation cache per test, shared by its validators (as in a replica).
    images ??= new ImageController({ stores, scope, anchore, clusterName: 'c1', workers: 2, analysisPollMaxMs: 100, log, metrics });
    cache ??= new EvaluationCache(anchore, 8);
    return new AdmissionValidator({
      bindings,
      clusterBindings: new MemoryStore('cluster-bindings'),
      namespaces: stores.namespaces,
      scope,
      owns: () => true,
      images,
      cache,
      anchore,
      events,
      config: { deadlineMs: opts.deadlineMs ?? 2000, exemptNamespaces: ['kube-system'], registerUnknown: opts.registerUnknown ?? true },
      ownNamespace: 'anchore-operator',
      clusterName: 'c1',
      log,
      metrics,
    });
  }
  const checks = (): number => sim.requests({ method: 'GET', path: /\/check$/ }).length;
  const adds = (): number => sim.requests({ method: 'POST', path: '/v2/images' }).length;
  const metric = async (name: string): Promise<string> =>
    (await metrics.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join('\n');

  it('when a deny binding covers an image that fails policy, then the request is rejected naming image, policy, binding and reason', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const res = await validator().review(aReview({}));
    expect(res.allowed).toBe(false);
    expect(res.status?.code).toBe(403);
    expect(res.status?.message).toContain('docker.io/library/nginx:');
    expect(res.status?.message).toContain('Default bundle');
    expect(res.status?.message).toContain('AnchorePolicyBinding shop/gate');
    expect(res.status?.message).toContain('final action stop');
    expect(events.list.map((e) => e.reason)).toEqual(['AdmissionDenied']);
    expect(events.list[0]?.regarding.name).toBe('gate');
    expect(await metric('anchore_operator_admission_requests_total')).toContain('kind="Deployment",verdict="denied"} 1');
  });

  it('when the binding warns, then the request is admitted with a warning; a passing image is admitted silently', async () => {
    bindings.put(aBinding('gate', { enforcement: 'warn' }));
    const v = validator();
    const bad = await v.review(aReview({}));
    expect(bad.allowed).toBe(true);
    expect(bad.warnings?.join()).toContain('fails Anchore policy Default bundle');
    const good = await v.review(aReview({ image: `redis@${GOOD}` }));
    expect(good).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('when the binding audits (the default), then the request is admitted and an Event and the violation metric record it', async () => {
    bindings.put(aBinding('gate', {}));
    const res = await validator().review(aReview({}));
    expect(res.allowed).toBe(true);
    expect(res.warnings).toBeUndefined();
    expect(events.list).toEqual([expect.objectContaining({ reason: 'AdmissionAudit', type: 'Warning', related: expect.objectContaining({ kind: 'Deployment', name: 'web' }) })]);
    expect(await metric('anchore_operator_admission_policy_violations_total')).toContain('enforcement="audit"} 1');
  });

  it('when the verdict is cached, then a second review makes no Anchore call', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    await v.review(aReview({}));
    const before = checks();
    expect(before).toBe(1);
    const res = await v.review(aReview({}));
    expect(res.allowed).toBe(false);
    expect(checks()).toBe(before);
    expect(await metric('anchore_operator_admission_cache_lookups_total')).toMatch(/result="hit"} 1[\s\S]*result="miss"} 1|result="miss"} 1[\s\S]*result="hit"} 1/);
  });

  it("when the binding's own status holds a fresh verdict for the image, then admission answers from it with no Anchore call", async () => {
    const status: BindingStatus = {
      observedGeneration: 1,
      policy: { id: '2c53a13c-1765-11e8-82ef-23527761d060', name: 'Default bundle', active: true },
      account: 'admin',
      lastEvaluationTime: new Date().toISOString(),
      results: [{ image: 'docker.io/library/nginx:1', digest: BAD, result: 'fail', finalAction: 'stop', findings: 2 }],
    };
    bindings.put(aBinding('gate', { enforcement: 'deny' }, { status }));
    const res = await validator().review(aReview({ image: `docker.io/library/nginx:1@${BAD}` }));
    expect(res.allowed).toBe(false);
    expect(checks()).toBe(0);
  });

  it('when many reviews of one image arrive at once, then Anchore is asked once', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    bindings.put(aBinding('gate2', { enforcement: 'warn' }));
    const v = validator();
    const answers = await Promise.all(Array.from({ length: 20 }, () => v.review(aReview({}))));
    expect(answers.every((a) => !a.allowed)).toBe(true);
    expect(checks()).toBe(1);
  });

  it('when init and ephemeral containers run a failing image, then they are checked like the others', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    expect((await v.review(aReview({ image: `redis@${GOOD}`, init: `nginx@${BAD}` }))).allowed).toBe(false);
    expect((await v.review(aReview({ kind: 'Pod', image: `redis@${GOOD}`, ephemeral: `nginx@${BAD}` }))).allowed).toBe(false);
    expect((await v.review(aReview({ kind: 'Pod', image: `redis@${GOOD}` }))).allowed).toBe(true);
  });

  it('when a tag-only image runs in the cluster, then its running digest is judged', async () => {
    stores.pods.put(aPod('shop', 'old', [aContainer('c', 'nginx:1.25', { digest: BAD })]));
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    images!.start();
    const res = await v.review(aReview({ image: 'nginx:1.25' }));
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toContain('docker.io/library/nginx:1.25');
  });

  it('when an image is unknown, then failurePolicy open admits with a warning and closed rejects; a real request registers it, a dry run does not', async () => {
    bindings.put(aBinding('open', { enforcement: 'deny' }));
    const v = validator();
    const open = await v.review(aReview({ image: 'nginx:9.9', dryRun: true }));
    expect(open.allowed).toBe(true);
    expect(open.warnings?.join()).toContain('failurePolicy open');
    bindings.put(aBinding('closed', { enforcement: 'deny', failurePolicy: 'closed' }));
    const closed = await v.review(aReview({ image: 'nginx:9.9', dryRun: true }));
    expect(closed.allowed).toBe(false);
    expect(closed.status?.message).toContain('failurePolicy is closed');
    await new Promise((r) => setTimeout(r, 100));
    expect(adds()).toBe(0);
    expect(events.list).toEqual([]);
    await v.review(aReview({ image: 'nginx:9.9' }));
    for (let i = 0; i < 100 && adds() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sim.requests({ method: 'POST', path: '/v2/images' }).map((r) => JSON.stringify(r.body))).toEqual([expect.stringContaining('docker.io/library/nginx:9.9')]);
    expect(events.list.map((e) => e.reason)).toEqual(['AdmissionDenied']);
    expect(await metric('anchore_operator_admission_unjudged_images_total')).toContain('failure_policy="closed",reason="not_in_anchore"}');
  });

  it('when Anchore is down, then failurePolicy decides; when it is slow, then the answer comes by the deadline', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny', failurePolicy: 'closed' }));
    sim.setFaults([{ path: /\/check$/, status: 503, errorRate: 1 }]);
    const down = await validator().review(aReview({}));
    expect(down.allowed).toBe(false);
    expect(down.status?.message).toMatch(/cannot be judged \((Anchore could not be asked|Anchore did not answer within)/);
    sim.setFaults([{ path: /\/check$/, latencyMs: 3000 }]);
    const t0 = Date.now();
    const slow = await validator({ deadlineMs: 300 }).review(aReview({}));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(slow.allowed).toBe(false);
    expect(slow.status?.message).toContain('did not answer within the admission deadline');
    sim.clearFaults();
  });

  it('when the namespace is exempt (kube-system, the operator namespace) or no binding selects the pods, then nothing is checked', async () => {
    const cluster = new MemoryStore<BindingInfo>('cb');
    bindings.put(aBinding('gate', { enforcement: 'deny', podSelector: { matchLabels: { app: 'other' } } }));
    const v = validator();
    expect((await v.review(aReview({}))).allowed).toBe(true);
    expect((await v.review(aReview({ namespace: 'kube-system' }))).allowed).toBe(true);
    expect((await v.review(aReview({ namespace: 'anchore-operator' }))).allowed).toBe(true);
    expect(checks()).toBe(0);
    expect(cluster.size).toBe(0);
    expect(await metric('anchore_operator_admission_requests_total')).toContain('verdict="exempt"} 2');
  });

  it('when an update keeps the images (scaling), then it is admitted; an update introducing a failing image is judged', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    expect((await v.review(aReview({ operation: 'UPDATE', oldImage: `docker.io/library/nginx@${BAD}` }))).allowed).toBe(true);
    expect((await v.review(aReview({ operation: 'UPDATE', oldImage: `redis@${GOOD}` }))).allowed).toBe(false);
  });

  it('when the breakglass annotation is set, then the request is admitted, audited by an Event and a metric (not on a dry run)', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    const dry = await v.review(aReview({ annotations: { 'anchore.io/admission-breakglass': 'INC-42 hotfix' }, dryRun: true }));
    expect(dry.allowed).toBe(true);
    expect(events.list).toEqual([]);
    const res = await v.review(aReview({ annotations: { 'anchore.io/admission-breakglass': 'INC-42 hotfix' } }));
    expect(res.allowed).toBe(true);
    expect(res.warnings?.join()).toContain('INC-42 hotfix');
    expect(events.list).toEqual([expect.objectContaining({ reason: 'AdmissionBreakglass', note: expect.stringContaining('user alice') })]);
    expect(await metric('anchore_operator_admission_breakglass_total')).toContain('namespace="shop"} 2');
    expect(checks()).toBe(0);
  });

  it('when a final action is warn, then warn and deny bindings pass it on as a warning, and failOn warn makes it fail', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny' }));
    const v = validator();
    const res = await v.review(aReview({ image: `busybox@${WARN}` }));
    expect(res.allowed).toBe(true);
    expect(res.warnings?.join()).toContain('final action warn');
    bindings.put(aBinding('strict', { enforcement: 'deny', failOn: 'warn' }));
    expect((await v.review(aReview({ image: `busybox@${WARN}` }))).allowed).toBe(false);
  });

  it('when a binding is suspended, then it does not judge', async () => {
    bindings.put(aBinding('gate', { enforcement: 'deny', suspend: true }));
    expect((await validator().review(aReview({}))).allowed).toBe(true);
  });
});
