import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aPod, hex64, memoryStores, type MemoryStores } from '../testing/factories.ts';
import { ImageController } from './image.controller.ts';
import { Scope } from './scope.ts';

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

  function controller(final?: (key: string) => void, extra: Partial<ConstructorParameters<typeof Scope>[0]> = {}): ImageController {
    const c = new ImageController({
      stores,
      scope: new Scope({ namespaces: { exclude: ['kube-system'] }, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [], ...extra }),
      anchore,
      clusterName: 'c1',
      workers: 4,
      analysisPollMaxMs: 100,
      log,
      metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
      ...(final ? { onAnalysisFinal: final } : {}),
    });
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
    stores.pods.put(aPod('shop', 'a', [aContainer('a', 'alpine:3.20')]));
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
});
