import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf, valueOf } from '../support/prometheus.ts';

/*
 * Issue 26, item 3: memory that follows the operator's scope, not the cluster. The pod cache keeps only pods of
 * namespaces in scope (NAMESPACES_INCLUDE and NAMESPACE_LABEL_SELECTOR here), whatever else runs; a namespace
 * relabelled into scope gets its pods listed (and their images registered), relabelled out they are dropped. Observed
 * through anchore_operator_watch_cached_objects{resource="pods"}, the cache's own size.
 */
const LABEL = 'pod-scope-test';
const IN = { [LABEL]: 'in' };
const OUT_OF_SCOPE_PODS = 60;
const OUTSIDE_INCLUDE_PODS = 40;

describe('pod cache kept to the scope (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator | undefined;
  const prefix = uniqueName('podscope');
  const inScope = `${prefix}-a`;
  const relabelled = `${prefix}-b`;
  const later = `${prefix}-c`;
  // Labelled "in", but outside NAMESPACES_INCLUDE: the name filter narrows too.
  const outside = uniqueName('podscope-x');
  // Images of their own, so a registration in Anchore says which namespace's pods the operator followed.
  const image = (ns: string, app: string): string => `registry.example.com/${ns}/${app}:1.0`;

  const cachedPods = async (): Promise<number | undefined> => valueOf(await scrape(operator!.op.metricsPort), 'anchore_operator_watch_cached_objects', { resource: 'pods' });
  /** Distinct running images the operator knows of, from its cached pods (each namespace here runs an image of its own). */
  const runningImages = async (): Promise<number> => sumOf(await scrape(operator!.op.metricsPort), 'anchore_operator_images');
  const registered = (digests: Array<string | undefined>): boolean => digests.every((d) => d !== undefined && sim.images('admin').some((i) => i.image_digest === d));
  const digestsOf = (pods: Awaited<ReturnType<typeof waitForRunningPods>>): Array<string | undefined> => [...new Set(pods.flatMap((p) => p.containers.map((c) => digestOf(c.imageID))))];

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 200 } } });
    await apply(namespaceManifest(inScope, IN));
    await apply(namespaceManifest(relabelled));
    await apply(namespaceManifest(outside, IN));
    await apply(deployment(inScope, 'app', 3, [{ name: 'c', image: image(inScope, 'app') }]));
    await apply(deployment(relabelled, 'many', OUT_OF_SCOPE_PODS, [{ name: 'c', image: image(relabelled, 'many') }]));
    await apply(deployment(outside, 'many', OUTSIDE_INCLUDE_PODS, [{ name: 'c', image: image(outside, 'many') }]));
    await waitForRunningPods(inScope, 'app=app', 3);
    await waitForRunningPods(relabelled, 'app=many', OUT_OF_SCOPE_PODS);
    await waitForRunningPods(outside, 'app=many', OUTSIDE_INCLUDE_PODS);
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: prefix, NAMESPACES_INCLUDE: `${prefix}-*`, NAMESPACE_LABEL_SELECTOR: `${LABEL}=in` }));
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', inScope, relabelled, later, outside, '--wait=false', '--ignore-not-found']);
  });

  it('when the cluster runs many pods outside the scope, then the pod cache holds only the pods in scope, also as more start elsewhere', async () => {
    const runningInCluster = (await kubectl(['get', 'pods', '-A', '--field-selector=status.phase=Running', '-o', 'name'])).split('\n').filter(Boolean).length;
    expect(runningInCluster).toBeGreaterThanOrEqual(3 + OUT_OF_SCOPE_PODS + OUTSIDE_INCLUDE_PODS);
    expect(await cachedPods()).toBe(3);
    // Those three are the in-scope ones: of the three namespaces' images, only the in-scope one runs as far as it knows.
    expect(await runningImages()).toBe(1);
    // More pods out of scope, then one in scope: the watch delivers them in order, so once the in-scope one is cached
    // the 20 before it have been seen and left out.
    await kubectl(['scale', 'deployment', 'many', '-n', relabelled, `--replicas=${OUT_OF_SCOPE_PODS + 20}`]);
    await waitForRunningPods(relabelled, 'app=many', OUT_OF_SCOPE_PODS + 20);
    await kubectl(['scale', 'deployment', 'app', '-n', inScope, '--replicas=4']);
    await waitForRunningPods(inScope, 'app=app', 4);
    await eventually(async () => (await cachedPods()) === 4, 15_000);
    expect(await runningImages()).toBe(1);
  });

  it('when a namespace is relabelled into the scope, then its Running pods are cached and their images registered; relabelled out, they are dropped', async () => {
    const pods = await waitForRunningPods(relabelled, 'app=many', OUT_OF_SCOPE_PODS + 20);
    const digests = digestsOf(pods);
    expect(registered(digests)).toBe(false);
    await kubectl(['label', 'namespace', relabelled, `${LABEL}=in`]);
    await eventually(async () => (await cachedPods()) === 4 + OUT_OF_SCOPE_PODS + 20, 15_000);
    await eventually(() => registered(digests), 15_000);
    // Brought by one list of that namespace (not a relist of the cluster).
    expect(operator!.logs.some((l) => l.includes('namespace entered the scope: listed') && l.includes(`"namespace":"${relabelled}"`))).toBe(true);
    await kubectl(['label', 'namespace', relabelled, `${LABEL}-`]);
    await eventually(async () => (await cachedPods()) === 4, 15_000);
    // The relabelled namespace's pods are the ones dropped: its image no longer runs as far as the operator knows.
    await eventually(async () => (await runningImages()) === 1, 15_000);
  });

  // A pod event that overtakes its namespace's (two watch streams) is played deterministically in
  // src/kube/namespace-scope.test.ts; here the whole path runs against the apiserver.
  it('when a namespace is created in scope together with its workload, then all its pods are cached and registered, and dropped when it is deleted', async () => {
    const items = [namespaceManifest(later, IN), deployment(later, 'burst', 10, [{ name: 'c', image: image(later, 'burst') }])].map((m) => JSON.parse(m) as unknown);
    await kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    const pods = await waitForRunningPods(later, 'app=burst', 10);
    await eventually(async () => (await cachedPods()) === 4 + 10, 15_000);
    await eventually(() => registered(digestsOf(pods)), 15_000);
    // Deleting the namespace drops what is left of its pods.
    await kubectl(['delete', 'namespace', later, '--wait=false']);
    await eventually(async () => (await cachedPods()) === 4, 30_000);
  });
});
