import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import { EvaluationCache } from '../model/evaluation-cache.ts';
import { ImageController } from '../controllers/image.controller.ts';
import { Scope } from '../model/scope.ts';
import type { BindingInfo, BindingSpec, BindingStatus } from '../crds/types.ts';
import type { AccessChecker, EventRecorder, ObjectRef, RequestUser, ResourceAccess } from '../kube/cluster.port.ts';
import { AnchoreImages } from '../model/anchore-images.ts';
import { ImageCatalog } from '../model/image-catalog.ts';
import { systemClock } from '../runtime/clock.ts';
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
  user?: string;
  owner?: { apiVersion: string; kind: string; name: string };
}): AdmissionRequest {
  const images = Array.isArray(spec.image) ? spec.image : [spec.image ?? `docker.io/library/nginx@${BAD}`];
  const podSpec: Record<string, unknown> = { containers: images.map((image, i) => ({ name: `c${i}`, image })) };
  if (spec.init) podSpec['initContainers'] = [{ name: 'init', image: spec.init }];
  if (spec.ephemeral) podSpec['ephemeralContainers'] = [{ name: 'debug', image: spec.ephemeral }];
  const kind = spec.kind ?? 'Deployment';
  const meta: Record<string, unknown> & { namespace: string; labels: Record<string, string>; annotations: Record<string, string> } = {
    name: 'web',
    namespace: spec.namespace ?? 'shop',
    labels: spec.labels ?? { app: 'web' },
    annotations: spec.annotations ?? {},
  };
  if (spec.owner) meta['ownerReferences'] = [{ ...spec.owner, uid: 'owner-uid', controller: true }];
  const object =
    kind === 'Pod'
      ? { apiVersion: 'v1', kind, metadata: meta, spec: podSpec }
      : {
          apiVersion: 'apps/v1',
          kind,
          metadata: { name: 'web', namespace: meta.namespace, ...(meta['ownerReferences'] ? { ownerReferences: meta['ownerReferences'] } : {}) },
          spec: { template: { metadata: { labels: meta.labels, annotations: meta.annotations }, spec: podSpec } },
        };
  const req: AdmissionRequest = {
    uid: `req-${++uidSeq}`,
    kind: { group: kind === 'Pod' ? '' : 'apps', version: 'v1', kind },
    namespace: meta.namespace,
    name: 'web',
    operation: spec.operation ?? 'CREATE',
    userInfo: { username: spec.user ?? 'alice', groups: ['system:authenticated'] },
    object,
    dryRun: spec.dryRun ?? false,
  };
  if (spec.oldImage) req.oldObject = { ...object, spec: { template: { metadata: { labels: meta.labels }, spec: { containers: [{ name: 'c0', image: spec.oldImage }] } } } };
  return req;
}

