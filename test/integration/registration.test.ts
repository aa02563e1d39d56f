import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { imagesSettled, inventoried } from '../support/looked.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';

/*
 * Discovery, registration and runtime inventory against a real apiserver (local control plane + kwok, or
 * USE_EXISTING_CLUSTER) and the Anchore simulator. Images are real public ones so the suite also runs on kind.
 */
describe('registration and inventory (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('reg');
  const excluded = uniqueName('skip');
  const cluster = uniqueName('it');

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 200 } } });
    await apply(namespaceManifest(ns));
    await apply(namespaceManifest(excluded, { 'anchore.io/scan': 'false' }));
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: cluster, NAMESPACE_LABEL_SELECTOR: 'anchore.io/scan!=false', NAMESPACES_INCLUDE: `${ns},${excluded}` }));
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, excluded, '--wait=false', '--ignore-not-found']);
  });

  const latestInventory = (): ReturnType<AnchoreSimulator['inventories']>[number] | undefined => {
    const all = sim.inventories('admin').filter((r) => r.body.cluster_name === cluster);
    return all[all.length - 1];
  };

  it('when a Deployment runs, then each unique image is registered exactly once within seconds of Running', async () => {
    const appliedAt = Date.now();
    await apply(
      deployment(ns, 'web', 3, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'cache', image: 'redis:7.2' },
      ]),
    );
    await apply(deployment(ns, 'worker', 2, [{ name: 'redis', image: 'redis:7.2' }]));
    const web = await waitForRunningPods(ns, 'app=web', 3);
    await waitForRunningPods(ns, 'app=worker', 2);
    const runningSeenAt = Date.now();
    const digests = new Set(web.flatMap((p) => p.containers.map((c) => digestOf(c.imageID))).filter((d): d is string => !!d));
    expect(digests.size).toBe(2);
    await eventually(() => [...digests].every((d) => sim.images('admin').some((i) => i.image_digest === d)), 10_000, 20);
    const posts = sim.requests({ method: 'POST', path: '/v2/images' });
    const registeredAt = Math.max(...[...digests].map((d) => posts.find((r) => JSON.stringify(r.body).includes(d))?.time ?? Infinity));
    // Upper bound: includes scheduling and kwok making the pods Running (~150 ms here).
    process.stdout.write(`[measure] kubectl apply → all images registered: ${registeredAt - appliedAt} ms (pods seen Running by the test after ${runningSeenAt - appliedAt} ms)\n`);
    expect(registeredAt - appliedAt).toBeLessThan(5000);
    for (const d of digests) {
      const forDigest = posts.filter((r) => JSON.stringify(r.body).includes(d));
      expect(forDigest).toHaveLength(1);
    }
    const nginxDigest = digestOf(web[0]?.containers.find((c) => c.name === 'nginx')?.imageID ?? '') ?? 'none';
    const nginxPost = posts.find((r) => JSON.stringify(r.body).includes(nginxDigest));
    expect(nginxPost?.body).toMatchObject({
      source: { digest: { tag: 'docker.io/library/nginx:1.27' } },
      annotations: { 'anchore-operator/cluster': cluster, 'anchore-operator/workload': `${ns}/Deployment/web` },
    });
    // Followed until analyzed: both running images, as anchore_operator_images says.
    await eventually(async () => sumOf(await scrape(operator.op.metricsPort), 'anchore_operator_images', { account: 'admin', analysis_status: 'analyzed' }) === digests.size, 10_000);
  });

  it('when pods run, then the inventory matches the cluster (namespaces, pods, containers, nodes)', async () => {
    const pods = [...(await waitForRunningPods(ns, 'app=web', 3)), ...(await waitForRunningPods(ns, 'app=worker', 2))];
    const inv = await eventually(() => {
      const r = latestInventory();
      const uids = new Set((r?.body.pods ?? []).map((p) => p.uid));
      return r && pods.every((p) => uids.has(p.uid)) ? r : undefined;
    }, 10_000);
    const body = { namespaces: inv.body.namespaces ?? [], pods: inv.body.pods ?? [], nodes: inv.body.nodes ?? [], containers: inv.body.containers ?? [] };
    const nsEntry = body.namespaces.find((n) => n.name === ns);
    expect(nsEntry).toBeDefined();
    for (const p of pods) {
      const ip = body.pods.find((x) => x.uid === p.uid);
      expect(ip?.namespace_uid).toBe(nsEntry?.uid);
      expect(body.nodes.some((n) => n.uid === ip?.node_uid)).toBe(true);
      for (const c of p.containers) {
        const ic = body.containers.find((x) => x.id === c.containerID);
        expect(ic).toMatchObject({ pod_uid: p.uid, name: c.name, image_digest: digestOf(c.imageID) });
        expect(ic?.image_tag).toMatch(/^docker\.io\/library\/(nginx:1\.27|redis:7\.2)$/);
      }
    }
  });

  it('when a namespace is excluded by label, then its pods are neither registered nor reported', async () => {
    await apply(deployment(excluded, 'hidden', 1, [{ name: 'bb', image: 'busybox:1.36', command: ['sleep', '3600'] }]));
    const [pod] = await waitForRunningPods(excluded, 'app=hidden', 1);
    const digest = digestOf(pod?.containers[0]?.imageID ?? '');
    // Evidence that the operator has looked since the hidden pod ran: a probe pod started after it, in a namespace in
    // scope, is in an inventory report (built from the pod cache after the probe's event, and debounced with any other
    // namespace that changed — the excluded one, were it wrongly in scope) and every image key it queued has run (an
    // image of the hidden pod would have been queued when its event was handled, before the probe's).
    await apply(deployment(ns, 'probe', 1, [{ name: 'nginx', image: 'nginx:1.27' }]));
    const [probe] = await waitForRunningPods(ns, 'app=probe', 1);
    await inventoried(sim, ns, (body) => (body.pods ?? []).some((p) => p.uid === probe?.uid), 20_000);
    await imagesSettled(operator.op.metricsPort, 0);
    await kubectl(['delete', 'deployment', 'probe', '-n', ns, '--wait=false']);
    expect(sim.images('admin').some((i) => i.image_digest === digest)).toBe(false);
    // No report at all (reports carry only the namespaces that changed, so the latest alone would prove little).
    const reports = sim.inventories('admin');
    expect(reports.some((r) => (r.body.namespaces ?? []).some((n) => n.name === excluded))).toBe(false);
    expect(reports.some((r) => (r.body.pods ?? []).some((p) => p.uid === pod?.uid))).toBe(false);
  });

  it('when a Deployment is deleted, then its pods leave the inventory', async () => {
    const pods = await waitForRunningPods(ns, 'app=worker', 2);
    await kubectl(['delete', 'deployment', 'worker', '-n', ns, '--wait=false']);
    const t0 = Date.now();
    await eventually(() => {
      const uids = new Set((latestInventory()?.body.pods ?? []).map((p) => p.uid));
      return pods.every((p) => !uids.has(p.uid));
    }, 20_000);
    process.stdout.write(`[measure] deployment deleted → pods gone from inventory: ${Date.now() - t0} ms\n`);
  });

  it('when the operator restarts, then it re-adds nothing and reports again', async () => {
    await operator.stop();
    sim.clearRequests();
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: cluster, NAMESPACE_LABEL_SELECTOR: 'anchore.io/scan!=false', NAMESPACES_INCLUDE: `${ns},${excluded}` }));
    await eventually(() => sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' }).length > 0, 10_000);
    // The image list is read on first need, independently of the inventory report: wait for it, then until every
    // running image (nginx and redis, of web) has been reconciled and no image key is queued, ready or delayed.
    const op = operator;
    await eventually(() => op.logs.join('').includes('learned the images Anchore already holds'), 10_000, 100);
    await imagesSettled(op.op.metricsPort, 2);
    expect(sim.requests({ method: 'POST', path: '/v2/images' })).toHaveLength(0);
    expect(sim.requests({ method: 'GET', path: '/v2/images' })).toHaveLength(1);
  });

  it('when registered as an integration, then Anchore has the registration and a health report', async () => {
    await eventually(() => sim.integrations().some((i) => JSON.stringify(i).includes(cluster)), 10_000);
    await eventually(() => sim.requests({ method: 'POST', path: /health-report$/ }).some((r) => r.status === 201), 10_000).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; health reports: ${JSON.stringify(sim.requests({ method: 'POST', path: /health-report$/ }).map((r) => [r.status, r.body]))}; violations ${JSON.stringify(sim.contractViolations())}`,
      );
    });
  });
});
