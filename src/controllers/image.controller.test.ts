import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import type { AnchoreImage } from '../anchore/anchore.port.ts';
import { EvaluationCache } from '../model/evaluation-cache.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aPod, hex64, memoryStores, type MemoryStores } from '../testing/factories.ts';
import { FakeAnchore } from '../testing/fake-anchore.ts';
import { ImageController } from './image.controller.ts';
import { Scope } from '../model/scope.ts';
import { AnchoreImages } from '../model/anchore-images.ts';
import { ImageCatalog } from '../model/image-catalog.ts';
import { systemClock } from '../runtime/clock.ts';

const log = createLogger({ level: 'silent', pretty: false });
const d = (s: string): string => `sha256:${hex64(s)}`;

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ImageController', () => {
  let sim: AnchoreSimulator;
  let anchore: AnchoreHttpClient;
  let stores: MemoryStores;
  let controllers: ImageController[] = [];

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 10, analyzing_ms: 30, fail_digests: [d('broken')] } } });
    anchore = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log });
  });
  afterAll(async () => {
    await anchore.close();
    await sim.stop();
  });
  beforeEach(() => {
    stores = memoryStores();
    stores.namespaces.put(aNamespace('shop'));
    stores.namespaces.put(aNamespace('kube-system'));
  });
  afterEach(async () => {
    for (const c of controllers) await c.queue.shutdown(1000);
    controllers = [];
    sim.reset();
  });

  function controller(final?: (key: string) => void, extra: Partial<ConstructorParameters<typeof Scope>[0]> = {}, pollMaxMs = 100): ImageController {
    const catalog = new ImageCatalog();
    const c = new ImageController({
      stores,
      catalog,
      anchoreImages: new AnchoreImages({ anchore, catalog, refreshMs: 60_000, clock: systemClock, log }),
      scope: new Scope({ namespaces: { exclude: ['kube-system'] }, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [], ...extra }),
      anchore,
      clusterName: 'c1',
      workers: 4,
      analysisPollMaxMs: pollMaxMs,
      log,
      metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
    });
    if (final) c.onAnalysisFinal(final);
    controllers.push(c);
    return c;
  }

  it('when many pods run the same image, then it is added exactly once, by digest with its tag, and followed to analyzed', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    for (let i = 0; i < 5; i++) {
      stores.pods.put(aPod('shop', `web-${i}`, [aContainer('web', 'nginx:1.25', { digest: d('nginx') })], { owner: { kind: 'ReplicaSet', name: 'web-abc' } }));
    }
    c.start();
    await until(() => finals.length === 1);
    const posts = sim.requests({ method: 'POST', path: '/v2/images' });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.body).toMatchObject({
      source: { digest: { pull_string: `docker.io/library/nginx@${d('nginx')}`, tag: 'docker.io/library/nginx:1.25' } },
      annotations: { 'anchore-operator/cluster': 'c1', 'anchore-operator/workload': 'shop/ReplicaSet/web-abc' },
    });
    expect(c.catalog(`admin|${d('nginx')}`)?.analysis).toBe('analyzed');
    expect(sim.requests({ method: 'GET', path: '/v2/images' })).toHaveLength(1); // one list call to learn existing images
  });

  it('when analysis fails in Anchore, then the image ends in analysis_failed and is not re-added in a loop', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'bad', [aContainer('x', 'bad:1', { digest: d('broken'), repo: 'docker.io/library/bad' })]));
    c.start();
    await until(() => finals.length === 1);
    expect(c.catalog(`admin|${d('broken')}`)?.analysis).toBe('analysis_failed');
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(1);
  });

  it('when a namespace is excluded, then its images are not registered', async () => {
    const c = controller();
    stores.pods.put(aPod('kube-system', 'dns', [aContainer('dns', 'coredns:1.11', { digest: d('dns') })]));
    stores.pods.put(aPod('shop', 'web', [aContainer('web', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    await until(() => sim.requests({ method: 'POST', path: '/v2/images' }).length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.images('admin').map((i) => i.image_digest)).toEqual([d('nginx')]);
  });

  it('when the operator restarts with everything registered, then it adds nothing', async () => {
    const finals: string[] = [];
    const first = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'a', [aContainer('a', 'nginx:1.25', { digest: d('nginx') }), aContainer('b', 'redis:7', { digest: d('redis'), repo: 'docker.io/library/redis' })]));
    first.start();
    await until(() => finals.length === 2);
    await first.queue.shutdown(1000);
    sim.clearRequests();
    const finals2: string[] = [];
    const second = controller((k) => finals2.push(k));
    second.start();
    await until(() => finals2.length === 2);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
    expect(sim.requests({ method: 'GET', path: '/v2/images' })).toHaveLength(1);
  });

  it('when no digest is known, then the image is added by tag once and found by tag after a restart', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    // A locally built image: the kubelet reports a config id, not a registry digest.
    stores.pods.put(aPod('shop', 'a', [{ ...aContainer('a', 'alpine:3.20'), imageID: d('alpine-config') }]));
    c.start();
    await until(() => finals.length === 1);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })[0]?.body).toMatchObject({ source: { tag: { pull_string: 'docker.io/library/alpine:3.20' } } });
    await c.queue.shutdown(1000);
    sim.clearRequests();
    const again: string[] = [];
    controller((k) => again.push(k)).start();
    await until(() => again.length === 1);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
  });

  it('when namespaces route to accounts, then each image is registered in its namespace account', async () => {
    stores.namespaces.put(aNamespace('team-a-web'));
    const c = controller(undefined, { routes: [{ account: 'team-a', namespaces: ['team-a-*'] }] });
    stores.pods.put(aPod('team-a-web', 'w', [aContainer('w', 'nginx:1.25', { digest: d('nginx') })]));
    stores.pods.put(aPod('shop', 's', [aContainer('s', 'redis:7', { digest: d('redis'), repo: 'docker.io/library/redis' })]));
    c.start();
    await until(() => sim.requests({ method: 'POST', path: '/v2/images' }).length === 2);
    expect(sim.images('team-a').map((i) => i.image_digest)).toEqual([d('nginx')]);
    expect(sim.images('admin').map((i) => i.image_digest)).toEqual([d('redis')]);
  });

  it('when Anchore reports an analysis_status it does not document, then the image is not final and is polled again until a known final state', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    const digest = d('magic');
    const magic = { image_digest: digest, analysis_status: 'queued_for_magic', image_status: 'active', image_detail: [] };
    sim.setFaults([
      { method: 'POST', path: '/v2/images', body: magic, count: 1 },
      { method: 'GET', path: `/v2/images/${digest}`, body: magic, count: 3 },
    ]);
    stores.pods.put(aPod('shop', 'm', [aContainer('m', 'magic:1', { digest, repo: 'docker.io/library/magic' })]));
    c.start();
    await until(() => sim.requests({ method: 'GET', path: `/v2/images/${digest}` }).length >= 3, 15_000);
    expect(finals).toEqual([]);
    expect(c.catalog(`admin|${digest}`)?.analysis).toBe('unknown');
    // The faulted POST created nothing; with the faults spent, polling finds 404, re-adds it, and follows it to analyzed.
    await until(() => finals.length === 1, 15_000);
    expect(c.catalog(`admin|${digest}`)?.analysis).toBe('analyzed');
  });

  it('when POST /v2/images answers with the wrong types, then registration fails and is retried, never recording a bad digest', async () => {
    sim.setFaults([{ method: 'POST', path: '/v2/images', wrongTypes: true, count: 2 }]);
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'w', [aContainer('w', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    await until(() => finals.length === 1, 15_000);
    expect(c.catalog(`admin|${d('nginx')}`)).toMatchObject({ digest: d('nginx'), analysis: 'analyzed' });
    // The client retries a mangled answer: 2 of them, then a good one. Anchore did add the image the first time (only
    // the answer was mangled), and a re-add of the same digest is idempotent there.
    expect(sim.requests({ method: 'POST', path: '/v2/images' }).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sim.images('admin')).toHaveLength(1);
  });

  it('when Anchore is briefly unavailable, then registration is retried and nothing is lost', async () => {
    sim.setFaults([{ method: 'POST', path: '/v2/images', status: 503, errorRate: 1, count: 8 }]);
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'w', [aContainer('w', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    await until(() => finals.length === 1, 15_000);
    expect(sim.images('admin')).toHaveLength(1);
  });
  it('when a multi-arch image (kubelet reports the manifest-list digest) was registered, then a restart adds nothing', async () => {
    const list = d('nginx-index');
    const platform = d('nginx-amd64');
    sim.config.manifest_lists[list] = platform;
    try {
      const finals: string[] = [];
      const first = controller((k) => finals.push(k));
      stores.pods.put(aPod('shop', 'a', [aContainer('a', 'nginx:1.27', { digest: list })]));
      first.start();
      await until(() => finals.length === 1);
      expect(sim.images('admin').map((i) => [i.image_digest, i.parent_digest])).toEqual([[platform, list]]);
      expect(first.catalog(`admin|${list}`)?.digest).toBe(platform);
      await first.queue.shutdown(1000);
      sim.clearRequests();
      const again: string[] = [];
      const second = controller((k) => again.push(k));
      second.start();
      await until(() => again.length === 1);
      expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
      // Policy checks and vulnerability reads go to the platform digest Anchore stores.
      expect(second.catalog(`admin|${list}`)).toMatchObject({ digest: platform, analysis: 'analyzed' });
    } finally {
      delete sim.config.manifest_lists[list];
    }
  });

  it('when one digest runs under two tags, then each tag is added to Anchore (by digest), once, and a restart adds nothing', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'a', [aContainer('a', 'nginx:1.25', { digest: d('nginx') })]));
    stores.pods.put(aPod('shop', 'b', [aContainer('b', 'nginx:stable', { digest: d('nginx') })]));
    stores.pods.put(aPod('shop', 'c', [aContainer('c', 'nginx:stable', { digest: d('nginx') })]));
    c.start();
    await until(() => finals.length >= 1 && (sim.images('admin')[0]?.image_detail.length ?? 0) === 2);
    const posts = sim.requests({ method: 'POST', path: '/v2/images' });
    expect(posts.map((p) => (p.body as { source: { digest: { tag: string } } }).source.digest.tag).sort()).toEqual(['docker.io/library/nginx:1.25', 'docker.io/library/nginx:stable']);
    expect(sim.images('admin').map((i) => i.image_detail.map((x) => x.full_tag).sort())).toEqual([['docker.io/library/nginx:1.25', 'docker.io/library/nginx:stable']]);
    // A third tag appearing later is added too.
    stores.pods.put(aPod('shop', 'd', [aContainer('d', 'nginx:latest', { digest: d('nginx') })]));
    await until(() => sim.requests({ method: 'POST', path: '/v2/images' }).length === 3);
    await c.queue.shutdown(1000);
    sim.clearRequests();
    const again: string[] = [];
    controller((k) => again.push(k)).start();
    await until(() => again.length === 1);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
  });

  it('when pods churn while an image is being analysed, then the analysis-poll backoff holds', async () => {
    const digest = d('slow');
    const analyzing = { image_digest: digest, analysis_status: 'analyzing', image_status: 'active', image_detail: [] };
    sim.setFaults([{ method: 'GET', path: `/v2/images/${digest}`, body: analyzing, count: 10_000 }]);
    const c = controller(undefined, {}, 60_000);
    stores.pods.put(aPod('shop', 'p0', [aContainer('p', 'slow:1', { digest, repo: 'docker.io/library/slow' })]));
    c.start();
    await until(() => sim.requests({ method: 'POST', path: '/v2/images' }).length === 1);
    // 400 pods come and go over ~2 s (a rollout, a crash-looping Job): none changes what must be polled.
    for (let i = 1; i <= 400; i++) {
      stores.pods.put(aPod('shop', `p${i}`, [aContainer('p', 'slow:1', { digest, repo: 'docker.io/library/slow' })]));
      if (i > 2) stores.pods.remove(`shop/p${i - 2}`);
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    // Backoff 1 s, 2 s (±20 %) after the add: at most 2 polls in ~2.5 s (hundreds before).
    expect(sim.requests({ method: 'GET', path: `/v2/images/${digest}` }).length).toBeLessThanOrEqual(2);
    expect(c.catalog(`admin|${digest}`)?.analysis).toBe('analyzing');
  });

  it('when a container is still pulling (empty imageID) beside one running the same tag by digest, then the image is added once, by digest', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'a', [aContainer('a', 'nginx:1.25', { digest: d('nginx') })]));
    stores.pods.put(aPod('shop', 'b', [aContainer('b', 'nginx:1.25')])); // imageID "" while pulling
    c.start();
    await until(() => finals.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    // The pull ends: the kubelet reports the digest.
    stores.pods.put(aPod('shop', 'b', [aContainer('b', 'nginx:1.25', { digest: d('nginx') })]));
    await new Promise((r) => setTimeout(r, 200));
    const posts = sim.requests({ method: 'POST', path: '/v2/images' });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.body).toMatchObject({ source: { digest: { pull_string: `docker.io/library/nginx@${d('nginx')}` } } });
    expect([...c.running.keys()]).toEqual([`admin|${d('nginx')}`]);
  });

  it('when Anchore no longer holds an analysed image (404 seen by a reader), then it is registered again and followed to analyzed', async () => {
    const finals: string[] = [];
    const c = controller((k) => finals.push(k));
    stores.pods.put(aPod('shop', 'a', [aContainer('a', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    await until(() => finals.length === 1);
    expect(sim.deleteImage('admin', d('nginx'))).toBe(true);
    sim.clearRequests();
    expect(c.recheck(`admin|${d('nginx')}`)).toBe(true);
    await until(() => sim.requests({ method: 'POST', path: '/v2/images' }).length === 1);
    expect(c.reRegistering(`admin|${d('nginx')}`) || finals.length === 2).toBe(true);
    await until(() => finals.length === 2);
    expect(c.reRegistering(`admin|${d('nginx')}`)).toBe(false);
    expect(sim.images('admin').map((i) => i.analysis_status)).toEqual(['analyzed']);
    // A recheck of an image Anchore still holds reads it and adds nothing.
    sim.clearRequests();
    c.recheck(`admin|${d('nginx')}`);
    await until(() => sim.requests({ method: 'GET', path: `/v2/images/${d('nginx')}` }).length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
  });
});

describe('ImageController: images deleted from Anchore, noticed by the list refresh (fake clock)', () => {
  const REFRESH_MS = 300_000;
  const key = `admin|${d('nginx')}`;
  let anchore: FakeAnchore;
  /** Digests registered, in order. */
  const adds = (): Array<string | undefined> => anchore.callsOf('addImage').map((c) => c.subject);
  let stores: MemoryStores;
  let catalog: ImageCatalog;
  let images: AnchoreImages;
  let cache: EvaluationCache;
  let c: ImageController;
  let finals: string[];
  let vanished: string[];

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    // Anchore in memory (one account): analysis takes 2 s of fake time; every image fails the policy.
    anchore = new FakeAnchore();
    anchore.analysisMs = 2000;
    for (const name of ['nginx', 'redis']) anchore.verdicts.set(d(name), { status: 'fail', final_action: 'stop', number_of_findings: 1 });
    stores = memoryStores();
    stores.namespaces.put(aNamespace('shop'));
    catalog = new ImageCatalog();
    images = new AnchoreImages({ anchore, catalog, refreshMs: REFRESH_MS, clock: systemClock, log });
    cache = new EvaluationCache(anchore, 4);
    // As the composition root wires it (src/operator.ts).
    catalog.onVanished((v) => cache.forgetImage(v.account, v.digests));
    c = new ImageController({
      stores,
      catalog,
      anchoreImages: images,
      scope: new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] }),
      anchore,
      clusterName: 'c1',
      workers: 2,
      analysisPollMaxMs: 1000,
      log,
      metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
    });
    finals = [];
    vanished = [];
    c.onAnalysisFinal((k) => finals.push(k));
    c.onVanished((k) => vanished.push(k));
  });
  afterEach(async () => {
    images.stop();
    const down = c.queue.shutdown(1000);
    await jest.advanceTimersByTimeAsync(1000);
    await down;
    jest.useRealTimers();
  });

  /** A pod runs nginx; it is registered, analysed, and one policy evaluation of it is cached. */
  async function runningAndEvaluated(): Promise<void> {
    stores.pods.put(aPod('shop', 'web', [aContainer('web', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    images.start();
    await jest.advanceTimersByTimeAsync(5000);
    expect(finals).toEqual([key]);
    expect(adds()).toEqual([d('nginx')]);
    await cache.check('admin', 'default', d('nginx'), 'docker.io/library/nginx:1.25', 3_600_000);
    expect(cache.peekCheck('admin', 'default', d('nginx'), 'docker.io/library/nginx:1.25', 3_600_000)?.final_action).toBe('stop');
  }

  it('when an image is deleted from Anchore, then the next list refresh forgets it and its evaluations, and it is registered again and followed to analyzed', async () => {
    await runningAndEvaluated();
    anchore.deleteImage('admin', d('nginx')); // deleted in Anchore (an admin, or a restored database)
    // The refresh is due 300 s after start; the deletion happened 5 s in.
    await jest.advanceTimersByTimeAsync(REFRESH_MS - 5000);
    expect(vanished).toEqual([key]);
    // Forgotten: no verdict of the deleted image is served any more, to bindings or admission.
    expect(cache.peekCheck('admin', 'default', d('nginx'), 'docker.io/library/nginx:1.25', 3_600_000)).toBeUndefined();
    // Registered again at once (an urgent key), and said to be until analysed.
    expect(adds()).toEqual([d('nginx'), d('nginx')]);
    expect(c.reRegistering(key)).toBe(true);
    expect(c.catalog(key)?.analysis).toBe('not_analyzed');
    await jest.advanceTimersByTimeAsync(5000);
    expect(finals).toEqual([key, key]);
    expect(c.reRegistering(key)).toBe(false);
    expect(c.catalog(key)?.analysis).toBe('analyzed');
    // The next evaluation asks Anchore afresh.
    const checks = anchore.callsOf('checkImage').length;
    await cache.check('admin', 'default', d('nginx'), 'docker.io/library/nginx:1.25', 3_600_000);
    expect(anchore.callsOf('checkImage')).toHaveLength(checks + 1);
    // The refresh after that finds it listed: nothing more happens.
    await jest.advanceTimersByTimeAsync(REFRESH_MS);
    expect(vanished).toEqual([key]);
    expect(adds()).toHaveLength(2);
  });

  it('when the list call fails (an outage), then nothing is taken as deleted', async () => {
    await runningAndEvaluated();
    anchore.down('listImages');
    await jest.advanceTimersByTimeAsync(REFRESH_MS);
    expect(anchore.callsOf('listImages').length).toBeGreaterThanOrEqual(2);
    expect(vanished).toEqual([]);
    expect(c.catalog(key)?.analysis).toBe('analyzed');
    expect(cache.peekCheck('admin', 'default', d('nginx'), 'docker.io/library/nginx:1.25', 3_600_000)).toBeDefined();
    expect(adds()).toHaveLength(1);
  });

  it('when an image is registered while a list call is on its way, then that list (which predates it) does not make it vanish', async () => {
    stores.pods.put(aPod('shop', 'web', [aContainer('web', 'nginx:1.25', { digest: d('nginx') })]));
    c.start();
    images.start();
    await jest.advanceTimersByTimeAsync(5000);
    // A slow list: its answer is what Anchore held before the next image was added.
    const held = [...(anchore.images.get('admin')?.values() ?? [])].map((i) => structuredClone(i));
    let answer: (v: AnchoreImage[]) => void = () => undefined;
    anchore.listImages = () => new Promise<AnchoreImage[]>((r) => (answer = r));
    await jest.advanceTimersByTimeAsync(REFRESH_MS - 5000);
    stores.pods.put(aPod('shop', 'redis', [aContainer('redis', 'redis:7', { digest: d('redis'), repo: 'docker.io/library/redis' })]));
    await jest.advanceTimersByTimeAsync(100);
    expect(adds()).toEqual([d('nginx'), d('redis')]);
    answer(held);
    await jest.advanceTimersByTimeAsync(5000);
    expect(vanished).toEqual([]);
    expect(adds()).toHaveLength(2);
    expect(c.catalog(`admin|${d('redis')}`)?.analysis).toBe('analyzed');
  });
});

describe('ImageController start-up pass', () => {
  it('when 20,000 pods were cached before start, then they are judged in short turns with the event loop free between them, every one of them, and a pod deleted meanwhile is not brought back', async () => {
    const stores = memoryStores();
    stores.namespaces.put(aNamespace('shop'));
    for (let i = 0; i < 20_000; i++) stores.pods.put(aPod('shop', `p-${i}`, [aContainer('c', `registry.example/app-${i % 2000}:1`, { digest: d(`app-${i % 2000}`) })]));
    const catalog = new ImageCatalog();
    const fake = new FakeAnchore();
    const c = new ImageController({
      stores,
      catalog,
      anchoreImages: new AnchoreImages({ anchore: fake, catalog, refreshMs: 60_000, clock: systemClock, log }),
      scope: new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] }),
      anchore: fake,
      clusterName: 'c1',
      workers: 1,
      analysisPollMaxMs: 100,
      log,
      metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
    });
    // The event loop's turns while the pass runs: a timer ticking every millisecond.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    c.start();
    // What start() judged before giving the event loop a turn: one short turn's worth, not all 20,000.
    const judgedAtOnce = c.workloadImages().size;
    stores.pods.remove('shop/p-19999');
    try {
      await until(() => c.running.size === 2000, 20_000);
      await until(() => [...c.workloadImages().values()].length === 19_999, 20_000);
    } finally {
      clearInterval(timer);
      await c.queue.shutdown(1000);
    }
    expect(judgedAtOnce).toBeGreaterThan(0);
    expect(judgedAtOnce).toBeLessThan(20_000);
    expect(ticks).toBeGreaterThan(0);
    expect(c.workloadImages().has('shop/Pod/p-19999')).toBe(false);
  });
});
