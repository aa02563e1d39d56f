import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ADMIN_ACCOUNT, type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, namespaceManifest, runningPods, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { MARKER_PREFIX, evaluatedSince, eventsFlushed, imagesSettled, inventoried, reconciledAgain, reconciledForeign, touchNamespace } from '../support/looked.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf, valueOf } from '../support/prometheus.ts';

/*
 * Issue 14: what a demanding admin meets in real clusters — restarts, images deleted from Anchore, policies deleted
 * and restored, forced re-evaluations that meet an outage — against the real apiserver, the simulator as Anchore.
 */

interface Binding {
  metadata: { resourceVersion: string; generation: number };
  status?: {
    observedGeneration?: number;
    account?: string;
    conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
    summary?: Record<string, number>;
    results?: Array<{ image: string; digest?: string; result: string; reason?: string; message?: string; workloads?: string[] }>;
  };
}
interface KubeEvent {
  metadata: { name: string; resourceVersion: string };
  reason: string;
  type: string;
  note: string;
  regarding: { kind: string; name: string };
  series?: { count: number };
}

const apb = (ns: string, name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name, namespace: ns }, spec });
const cond = (b: Binding, type: string) => b.status?.conditions?.find((c) => c.type === type);
const getApb = (ns: string, name: string) => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
const events = async (ns: string): Promise<KubeEvent[]> => (await getJson<{ items: KubeEvent[] }>(['events.events.k8s.io', '-n', ns])).items;
/** The namespace's Events without the markers eventsFlushed created. */
const eventsBut = async (ns: string): Promise<KubeEvent[]> => (await events(ns)).filter((e) => !e.regarding.name.startsWith(MARKER_PREFIX));
/** Distinct images running in the namespace (by digest, else by tag): what a fresh operator reconciles once each. */
const runningImages = async (ns: string): Promise<number> => new Set((await runningPods(ns)).flatMap((p) => p.containers.map((c) => digestOf(c.imageID) ?? c.image))).size;
const kubeEvents = async (op: TestOperator, result: string): Promise<number> => sumOf(await scrape(op.op.metricsPort), 'anchore_operator_kube_events_total', { result });
const ready = (ns: string, name: string, timeoutMs = 30_000) =>
  eventually(
    async () => {
      const b = await getApb(ns, name);
      return cond(b, 'Ready')?.status === 'True' && b.status?.observedGeneration === b.metadata.generation ? b : undefined;
    },
    timeoutMs,
    200,
  );