/** SubjectAccessReviews answered from a list of users allowed to break glass; `fail` makes the apiserver unreachable. */
class Access implements AccessChecker {
  readonly asked: Array<{ user: RequestUser; access: ResourceAccess }> = [];
  breakglassUsers = new Set(['alice']);
  fail = false;
  allowed(user: RequestUser, access: ResourceAccess): Promise<{ allowed: boolean }> {
    this.asked.push({ user, access });
    if (this.fail) return Promise.reject(new Error('apiserver unavailable'));
    const ok = access.group === 'anchore.io' && access.resource === 'breakglass' && access.verb === 'use' && this.breakglassUsers.has(user.username ?? '');
    return Promise.resolve({ allowed: ok });
  }
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
  let catalog: ImageCatalog | undefined;
  let access: Access;

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
    catalog = undefined;
    access = new Access();
  });
  afterEach(async () => {
    await images?.queue.shutdown(100);
  });

  type Limits = { perReview: number; perNamespacePerMinute: number; perMinute: number };
  function validator(opts: { deadlineMs?: number; registerUnknown?: boolean; client?: AnchoreHttpClient; limits?: Partial<Limits>; repositories?: string[] } = {}): AdmissionValidator {
    const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] });
    const client = opts.client ?? anchore;
    // One image model, image controller and evaluation cache per test, shared by its validators (as in a replica).
    catalog ??= new ImageCatalog();
    const anchoreImages = new AnchoreImages({ anchore: client, catalog, refreshMs: 60_000, clock: systemClock, log });
    images ??= new ImageController({ stores, scope, anchore: client, catalog, anchoreImages, clusterName: 'c1', workers: 2, analysisPollMaxMs: 100, log, metrics });
    cache ??= new EvaluationCache(client, 8);
    return new AdmissionValidator({
      bindings,
      clusterBindings: new MemoryStore('cluster-bindings'),
      namespaces: stores.namespaces,
      scope,
      owns: () => true,
      catalog,
      anchoreImages,
      cache,
      anchore: client,
      access,
      events,
      config: {
        deadlineMs: opts.deadlineMs ?? 2000,
        exemptNamespaces: ['kube-system'],
        registerUnknown: opts.registerUnknown ?? true,
        registerLimits: { perReview: 5, perNamespacePerMinute: 20, perMinute: 60, ...opts.limits },
        registerRepositories: opts.repositories ?? [],
        trustedControllers: ['system:serviceaccount:kube-system:replicaset-controller', 'system:kube-controller-manager'],
      },
      ownNamespace: 'anchore-operator',
      clusterName: 'c1',
      clock: systemClock,
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
    // A digest-only image is named as the spec names it, never by the pseudo-tag MISSING_TAG_POLICY gives it for Anchore.
    expect(res.status?.message).toContain(`image docker.io/library/nginx@${BAD} fails`);
    expect(res.status?.message).not.toContain(`nginx:${BAD.slice(7)}`);
    expect(res.status?.message).toContain('Next: use an image that passes the policy');
    expect(res.status?.message).toContain('"use" on breakglass.anchore.io in namespace shop');
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
    expect(open.warnings?.join()).toContain('failurePolicy is open');
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

  describe('tag resolution (issue 22.1): only evidence a tenant cannot forge', () => {
    const TAG = 'docker.io/acme/bad:1.0';
    const P = d('acme-pass');
    const F = d('acme-fail');
    async function analysed(): Promise<void> {
      for (let i = 0; i < 100 && sim.images('admin').some((x) => x.analysis_status !== 'analyzed'); i++) await new Promise((r) => setTimeout(r, 10));
    }
    beforeEach(() => {
      sim.setVerdict(P, { status: 'pass', final_action: 'go' });
      sim.setVerdict(F, { status: 'fail', final_action: 'stop', findings: 1 });
    });

    it('when a pod elsewhere pins tag@passing-digest, then the plain tag is still judged on the digest Anchore holds under it, and fails', async () => {
      await anchore.addImage('admin', { tag: TAG, digestPullString: `docker.io/acme/bad@${F}` });
      stores.namespaces.put(aNamespace('free'));
      stores.pods.put(aPod('free', 'pinned', [aContainer('c', `acme/bad:1.0@${P}`, { digest: P, repo: 'docker.io/acme/bad' })]));
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator();
      images!.start();
      // The operator registers the pinned image under its digest's pseudo-tag: the pin is never written as the tag's record.
      for (let i = 0; i < 200 && !sim.images('admin').some((x) => x.image_digest === P); i++) await new Promise((r) => setTimeout(r, 10));
      await analysed();
      expect(
        sim
          .images('admin')
          .find((x) => x.image_digest === P)
          ?.image_detail.map((x) => x.full_tag),
      ).toEqual([`docker.io/acme/bad:${P.slice(7)}`]);
      const res = await v.review(aReview({ image: 'acme/bad:1.0' }));
      expect(res.allowed).toBe(false);
      expect(res.status?.message).toContain(`image ${TAG} fails`);
    });

    it('when a tenant pins the failing digest Anchore holds under the tag (and a passing one elsewhere), then nothing hides it: the tag still fails', async () => {
      await anchore.addImage('admin', { tag: TAG, digestPullString: `docker.io/acme/bad@${F}` });
      await anchore.addImage('admin', { tag: 'docker.io/acme/bad:0.9', digestPullString: `docker.io/acme/bad@${P}` });
      stores.namespaces.put(aNamespace('free'));
      stores.pods.put(aPod('free', 'pin-f', [aContainer('c', `acme/bad:other@${F}`, { digest: F, repo: 'docker.io/acme/bad' })]));
      stores.pods.put(aPod('free', 'pin-p', [aContainer('c', `acme/bad:1.0@${P}`, { digest: P, repo: 'docker.io/acme/bad' })]));
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      validator(); // builds the image controller of this test
      images!.start();
      // Two adds by CI, then one by the operator for each pin.
      for (let i = 0; i < 200 && sim.requests({ method: 'POST', path: '/v2/images' }).length < 4; i++) await new Promise((r) => setTimeout(r, 10));
      await analysed();
      // Neither pin was written as a record of a tag it does not already have.
      expect(
        sim
          .images('admin')
          .find((x) => x.image_digest === F)
          ?.image_detail.map((x) => x.full_tag),
      ).toEqual([TAG, `docker.io/acme/bad:${F.slice(7)}`]);
      expect(
        sim
          .images('admin')
          .find((x) => x.image_digest === P)
          ?.image_detail.map((x) => x.full_tag),
      ).toEqual(['docker.io/acme/bad:0.9', `docker.io/acme/bad:${P.slice(7)}`]);
      const fresh = validator();
      const res = await fresh.review(aReview({ image: 'acme/bad:1.0' }));
      expect(res.allowed).toBe(false);
      expect(res.status?.message).toContain(`image ${TAG} fails`);
    });

    it('when only a pinned spec ever named the tag, then the tag is unknown: failurePolicy closed denies it rather than judging the pinned digest', async () => {
      stores.namespaces.put(aNamespace('free'));
      stores.pods.put(aPod('free', 'pinned', [aContainer('c', `acme/bad:1.0@${P}`, { digest: P, repo: 'docker.io/acme/bad' })]));
      bindings.put(aBinding('gate', { enforcement: 'deny', failurePolicy: 'closed' }));
      const v = validator();
      images!.start();
      for (let i = 0; i < 200 && !sim.images('admin').some((x) => x.image_digest === P); i++) await new Promise((r) => setTimeout(r, 10));
      await analysed();
      const res = await v.review(aReview({ image: 'acme/bad:1.0', dryRun: true }));
      expect(res.allowed).toBe(false);
      expect(res.status?.message).toContain('cannot be judged (Anchore holds no image under this tag and no pod runs it)');
      // Anchore was asked about the tag on the miss, within the deadline.
      expect(sim.requests({ method: 'GET', path: '/v2/images' }).some((r) => r.query['full_tag'] === TAG)).toBe(true);
    });

    it('when the tag may stand for several digests (a kubelet pulled one, Anchore holds another), then each is judged and any failure fails', async () => {
      await anchore.addImage('admin', { tag: TAG, digestPullString: `docker.io/acme/bad@${P}` });
      await anchore.addImage('admin', { tag: 'docker.io/acme/other:2', digestPullString: `docker.io/acme/bad@${F}` });
      await analysed();
      stores.pods.put(aPod('shop', 'old', [aContainer('c', 'acme/bad:1.0', { digest: F, repo: 'docker.io/acme/bad' })]));
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator();
      images!.start();
      await v.review(aReview({ image: 'nginx:1', dryRun: true })); // loads the account's list
      for (let i = 0; i < 100 && catalog!.tagCandidates('admin', TAG).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(new Set(catalog!.tagCandidates('admin', TAG))).toEqual(new Set([P, F]));
      const res = await v.review(aReview({ image: 'acme/bad:1.0' }));
      expect(res.allowed).toBe(false);
      expect(res.status?.message).toContain('the tag may stand for 2 digests');
    });

    it('when CI added an image to Anchore after the start, then a miss asks Anchore for the tag and judges it (not "not in Anchore")', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator();
      v.start(['admin']);
      for (let i = 0; i < 100 && !sim.requests({ method: 'GET', path: '/v2/images' }).length; i++) await new Promise((r) => setTimeout(r, 10));
      await anchore.addImage('admin', { tag: 'docker.io/acme/late:1.0', digestPullString: `docker.io/acme/late@${F}` });
      await analysed();
      const res = await v.review(aReview({ image: 'acme/late:1.0' }));
      v.stop();
      expect(res.allowed).toBe(false);
      expect(res.status?.message).toContain('image docker.io/acme/late:1.0 fails');
    });
  });

  describe('trust (issues 22.2 and 22.5)', () => {
    const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d9' };

    it("when the ReplicaSet controller creates a pod for its ReplicaSet, then the pod inherits the owner's admission: no check, no Anchore call", async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const res = await validator().review(aReview({ kind: 'Pod', owner, user: 'system:serviceaccount:kube-system:replicaset-controller' }));
      expect(res.allowed).toBe(true);
      expect(checks()).toBe(0);
      expect(await metric('anchore_operator_admission_requests_total')).toContain('kind="Pod",verdict="inherited"} 1');
    });

    it("when a user writes an ownerReference to someone else's ReplicaSet on a pod of their own, then it is judged like any pod (no borrowing)", async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator();
      expect((await v.review(aReview({ kind: 'Pod', owner, user: 'alice' }))).allowed).toBe(false);
      // A trusted controller without an owner, or updating rather than creating, is judged as well.
      expect((await v.review(aReview({ kind: 'Pod', user: 'system:serviceaccount:kube-system:replicaset-controller' }))).allowed).toBe(false);
      expect((await v.review(aReview({ kind: 'Pod', owner, operation: 'UPDATE', oldImage: `redis@${GOOD}`, user: 'system:kube-controller-manager' }))).allowed).toBe(false);
    });

    it('when a user may not break glass, then the annotation is ignored and the images judged, the answer naming the missing permission; an empty reason is refused for everyone', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator();
      const mallory = await v.review(aReview({ annotations: { 'anchore.io/admission-breakglass': 'urgent' }, user: 'mallory' }));
      expect(mallory.allowed).toBe(false);
      expect(mallory.status?.message).toContain('breakglass refused: mallory may not break glass in namespace shop');
      expect(mallory.status?.message).toContain('so the images were checked: image docker.io/library/nginx@');
      expect(mallory.status?.message).toContain('"use" on "breakglass.anchore.io"');
      expect(access.asked[0]?.access).toEqual({ group: 'anchore.io', resource: 'breakglass', verb: 'use', namespace: 'shop' });
      expect(access.asked[0]?.user).toEqual({ username: 'mallory', groups: ['system:authenticated'] });
      const empty = await v.review(aReview({ annotations: { 'anchore.io/admission-breakglass': '  ' } }));
      expect(empty.allowed).toBe(false);
      expect(empty.status?.message).toContain('needs a reason');
      access.fail = true;
      const unknown = await v.review(aReview({ annotations: { 'anchore.io/admission-breakglass': 'INC-1' } }));
      expect(unknown.allowed).toBe(false);
      expect(unknown.status?.message).toContain('breakglass is refused when it cannot be checked');
      expect(await metric('anchore_operator_admission_breakglass_total')).toBe('');
      // A refused annotation is no reason to deny what passes: the images are judged, the answer says it was ignored.
      access.fail = false;
      const passing = await v.review(aReview({ image: `redis@${GOOD}`, annotations: { 'anchore.io/admission-breakglass': 'urgent' }, user: 'mallory' }));
      expect(passing.allowed).toBe(true);
      expect(passing.warnings?.[0]).toContain('annotation was ignored (mallory may not break glass');
    });
  });

  describe('registration from admission (issue 22.3): bounded, and never for a request denied by policy', () => {
    const unknownImages = (n: number, host = 'registry.example'): string[] => Array.from({ length: n }, (_, i) => `${host}/acme/unknown-${i}:1.0`);
    const waitAdds = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && adds() < n; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
    };

    it('when one review names 50 unknown images and internal registries, then at most the per-review limit is registered, none on an IP or localhost', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const res = await validator().review(aReview({ kind: 'Pod', image: [...unknownImages(50), '10.0.0.7:5000/acme/internal:1.0', 'localhost:5000/x:1', '[::1]:5000/y:1'] }));
      expect(res.allowed).toBe(true);
      await waitAdds(5);
      expect(adds()).toBe(5);
      const sent = sim.requests({ method: 'POST', path: '/v2/images' }).map((r) => JSON.stringify(r.body));
      expect(sent.some((b) => b.includes('10.0.0.7') || b.includes('localhost') || b.includes('::1'))).toBe(false);
      const m = await metric('anchore_operator_admission_registrations_total');
      expect(m).toContain('outcome="registered"} 5');
      expect(m).toContain('outcome="repository_not_allowed"} 3');
      expect(m).toContain('outcome="over_review_limit"} 45');
    });

    it('when a namespace sends more per minute than allowed, or the registry is outside ADMISSION_REGISTER_REPOSITORIES, then the rest is refused and counted', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const v = validator({ limits: { perNamespacePerMinute: 3 }, repositories: ['registry.example/acme/**'] });
      for (const image of unknownImages(6)) await v.review(aReview({ kind: 'Pod', image }));
      await v.review(aReview({ kind: 'Pod', image: 'ghcr.io/evil/x:1' }));
      await waitAdds(3);
      expect(adds()).toBe(3);
      const m = await metric('anchore_operator_admission_registrations_total');
      expect(m).toContain('outcome="over_namespace_limit"} 3');
      expect(m).toContain('outcome="repository_not_allowed"} 1');
    });

    it('when a request is denied because an image fails policy, then its unknown images are not registered; denied only for being unknown, they are, and the answer says so', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny', failurePolicy: 'closed' }));
      const v = validator();
      const failing = await v.review(aReview({ kind: 'Pod', image: [`nginx@${BAD}`, ...unknownImages(3)] }));
      expect(failing.allowed).toBe(false);
      const unknownOnly = await v.review(aReview({ kind: 'Pod', image: unknownImages(1, 'quay.io') }));
      expect(unknownOnly.allowed).toBe(false);
      expect(unknownOnly.status?.message).toContain('were sent to it for analysis: apply again once they are analysed');
      await waitAdds(1);
      expect(sim.requests({ method: 'POST', path: '/v2/images' }).map((r) => JSON.stringify(r.body))).toEqual([expect.stringContaining('quay.io/acme/unknown-0:1.0')]);
      expect(await metric('anchore_operator_admission_registrations_total')).toContain('outcome="request_denied"} 3');
    });
  });

  describe('fail-open paths under closed (issue 22.6)', () => {
    it('when an image reference cannot be parsed, then it is unjudged (closed denies, open warns), never skipped', async () => {
      bindings.put(aBinding('gate', { enforcement: 'deny', failurePolicy: 'closed' }));
      const closed = await validator().review(aReview({ kind: 'Pod', image: ['acme/UPPER:1.0', `redis@${GOOD}`] }));
      expect(closed.allowed).toBe(false);
      expect(closed.status?.message).toContain('"acme/UPPER:1.0" cannot be judged (the image reference cannot be parsed');
      bindings.remove('apb/shop/gate');
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      const open = await validator().review(aReview({ kind: 'Pod', image: 'acme/UPPER:1.0' }));
      expect(open.allowed).toBe(true);
      expect(open.warnings?.join()).toContain('cannot be parsed');
      expect(await metric('anchore_operator_admission_unjudged_images_total')).toContain('reason="invalid_reference"} 1');
    });

    it('when Anchore answers 503, then a review retries at most once inside its deadline (the client would retry 4 times)', async () => {
      const patient = new AnchoreHttpClient({
        url: sim.url,
        auth: { type: 'basic', username: 'admin', password: 'foobar' },
        log,
        retry: { attempts: 4, backoff: { baseMs: 10, maxMs: 20, jitter: 0 } },
      });
      try {
        bindings.put(aBinding('gate', { enforcement: 'deny', failurePolicy: 'closed' }));
        sim.setFaults([{ path: /\/check$/, status: 503, errorRate: 1 }]);
        const res = await validator({ client: patient }).review(aReview({}));
        expect(res.allowed).toBe(false);
        expect(checks()).toBe(2);
      } finally {
        sim.clearFaults();
        await patient.close();
      }
    });
  });

  describe('audit trail and messages (issue 22.8)', () => {
    it('when an audit binding sees a failing image that a deny binding rejects, then its Event says rejected (by the deny binding), not admitted', async () => {
      bindings.put(aBinding('audit', {}));
      bindings.put(aBinding('gate', { enforcement: 'deny' }));
      await validator().review(aReview({}));
      const audit = events.list.find((e) => e.reason === 'AdmissionAudit');
      expect(audit?.note).toContain('Deployment shop/web rejected (by AnchorePolicyBinding shop/gate)');
      expect(events.list.find((e) => e.reason === 'AdmissionDenied')?.note).toContain('Deployment shop/web rejected:');
    });

    it('when a warning is long, then it starts with the binding that gave it and is cut at 512 characters', async () => {
      sim.setVerdict(BAD, { status: 'fail', final_action: 'stop', findings: 40 });
      bindings.put(aBinding('a-binding-with-a-long-name', { enforcement: 'warn' }));
      const res = await validator().review(aReview({}));
      const w = res.warnings?.[0] ?? '';
      expect(w.startsWith('anchore-operator: AnchorePolicyBinding shop/a-binding-with-a-long-name (enforcement warn): image')).toBe(true);
      expect(w.length).toBeLessThanOrEqual(512);
    });
  });
});
