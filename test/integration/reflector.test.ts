import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeClient } from '../../src/kube/client.ts';
import { projectPod } from '../../src/kube/projections.ts';
import { Reflector } from '../../src/kube/reflector.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { apply, deployment, eventually, kubectl, namespaceManifest, testCluster, uniqueName, waitForRunningPods } from '../support/k8s.ts';

/* The informer machinery against the real apiserver: slim cache, gap recovery, periodic relist. */
const log = createLogger({ level: 'silent', pretty: false });

describe('Reflector (real apiserver)', () => {
  const ns = uniqueName('refl');
  let client: KubeClient;
  beforeAll(async () => {
    client = new KubeClient({ kubeconfig: testCluster().kubeconfig });
    await apply(namespaceManifest(ns));
  });
  afterAll(async () => {
    await client.close();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  function podReflector(extra: { relistIntervalMs?: number; restarts?: string[] } = {}) {
    return new Reflector({
      resource: 'pods',
      client,
      log,
      path: `/api/v1/namespaces/${ns}/pods`,
      fieldSelector: 'status.phase=Running',
      project: (r) => projectPod(r),
      pageSize: 2,
      ...(extra.relistIntervalMs ? { relistIntervalMs: extra.relistIntervalMs } : {}),
      metrics: { watchRestart: (_r, reason) => extra.restarts?.push(reason), event: () => undefined, listed: () => undefined },
    });
  }

  it('when pods come and go while watching, then the cache follows with slim objects (paged list, then watch)', async () => {
    await apply(deployment(ns, 'a', 3, [{ name: 'c', image: 'nginx:1.27' }]));
    await waitForRunningPods(ns, 'app=a', 3);
    const r = podReflector();
    const added: string[] = [];
    const deleted: string[] = [];
    r.on({ add: (p) => added.push(p.key), delete: (p) => deleted.push(p.key) });
    await r.start();
    expect(r.size).toBe(3); // listed in pages of 2
    const one = [...r.list()][0];
    expect(Object.keys(one ?? {}).sort()).toEqual(['containers', 'key', 'labels', 'name', 'namespace', 'nodeName', 'owner', 'resourceVersion', 'uid']);
    expect(one?.containers[0]?.imageID).toMatch(/@sha256:/);
    await kubectl(['scale', 'deployment', 'a', '-n', ns, '--replicas=1']);
    await eventually(() => r.size === 1, 15_000);
    expect(deleted).toHaveLength(2);
    r.stop();
  });

  it('when pods are deleted and created during a gap in watching, then the next list reports both (nothing lost)', async () => {
    const r = podReflector();
    const events: string[] = [];
    r.on({ add: (p) => events.push(`add ${p.key}`), delete: (p) => events.push(`delete ${p.key}`) });
    await r.start();
    const before = new Set([...r.list()].map((p) => p.key));
    r.stop();
    await kubectl(['delete', 'deployment', 'a', '-n', ns]);
    await apply(deployment(ns, 'b', 2, [{ name: 'c', image: 'redis:7.2' }]));
    await waitForRunningPods(ns, 'app=b', 2);
    await eventually(async () => (await kubectl(['get', 'pods', '-n', ns, '-l', 'app=a', '-o', 'name'])).trim() === '', 15_000);
    events.length = 0;
    await r.start();
    const after = [...r.list()].map((p) => p.key);
    expect(after.filter((k) => !k.startsWith(`${ns}/b-`))).toEqual([]);
    expect(
      events
        .filter((e) => e.startsWith('delete'))
        .map((e) => e.slice(7))
        .sort(),
    ).toEqual([...before].sort());
    expect(events.filter((e) => e.startsWith('add'))).toHaveLength(2);
    r.stop();
  });

  it('when the periodic relist runs, then it restarts the watch without inventing events', async () => {
    const restarts: string[] = [];
    const r = podReflector({ relistIntervalMs: 1000, restarts });
    const events: string[] = [];
    await r.start();
    r.on({ add: (p) => events.push(`add ${p.key}`), update: (_a, p) => events.push(`update ${p.key}`), delete: (p) => events.push(`delete ${p.key}`) });
    await eventually(() => restarts.filter((x) => x === 'relist').length >= 2, 10_000);
    // Changes keep flowing across relists (the watch resumes from each list's resourceVersion).
    await kubectl(['label', 'pods', '-n', ns, '-l', 'app=b', `touch=${Date.now()}`, '--overwrite']);
    await eventually(() => events.filter((e) => e.startsWith('update')).length >= 2, 10_000);
    await eventually(() => restarts.filter((x) => x === 'relist').length >= 3, 10_000);
    expect(r.size).toBe(2);
    r.stop();
    expect(events.filter((e) => e.startsWith('delete') || e.startsWith('add'))).toEqual([]);
  });
});