describe('real-world correctness (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator | undefined;
  const ns = uniqueName('rw');
  const digests: Record<string, string> = {};
  const env = () => operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('rw'), NAMESPACES_INCLUDE: ns });

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 50, analyzing_ms: 150 },
        policies: {
          admin: [
            { policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true },
            { policy_id: 'strict', name: 'Strict' },
          ],
        },
      },
    });
    await apply(namespaceManifest(ns));
    await apply(
      deployment(ns, 'web', 2, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'sidecar', image: 'envoyproxy/envoy:v1.31.0' },
      ]),
    );
    for (const p of await waitForRunningPods(ns, 'app=web', 2)) for (const c of p.containers) digests[c.name] = digestOf(c.imageID) ?? '';
    sim.setVerdict(digests['nginx'] as string, { status: 'pass', final_action: 'go' });
    sim.setVerdict(digests['sidecar'] as string, { status: 'fail', final_action: 'stop', findings: 2 });
    operator = await startTestOperator(env());
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the operator restarts, then no binding is rewritten and no Event is announced again', async () => {
    await apply(apb(ns, 'steady', { podSelector: { matchLabels: { app: 'web' } } }));
    await apply(apb(ns, 'steady-strict', { podSelector: { matchLabels: { app: 'web' } }, policyId: 'strict' }));
    const before = [await ready(ns, 'steady'), await ready(ns, 'steady-strict')];
    expect(cond(before[0] as Binding, 'Compliant')?.reason).toBe('PolicyFailed');
    // The verdict Events of the first run have been recorded.
    await eventually(async () => (await events(ns)).some((e) => e.reason === 'AnchorePolicyFailed' && e.regarding.name === 'web'), 10_000);
    // …and so have both bindings' own verdict Events (they go through the Event rate limit too): a baseline taken while
    // one is still in flight would blame the restart for it.
    await eventually(
      async () => {
        const list = await events(ns);
        return ['steady', 'steady-strict'].every((n) => list.some((e) => e.regarding.kind === 'AnchorePolicyBinding' && e.regarding.name === n));
      },
      10_000,
      250,
    );
    // Baseline once every Event the first process recorded has been written (not after a quiet spell).
    await eventsFlushed(ns);
    const eventsBefore = (await eventsBut(ns)).map((e) => `${e.metadata.name}@${e.metadata.resourceVersion}`).sort();

    await operator?.stop();
    // A slow image list (a big account) widens the window in which bindings were judged against an empty catalog.
    sim.setFaults([{ method: 'GET', path: /^\/v2\/images$/, latencyMs: 1500 }]);
    sim.clearRequests();
    operator = await startTestOperator(env());
    const op = operator;
    const bindings = [
      { namespace: ns, name: 'steady' },
      { namespace: ns, name: 'steady-strict' },
    ];
    // Both bindings evaluated by the new process (it asked Anchore for their verdicts again).
    await evaluatedSince(op, bindings, 0);
    expect(sim.requests({ path: /\/check$/ }).length).toBeGreaterThan(0);
    // Then it looked again: both bindings evaluated once more after a namespace change (as a pod event would make
    // it), every running image reconciled by the new process with nothing left queued, and every Event written.
    await evaluatedSince(op, bindings, await touchNamespace(ns));
    await imagesSettled(op.op.metricsPort, await runningImages(ns));
    await eventsFlushed(ns);
    sim.clearFaults();
    const after = [await getApb(ns, 'steady'), await getApb(ns, 'steady-strict')];
    expect(after.map((b) => b.metadata.resourceVersion)).toEqual(before.map((b) => b.metadata.resourceVersion));
    expect(after.map((b) => cond(b, 'Ready')?.lastTransitionTime)).toEqual(before.map((b) => cond(b, 'Ready')?.lastTransitionTime));
    expect((await eventsBut(ns)).map((e) => `${e.metadata.name}@${e.metadata.resourceVersion}`).sort()).toEqual(eventsBefore);
    // The new process wrote one Event, the marker's.
    expect(await eventually(() => kubeEvents(op, 'sent'), 10_000, 100)).toBe(1);
    // And nothing Anchore already held was added again.
    expect(sim.requests({ method: 'POST', path: /^\/v2\/images$/ })).toHaveLength(0);
  });

  it('when 14 workloads run a failing image, then every one gets AnchorePolicyFailed, the binding an aggregate, and a restart repeats none', async () => {
    const names = Array.from({ length: 14 }, (_, i) => `many-${String(i).padStart(2, '0')}`);
    for (const n of names) await apply(deployment(ns, n, 1, [{ name: 'envoy', image: 'envoyproxy/envoy:v1.31.0' }]));
    for (const n of names) await waitForRunningPods(ns, `app=${n}`, 1);
    await apply(apb(ns, 'many', { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: names }] } }));
    const b = await ready(ns, 'many');
    expect(b.status?.summary).toMatchObject({ workloads: 14, images: 1, failed: 1 });
    const told = await eventually(
      async () => {
        const list = (await events(ns)).filter((e) => e.reason === 'AnchorePolicyFailed' && names.includes(e.regarding.name));
        return new Set(list.map((e) => e.regarding.name)).size === names.length ? list : undefined;
      },
      20_000,
      250,
    );
    expect(told.every((e) => e.note.includes('binding') && e.note.includes('envoyproxy/envoy:v1.31.0'))).toBe(true);
    const aggregate = await eventually(async () => (await events(ns)).find((e) => e.reason === 'WorkloadsFailingPolicy' && e.regarding.name === 'many'), 10_000, 250);
    expect(aggregate.note).toContain('14 workload(s) newly fail');
    await eventually(async () => (await events(ns)).some((e) => e.regarding.kind === 'AnchorePolicyBinding' && e.regarding.name === 'many'), 10_000, 250);
    const many = [{ namespace: ns, name: 'many' }];
    await evaluatedSince(operator as TestOperator, many, await touchNamespace(ns));
    await eventsFlushed(ns);
    const standing = (await eventsBut(ns)).map((e) => e.metadata.name).sort();
    // The status names only some of the 14 workloads (its list is bounded, its last entry "… and N more"); the others
    // are known to a new process only from their standing Events.
    const named = new Set((await getApb(ns, 'many')).status?.results?.flatMap((r) => r.workloads ?? []).filter((w) => !w.startsWith('…')));
    expect(named.size).toBeLessThan(names.length);

    // A restart: the Events of the workloads the status leaves out stand and are not repeated.
    await operator?.stop();
    operator = await startTestOperator(env());
    const op = operator;
    await evaluatedSince(op, many, 0);
    // Looked again (evaluated once more after a namespace change), and every Event it recorded written.
    await evaluatedSince(op, many, await touchNamespace(ns));
    await eventsFlushed(ns);
    expect((await eventsBut(ns)).map((e) => e.metadata.name).sort()).toEqual(standing);
    expect(op.logs.join('')).toContain('learned the Kubernetes Events already recorded');
    // The workloads the status leaves out were found failing again: their standing Events were recognised, not
    // repeated; the one Event this process wrote is the marker's.
    expect(await kubeEvents(op, 'suppressed')).toBe(names.length - named.size);
    expect(await eventually(() => kubeEvents(op, 'sent'), 10_000, 100)).toBe(1);
  }, 120_000);

  it('when two installs with different namespace scopes see one cluster binding, then one owns it, the other leaves it alone, and an annotation hands it over', async () => {
    const nsB = uniqueName('rwb');
    const capb = uniqueName('shared');
    await apply(namespaceManifest(nsB));
    let other: TestOperator | undefined;
    try {
      await apply(deployment(nsB, 'cache', 1, [{ name: 'redis', image: 'redis:7.4' }]));
      await waitForRunningPods(nsB, 'app=cache', 1);
      const getCapb = () => getJson<Binding & { status?: { install?: string } }>(['clusteranchorepolicybinding', capb]);
      const installA = `it/${ns}`;
      const installB = `it/${nsB}`;
      // The suite's operator (scope: ns) is install A; a second install watches only nsB.
      await operator?.stop();
      operator = await startTestOperator({ ...env(), INSTALL_ID: installA });
      // Named for install A from the start: the test cluster is shared (the demo, other suites' operators, a user's
      // install on kind may run), and any install claims an unowned cluster binding first come, first served.
      await apply(
        JSON.stringify({
          apiVersion: 'anchore.io/v1alpha1',
          kind: 'ClusterAnchorePolicyBinding',
          metadata: { name: capb, annotations: { 'anchore.io/install': installA } },
          spec: { namespaces: [ns, nsB] },
        }),
      );
      const owned = await eventually(
        async () => {
          const b = await getCapb();
          return cond(b, 'Ready')?.status === 'True' ? b : undefined;
        },
        30_000,
        200,
      );
      expect(owned.status?.install).toBe(installA);
      const imagesA = owned.status?.summary?.['images'];
      other = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('rwb'), NAMESPACES_INCLUDE: nsB, INSTALL_ID: installB }));
      const b2 = other;
      await eventually(() => b2.logs.join('').includes('another install owns this cluster binding'), 15_000, 100);
      // Pod churn in B's namespace wakes B's reconciles: still, B never writes.
      await apply(deployment(nsB, 'cache2', 1, [{ name: 'redis', image: 'redis:7.4' }]));
      await waitForRunningPods(nsB, 'app=cache2', 1);
      // Both look at it again: a forced re-evaluation, asked only if nobody wrote the binding since A's status (the
      // apiserver refuses the annotation otherwise). A evaluates it again; B reconciles it and leaves it.
      let poked = '';
      const at = Date.now();
      await reconciledForeign(b2, async () => {
        poked = await kubectl([
          'annotate',
          'clusteranchorepolicybinding',
          capb,
          'anchore.io/reevaluate=rw-1',
          `--resource-version=${owned.metadata.resourceVersion}`,
          '-o',
          'jsonpath={.metadata.resourceVersion}',
        ]);
      });
      await evaluatedSince(operator, [{ name: capb }], at);
      const still = await getCapb();
      expect(still.metadata.resourceVersion).toBe(poked);
      expect(still.status).toEqual(owned.status);

      // Handover: the annotation names B. A lets go; B claims it and reports its own namespaces.
      await kubectl(['annotate', 'clusteranchorepolicybinding', capb, `anchore.io/install=${installB}`, '--overwrite']);
      const handed = await eventually(
        async () => {
          const b = await getCapb();
          return b.status?.install === installB && cond(b, 'Ready')?.status === 'True' ? b : undefined;
        },
        20_000,
        200,
      );
      expect(handed.status?.summary?.['images']).toBe(1);
      expect(handed.status?.summary?.['images']).not.toBe(imagesA);
      // A has reconciled it since the handover and let go (the reconcile that says so follows all its earlier ones of
      // this binding); B evaluates it again after a change in its namespace.
      const a = operator;
      await eventually(() => a.logs.some((l) => l.includes('another install owns this cluster binding') && l.includes(`"name":"${capb}"`)), 15_000, 100);
      await evaluatedSince(b2, [{ name: capb }], await touchNamespace(nsB));
      const settled = await getCapb();
      expect(settled.metadata.resourceVersion).toBe(handed.metadata.resourceVersion);
      expect(settled.status?.install).toBe(installB);
    } finally {
      await other?.stop();
      await kubectl(['delete', 'clusteranchorepolicybinding', capb, '--ignore-not-found', '--wait=false']);
      await kubectl(['delete', 'namespace', nsB, '--wait=false', '--ignore-not-found']);
    }
  }, 120_000);

  it("when a namespace's account label is mistyped, then its inventory still lands, its binding and the namespace say why, and fixing the label recovers at once", async () => {
    const nsT = uniqueName('rwt');
    const teamSim = await startSimulator({
      config: {
        analysis: { queued_ms: 20, analyzing_ms: 50 },
        accounts: [
          { name: 'admin', users: [{ username: 'admin', password: 'foobar' }] },
          { name: 'team-a', users: [] },
        ],
        policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }], 'team-a': [{ policy_id: 'team-policy', name: 'Team policy', active: true }] },
      },
    });
    let team: TestOperator | undefined;
    try {
      await apply(namespaceManifest(nsT, { 'anchore.io/account': 'tema-a' }));
      await apply(deployment(nsT, 'svc', 1, [{ name: 'nginx', image: 'nginx:1.27' }]));
      await waitForRunningPods(nsT, 'app=svc', 1);
      team = await startTestOperator(operatorEnv(teamSim.url, { CLUSTER_NAME: uniqueName('rwt'), NAMESPACES_INCLUDE: nsT, ACCOUNT_NAMESPACE_LABEL: 'anchore.io/account' }));
      const t = team;
      await apply(apb(nsT, 'team', { podSelector: { matchLabels: { app: 'svc' } } }));
      const stalled = await eventually(
        async () => {
          const b = await getApb(nsT, 'team');
          return cond(b, 'Stalled')?.reason === 'AccountNotFound' ? b : undefined;
        },
        20_000,
        200,
      );
      expect(cond(stalled, 'Ready')?.message).toContain(`Anchore account "tema-a" does not exist (namespace ${nsT} names it in its label anchore.io/account)`);
      // The namespace's inventory is not lost: it lands in the default account meanwhile.
      await eventually(() => teamSim.inventories('admin').some((r) => r.body.namespaces?.some((n) => n.name === nsT)), 20_000, 200);
      // The namespace itself is told (cluster-scoped: its Event is in namespace default), and a gauge counts it.
      const nsEvent = await eventually(async () => (await events('default')).find((e) => e.reason === 'AnchoreAccountNotFound' && e.regarding.name === nsT), 15_000, 200);
      expect(nsEvent.regarding.kind).toBe('Namespace');
      expect(valueOf(await scrape(t.op.metricsPort), 'anchore_operator_namespaces_account_missing', { account: 'tema-a' })).toBe(1);

      // The label is fixed: the binding recovers at once (not at its 5-minute recheck), and the inventory goes to team-a.
      const t0 = Date.now();
      await kubectl(['label', 'namespace', nsT, 'anchore.io/account=team-a', '--overwrite']);
      const fixed = await ready(nsT, 'team', 20_000);
      const recovered = Date.now() - t0;
      expect(fixed.status?.account).toBe('team-a');
      await eventually(() => teamSim.inventories('team-a').some((r) => r.body.namespaces?.some((n) => n.name === nsT)), 40_000, 200);
      process.stdout.write(`[measure] account label fixed → binding Ready: ${recovered} ms\n`);
      expect(recovered).toBeLessThan(15_000);
    } finally {
      await team?.stop();
      await teamSim.stop();
      await kubectl(['delete', 'namespace', nsT, '--wait=false', '--ignore-not-found']);
    }
  }, 120_000);

  it('when one digest runs under two tags, then both tags are added to Anchore and each is checked by the binding', async () => {
    const digest = `sha256:${'1a'.repeat(32)}`;
    for (const [name, image] of [
      ['tag-a', 'nginx:1.27.3'],
      ['tag-b', 'nginx:stable'],
    ] as const) {
      const d = JSON.parse(deployment(ns, name, 1, [{ name: 'nginx', image }]));
      d.spec.template.metadata.annotations = { 'image-digest.kwok.anchore.local/nginx': digest };
      await apply(JSON.stringify(d));
    }
    await waitForRunningPods(ns, 'app=tag-a', 1);
    await waitForRunningPods(ns, 'app=tag-b', 1);
    await apply(apb(ns, 'tags', { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['tag-a', 'tag-b'] }] } }));
    const b = await ready(ns, 'tags');
    expect(b.status?.results?.map((r) => `${r.image}@${r.digest}`).sort()).toEqual([`docker.io/library/nginx:1.27.3@${digest}`, `docker.io/library/nginx:stable@${digest}`]);
    const img = await eventually(() => sim.images(ADMIN_ACCOUNT).find((i) => i.image_digest === digest && i.image_detail.length === 2), 10_000, 100);
    expect(img.image_detail.map((d) => d.full_tag).sort()).toEqual(['docker.io/library/nginx:1.27.3', 'docker.io/library/nginx:stable']);
    const checkedTags = new Set(sim.requests({ path: new RegExp(`/v2/images/${digest}/check$`) }).map((r) => r.query['tag']));
    expect([...checkedTags].sort()).toEqual(['docker.io/library/nginx:1.27.3', 'docker.io/library/nginx:stable']);
  });

  it('when a multi-arch image is registered and the operator restarts, then it is not added again', async () => {
    const index = `sha256:${'2b'.repeat(32)}`;
    const platform = `sha256:${'3c'.repeat(32)}`;
    sim.config.manifest_lists[index] = platform;
    const d = JSON.parse(deployment(ns, 'multiarch', 1, [{ name: 'app', image: 'ghcr.io/example/multiarch:1.0' }]));
    d.spec.template.metadata.annotations = { 'image-digest.kwok.anchore.local/app': index };
    await apply(JSON.stringify(d));
    await waitForRunningPods(ns, 'app=multiarch', 1);
    // Anchore keeps it under the platform digest, the manifest list's digest as parent_digest.
    const stored = await eventually(() => sim.images(ADMIN_ACCOUNT).find((i) => i.parent_digest === index), 20_000, 100);
    expect(stored.image_digest).toBe(platform);
    await operator?.stop();
    sim.clearRequests();
    operator = await startTestOperator(env());
    const op = operator;
    await eventually(() => op.logs.join('').includes('learned the images Anchore already holds'), 20_000, 100);
    // Every running image reconciled by the new process, and nothing left in its image queue.
    await imagesSettled(op.op.metricsPort, await runningImages(ns));
    expect(sim.requests({ method: 'POST', path: /^\/v2\/images$/ }).map((r) => JSON.stringify(r.body))).toEqual([]);
  });

  it('when pods of an image still in analysis churn, then Anchore is polled on the backoff, not on every pod event', async () => {
    sim.config.analysis.queued_ms = 60_000;
    try {
      await apply(deployment(ns, 'churn', 1, [{ name: 'app', image: 'ghcr.io/example/slow-analysis:1.0' }]));
      const [pod] = await waitForRunningPods(ns, 'app=churn', 1);
      const digest = digestOf(pod?.containers[0]?.imageID ?? '') as string;
      await eventually(() => sim.images(ADMIN_ACCOUNT).some((i) => i.image_digest === digest), 10_000, 100);
      const t0 = Date.now();
      for (const replicas of [8, 1, 8, 1, 8]) {
        await kubectl(['scale', 'deployment', 'churn', '-n', ns, `--replicas=${replicas}`]);
        // The step is done when the operator's runtime inventory lists that many of the image's containers: it has
        // handled the pod events up to there.
        await inventoried(sim, ns, (body) => (body.containers ?? []).filter((c) => c.image_digest === digest).length === replicas);
      }
      // A poll brought forward by a pod event is queued as that event is handled, before the (debounced) inventory
      // that follows it: none may still wait in the image queue.
      const op = operator as TestOperator;
      await eventually(async () => sumOf(await scrape(op.op.metricsPort), 'anchore_operator_workqueue_depth', { queue: 'image', state: 'ready' }) === 0, 10_000, 50);
      const elapsed = Date.now() - t0;
      const polls = sim.requests({ method: 'GET', path: `/v2/images/${digest}` }).filter((r) => r.time >= t0).length;
      process.stdout.write(`[measure] ${elapsed} ms of pod churn on an image in analysis: ${polls} polls of GET /v2/images/{digest}\n`);
      // Backoff from 1 s doubling: about log2(elapsed) polls, whatever the number of pod events.
      expect(polls).toBeLessThanOrEqual(5);
    } finally {
      sim.config.analysis.queued_ms = 50;
    }
  }, 60_000);

  it('when a container is still pulling (empty imageID), then its image is added once, by digest, when the kubelet reports it', async () => {
    const podName = uniqueName('pulling');
    const main = 'ghcr.io/example/pull-main:1.0';
    const side = 'ghcr.io/example/pull-side:1.0';
    const sideDigest = `sha256:${'4d'.repeat(32)}`;
    // A pod on a node kwok does not manage: its status is what this test writes, as a kubelet would.
    await apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName, namespace: ns, labels: { app: 'pulling' } },
        spec: {
          nodeName: 'not-a-kwok-node',
          containers: [
            { name: 'main', image: main },
            { name: 'side', image: side },
          ],
        },
      }),
    );
    const status = (sideID: string) => ({
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'main', image: main, imageID: `ghcr.io/example/pull-main@sha256:${'5e'.repeat(32)}`, ready: true, restartCount: 0, state: { running: { startedAt: new Date().toISOString() } } },
          {
            name: 'side',
            image: side,
            imageID: sideID,
            ready: false,
            restartCount: 0,
            state: sideID ? { running: { startedAt: new Date().toISOString() } } : { waiting: { reason: 'ContainerCreating' } },
          },
        ],
      },
    });
    sim.clearRequests();
    const op = operator as TestOperator;
    const pulling = async (): Promise<number> => sumOf(await scrape(op.op.metricsPort), 'anchore_operator_container_images_skipped_total', { reason: 'pulling' });
    const pullingBefore = await pulling();
    await kubectl(['patch', 'pod', podName, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify(status(''))]);
    await eventually(() => sim.requests({ method: 'POST', path: /^\/v2\/images$/ }).some((r) => JSON.stringify(r.body).includes('pull-main')), 10_000, 100);
    // The pass over the pod that queued main judged side too, before main was added: skipped as pulling (counted),
    // not queued. (Had it been queued, the count would not have moved.)
    expect(await pulling()).toBeGreaterThan(pullingBefore);
    expect(sim.requests({ method: 'POST', path: /^\/v2\/images$/ }).filter((r) => JSON.stringify(r.body).includes('pull-side'))).toHaveLength(0);
    await kubectl(['patch', 'pod', podName, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify(status(`ghcr.io/example/pull-side@${sideDigest}`))]);
    await eventually(() => sim.images(ADMIN_ACCOUNT).some((i) => i.image_digest === sideDigest), 10_000, 100);
    // Looked again: a later reconcile of the image (its first analysis poll) has begun, so the one that added it has
    // ended — one image's reconciles never overlap — and the poll's own adds would come before its read.
    await eventually(() => sim.requests({ method: 'GET', path: `/v2/images/${sideDigest}` }).length > 0, 10_000, 50);
    const sideAdds = sim.requests({ method: 'POST', path: /^\/v2\/images$/ }).filter((r) => JSON.stringify(r.body).includes('pull-side'));
    expect(sideAdds.map((r) => (r.body as { source: Record<string, unknown> }).source)).toEqual([{ digest: { pull_string: `ghcr.io/example/pull-side@${sideDigest}`, tag: side } }]);
    await kubectl(['delete', 'pod', podName, '-n', ns, '--grace-period=0', '--force', '--wait=false']);
  });

  it('when Anchore loses an image, then the binding says so, the image is registered again and evaluated again', async () => {
    await apply(apb(ns, 'lost', { podSelector: { matchLabels: { app: 'web' } } }));
    await ready(ns, 'lost');
    sim.config.analysis.analyzing_ms = 3000;
    try {
      expect(sim.deleteImage(ADMIN_ACCOUNT, digests['nginx'] as string)).toBe(true);
      sim.clearRequests();
      // A forced re-evaluation asks Anchore, which answers 404 for the deleted image.
      await kubectl(['annotate', 'apb', 'lost', '-n', ns, 'anchore.io/reevaluate=lost-1', '--overwrite']);
      const saying = await eventually(
        async () => {
          const b = await getApb(ns, 'lost');
          return cond(b, 'Ready')?.reason === 'ImageNotInAnchore' ? b : undefined;
        },
        20_000,
        100,
      );
      expect(cond(saying, 'Ready')?.status).toBe('False');
      expect(cond(saying, 'Ready')?.message).toContain('Anchore no longer holds 1 image(s)');
      expect(saying.status?.results?.find((r) => r.digest === digests['nginx'])).toMatchObject({ result: 'pending', reason: 'ImageNotInAnchore' });
      const back = await ready(ns, 'lost', 30_000);
      expect(back.status?.summary).toMatchObject({ images: 2, passed: 1, failed: 1, pending: 0 });
      const adds = sim.requests({ method: 'POST', path: /^\/v2\/images$/ });
      expect(adds).toHaveLength(1);
      expect(operator?.logs.join('')).toContain('Anchore no longer holds the image; registering it again');
    } finally {
      sim.config.analysis.analyzing_ms = 150;
    }
  });

  it("when a binding's policy is deleted and restored, then PolicyNotFound follows at once and recovery within 20 s", async () => {
    sim.putPolicy(ADMIN_ACCOUNT, { policy_id: 'doomed', name: 'Doomed' });
    await apply(apb(ns, 'doomed', { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['first', 'second'] }] }, policyId: 'doomed' }));
    await apply(deployment(ns, 'first', 1, [{ name: 'c', image: 'busybox:1.36' }]));
    await waitForRunningPods(ns, 'app=first', 1);
    await ready(ns, 'doomed');
    expect(sim.deletePolicy(ADMIN_ACCOUNT, 'doomed')).toBe(true);
    // A new image under the binding: its first check meets the deleted policy (the 60 s policy list still has it).
    const t0 = Date.now();
    await apply(deployment(ns, 'second', 1, [{ name: 'c', image: 'redis:7.4' }]));
    const stalled = await eventually(
      async () => {
        const b = await getApb(ns, 'doomed');
        return cond(b, 'Stalled')?.reason === 'PolicyNotFound' ? b : undefined;
      },
      20_000,
      100,
    );
    const toStalled = Date.now() - t0;
    expect(cond(stalled, 'Ready')?.message).toContain('no policy with id "doomed"');
    // Once the new pod has settled (no pod events left to wake the binding), the policy comes back. Before that, the
    // operator reconciles the binding again from its caches, as a pod event would make it: it stays stalled.
    await waitForRunningPods(ns, 'app=second', 1);
    await reconciledAgain(operator as TestOperator, { namespace: ns, name: 'doomed' }, () => touchNamespace(ns));
    expect(cond(await getApb(ns, 'doomed'), 'Stalled')?.reason).toBe('PolicyNotFound');
    sim.putPolicy(ADMIN_ACCOUNT, { policy_id: 'doomed', name: 'Doomed' });
    const t1 = Date.now();
    const back = await ready(ns, 'doomed', 45_000);
    const toRecovered = Date.now() - t1;
    expect(back.status?.summary).toMatchObject({ images: 2, pending: 0 });
    process.stdout.write(`[measure] policy deleted → PolicyNotFound: ${toStalled} ms; policy restored → Ready: ${toRecovered} ms\n`);
    expect(toStalled).toBeLessThan(15_000);
    expect(toRecovered).toBeLessThan(25_000);
  }, 90_000);

  it('when a forced re-evaluation meets an Anchore outage, then it is retried against Anchore, never answered from the cache', async () => {
    await apply(apb(ns, 'forced', { podSelector: { matchLabels: { app: 'web' } } }));
    const first = await ready(ns, 'forced');
    expect(first.status?.summary).toMatchObject({ passed: 1, failed: 1 });
    // Anchore's verdict changes; a forced re-evaluation is asked for while /check is down for 3 s.
    sim.setVerdict(digests['sidecar'] as string, { status: 'pass', final_action: 'go' });
    try {
      const outageEnds = Date.now() + 3000;
      sim.setFaults([{ path: /\/check$/, outage: { untilMs: outageEnds } }]);
      await kubectl(['annotate', 'apb', 'forced', '-n', ns, 'anchore.io/reevaluate=forced-1', '--overwrite']);
      await eventually(async () => cond(await getApb(ns, 'forced'), 'Ready')?.reason === 'AnchoreUnavailable', 10_000, 100);
      const after = await eventually(
        async () => {
          const b = await getApb(ns, 'forced');
          return cond(b, 'Ready')?.status === 'True' ? b : undefined;
        },
        30_000,
        200,
      );
      // The retry asked Anchore (after the outage) and shows the new verdict, not the cached one.
      expect(after.status?.summary).toMatchObject({ passed: 2, failed: 0 });
      expect(sim.requests({ path: /\/check$/ }).some((r) => r.status === 200 && r.time >= outageEnds)).toBe(true);
    } finally {
      sim.clearFaults();
      sim.setVerdict(digests['sidecar'] as string, { status: 'fail', final_action: 'stop', findings: 2 });
    }
  });
});
