import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { CHART, type Replica, helm, releaseManifests, startReplica, tempDir } from './harness.ts';

/*
 * The operator as a cluster admin installs it: `helm install` of deploy/helm/anchore-operator into the real cluster,
 * then the operator processes run with exactly the configuration the chart rendered and the chart ServiceAccount's
 * token (TokenRequest), against the RBAC-enabled apiserver. Pods of the chart's Deployment never do work here: on
 * the local control plane kwok only pretends to run them, and the image points at an unresolvable registry so on kind
 * they stay in ImagePullBackOff; the replicas under test are the local processes.
 */

const SECRET = 'e2e-Pa55word-never-in-logs-7f3a9c';
const GROUP = 'anchore.io';

interface Binding {
  metadata: { name: string; generation: number; resourceVersion: string };
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string }>;
    summary?: Record<string, number>;
  };
}

describe('Helm chart, end to end (real cluster)', () => {
  const release = uniqueName('aop');
  const ns = uniqueName('aop-system');
  const app = uniqueName('aop-app');
  const cluster = uniqueName('e2e');
  const work = tempDir('aop-e2e-');
  const valuesFile = join(work.dir, 'values.yaml');
  let sim: AnchoreSimulator;
  let sa = '';
  let leaseName = '';
  const replicas: Replica[] = [];
  /** Every replica ever started (for the log checks at the end) and the bearer tokens they saw. */
  const everStarted: Replica[] = [];
  const tokens: string[] = [];
  /** Metrics pages scraped during the run, checked for secrets at the end. */
  const scraped: string[] = [];
  const values: Record<string, unknown> = {};

  const writeValues = (extra: Record<string, unknown> = {}): void => {
    Object.assign(values, extra);
    writeFileSync(valuesFile, stringify(values));
  };
  const startReplicas = async (n: number): Promise<Replica[]> => {
    const started: Replica[] = [];
    for (let i = 0; i < n; i++) started.push(await startReplica(release, ns, `${release}-${uniqueName('pod')}`, work.dir));
    replicas.push(...started);
    everStarted.push(...started);
    for (const r of started) tokens.push(JSON.parse(readFileSync(r.env['KUBECONFIG']!, 'utf8')).users[0].user.token as string);
    await Promise.all(started.map((r) => r.ready()));
    return started;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(replicas.map((r) => r.stop()));
    replicas.length = 0;
  };
  const leaderOf = async (set: Replica[], token?: string): Promise<Replica> =>
    eventually(
      async () => {
        const states = await Promise.all(set.map((r) => (r.exited ? Promise.resolve(false) : r.leads(token))));
        const leaders = set.filter((_, i) => states[i] === true);
        return leaders.length === 1 ? leaders[0] : undefined;
      },
      30_000,
      250,
    );
  const registered = (digest: string): number => sim.requests({ method: 'POST', path: '/v2/images' }).filter((r) => JSON.stringify(r.body).includes(digest)).length;
  const canI = async (args: string[]): Promise<boolean> => {
    const r = await kubectlRaw(['auth', 'can-i', ...args, `--as=system:serviceaccount:${ns}:${sa}`]);
    if (r.code !== 0 && r.stdout.trim() !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() === 'yes';
  };

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        accounts: [{ name: 'admin', users: [{ username: 'admin', password: SECRET }], api_keys: [] }],
        analysis: { queued_ms: 50, analyzing_ms: 150 },
      },
    });
    await apply(namespaceManifest(app));
    writeValues({
      clusterName: cluster,
      replicaCount: 2,
      image: { repository: 'e2e.invalid/anchore-operator' },
      anchore: { url: sim.url, username: 'admin', password: SECRET },
      namespaces: { include: [app] },
      logLevel: 'debug',
      inventory: { debounceMs: 200, minIntervalMs: 0 },
    });
    // --take-ownership: the CRDs may already exist (applied by other suites or an earlier install).
    await helm(['install', release, CHART, '-n', ns, '--create-namespace', '-f', valuesFile, '--take-ownership', '--wait=false']);
    const sas = (await releaseManifests(release, ns)).filter((m) => m.kind === 'ServiceAccount');
    expect(sas).toHaveLength(1);
    sa = sas[0]!.metadata.name;
    const config = (await releaseManifests(release, ns)).find((m) => m.kind === 'ConfigMap' && (m['data'] as Record<string, string> | undefined)?.['LEADER_ELECTION_ID']);
    leaseName = (config?.['data'] as Record<string, string>)['LEADER_ELECTION_ID']!;
  });
  afterAll(async () => {
    await stopAll();
    await helm(['uninstall', release, '-n', ns]).catch(() => undefined);
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, app, '--wait=false', '--ignore-not-found']);
    work.remove();
  });

  it('when installed, then the ServiceAccount can do what the operator needs and nothing more (kubectl auth can-i)', async () => {
    const allowed: string[][] = [
      ['list', 'pods', '--all-namespaces'],
      ['watch', 'pods', '--all-namespaces'],
      ['watch', 'namespaces'],
      ['list', 'nodes'],
      ['watch', 'replicasets.apps', '--all-namespaces'],
      ['watch', 'jobs.batch', '--all-namespaces'],
      ['watch', `anchorepolicybindings.${GROUP}`, '--all-namespaces'],
      ['watch', `clusteranchorepolicybindings.${GROUP}`],
      ['patch', `anchorepolicybindings.${GROUP}`, '--subresource=status', '-n', app],
      ['patch', `clusteranchorepolicybindings.${GROUP}`, '--subresource=status'],
      ['create', 'events.events.k8s.io', '-n', app],
      ['list', 'events.events.k8s.io', '--all-namespaces'],
      ['create', 'leases.coordination.k8s.io', '-n', ns],
      ['get', `leases.coordination.k8s.io/${leaseName}`, '-n', ns],
      ['update', `leases.coordination.k8s.io/${leaseName}`, '-n', ns],
    ];
    const denied: string[][] = [
      ['get', 'secrets', '--all-namespaces'],
      ['get', 'secrets', '-n', ns],
      ['list', 'configmaps', '--all-namespaces'],
      ['create', 'pods', '-n', app],
      ['delete', 'pods', '-n', app],
      ['update', 'deployments.apps', '-n', app],
      ['patch', `anchorepolicybindings.${GROUP}`, '-n', app],
      ['delete', `anchorepolicybindings.${GROUP}`, '-n', app],
      ['create', `clusteranchorepolicybindings.${GROUP}`],
      ['update', 'leases.coordination.k8s.io', '-n', ns],
      ['update', 'leases.coordination.k8s.io/kube-controller-manager', '-n', 'kube-system'],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ['impersonate', 'serviceaccounts', '-n', ns],
      ['*', '*'],
    ];
    const wrong: string[] = [];
    for (const a of allowed) if (!(await canI(a))) wrong.push(`should be allowed: ${a.join(' ')}`);
    for (const d of denied) if (await canI(d)) wrong.push(`should be denied: ${d.join(' ')}`);
    expect(wrong).toEqual([]);
  });

  it('when the chart is installed and an app and a binding are applied, then the binding goes Ready with the right counts and metrics are scraped', async () => {
    const [r1, r2] = await startReplicas(2);
    const leader = await leaderOf([r1!, r2!]);
    const follower = leader === r1 ? r2! : r1!;
    expect(await follower.leads()).toBe(false);
    const lease = await getJson<{ spec: { holderIdentity: string; leaseDurationSeconds: number } }>(['lease', '-n', ns, leaseName]);
    expect(lease.spec.holderIdentity.startsWith(leader.name)).toBe(true);
    expect(lease.spec.leaseDurationSeconds).toBe(15);

    await apply(
      deployment(app, 'web', 2, [
        { name: 'nginx', image: 'nginx:1.27' },
        { name: 'sidecar', image: 'envoyproxy/envoy:v1.31.0' },
      ]),
    );
    const pods = await waitForRunningPods(app, 'app=web', 2);
    const nginx = digestOf(pods[0]!.containers.find((c) => c.name === 'nginx')!.imageID)!;
    const envoy = digestOf(pods[0]!.containers.find((c) => c.name === 'sidecar')!.imageID)!;
    sim.setVerdict(nginx, { status: 'pass', final_action: 'go' });
    sim.setVerdict(envoy, { status: 'fail', final_action: 'stop', findings: 3 });
    await apply(JSON.stringify({ apiVersion: `${GROUP}/v1alpha1`, kind: 'AnchorePolicyBinding', metadata: { name: 'web', namespace: app }, spec: { podSelector: { matchLabels: { app: 'web' } } } }));
    const b = await eventually(
      async () => {
        const x = await getJson<Binding>(['anchorepolicybinding', 'web', '-n', app]);
        return x.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && x.status.observedGeneration === x.metadata.generation ? x : undefined;
      },
      60_000,
      250,
    );
    expect(b.status?.summary).toMatchObject({ workloads: 1, images: 2, passed: 1, failed: 1, pending: 0, errors: 0 });
    expect(registered(nginx)).toBe(1);
    expect(registered(envoy)).toBe(1);

    const text = await eventually(
      async () => {
        const t = await leader.metrics();
        const failing = t.split('\n').find((l) => l.startsWith('anchore_operator_binding_images{') && l.includes('binding="web"') && l.includes('result="fail"'));
        return failing?.endsWith(' 1') ? t : undefined;
      },
      30_000,
      500,
    );
    scraped.push(text);
    expect(text).toMatch(/^anchore_operator_leader 1$/m);
    expect(await follower.metrics()).toMatch(/^anchore_operator_leader 0$/m);
    // The inventory reached Anchore from the leader, for this cluster.
    await eventually(() => sim.inventories('admin').some((r) => r.body.cluster_name === cluster), 30_000, 200);
  });

  it('when the leader is killed, then the other replica takes over within 20 s and work continues', async () => {
    const set = [...replicas];
    const leader = await leaderOf(set);
    const follower = set.find((r) => r !== leader)!;
    const killedAt = Date.now();
    leader.kill('SIGKILL');
    await leader.wait();
    await eventually(async () => (await follower.leads()) === true, 30_000, 100);
    const tookOver = Date.now() - killedAt;
    process.stdout.write(`[measure] leader SIGKILL → follower leads: ${tookOver} ms\n`);
    // A killed leader cannot release the lease: the follower waits out the 15 s lease duration (plus a jittered retry).
    expect(tookOver).toBeLessThan(20_000);
    expect(tookOver).toBeGreaterThan(10_000);
    const lease = await getJson<{ spec: { holderIdentity: string; leaseTransitions: number } }>(['lease', '-n', ns, leaseName]);
    expect(lease.spec.holderIdentity.startsWith(follower.name)).toBe(true);
    // Work continues: a new image is registered and the binding picks it up; nothing already registered is re-added.
    await apply(deployment(app, 'api', 1, [{ name: 'api', image: 'ghcr.io/stefanprodan/podinfo:6.7.0' }]));
    const pods = await waitForRunningPods(app, 'app=api', 1);
    const podinfo = digestOf(pods[0]!.containers[0]!.imageID)!;
    await eventually(() => registered(podinfo) === 1, 15_000, 100);
    expect(sim.requests({ method: 'POST', path: '/v2/images' }).filter((r) => JSON.stringify(r.body).includes('nginx:1.27'))).toHaveLength(1);
    await kubectl(['label', 'deployment', 'api', '-n', app, 'tier=backend']);
    await apply(
      JSON.stringify({
        apiVersion: `${GROUP}/v1alpha1`,
        kind: 'AnchorePolicyBinding',
        metadata: { name: 'web', namespace: app },
        spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] } },
      }),
    );
    const b = await eventually(
      async () => {
        const x = await getJson<Binding>(['anchorepolicybinding', 'web', '-n', app]);
        return x.status?.observedGeneration === x.metadata.generation && x.status.summary?.['images'] === 3 && x.status.summary?.['pending'] === 0 ? x : undefined;
      },
      60_000,
      250,
    );
    expect(b.status?.summary).toMatchObject({ workloads: 2, images: 3 });
    await stopAll();
  });

  it('when the release is upgraded to secure metrics, then scrapes need a token allowed to get /metrics and the new config is in effect', async () => {
    const before = (await releaseManifests(release, ns)).find((m) => m.kind === 'Deployment')!;
    writeValues({ metrics: { secure: true }, logLevel: 'info' });
    await helm(['upgrade', release, CHART, '-n', ns, '-f', valuesFile, '--wait=false']);
    const manifests = await releaseManifests(release, ns);
    const after = manifests.find((m) => m.kind === 'Deployment')!;
    // Changed config rolls the pods (checksum annotations on the pod template).
    const ann = (m: typeof before) => JSON.stringify((m.spec as { template: { metadata?: { annotations?: unknown } } }).template.metadata?.annotations ?? {});
    expect(ann(after)).not.toBe(ann(before));
    // The ServiceAccount may now review tokens — and only now.
    expect(await canI(['create', 'tokenreviews.authentication.k8s.io'])).toBe(true);
    expect(await canI(['create', 'subjectaccessreviews.authorization.k8s.io'])).toBe(true);

    const [r1, r2] = await startReplicas(2);
    expect(r1!.env['LOG_LEVEL']).toBe('info');
    expect(r1!.env['METRICS_SECURE']).toBe('true');
    // Prometheus' identity, bound to the chart's metrics-reader ClusterRole.
    const reader = manifests.find((m) => m.kind === 'ClusterRole' && /metrics-reader$/.test(m.metadata.name));
    expect(reader).toBeDefined();
    await kubectl(['create', 'serviceaccount', 'prometheus', '-n', ns]);
    await kubectl(['create', 'clusterrolebinding', `${release}-e2e-prometheus`, `--clusterrole=${reader!.metadata.name}`, `--serviceaccount=${ns}:prometheus`]);
    try {
      const token = (await kubectl(['create', 'token', 'prometheus', '-n', ns, '--duration=10m'])).trim();
      tokens.push(token);
      const leader = await leaderOf([r1!, r2!], token);
      const page = await leader.metrics(token);
      scraped.push(page);
      expect(page).toMatch(/^anchore_operator_leader 1$/m);
      await expect(leader.metrics()).rejects.toThrow(/HTTP 401/);
      const nobody = (await kubectl(['create', 'token', 'default', '-n', ns, '--duration=10m'])).trim();
      await expect(leader.metrics(nobody)).rejects.toThrow(/HTTP 403/);
    } finally {
      await kubectl(['delete', 'clusterrolebinding', `${release}-e2e-prometheus`, '--ignore-not-found']);
    }
  });

  it('when Events, binding status and scraped metrics are read, then neither the Anchore password nor any bearer token appears', async () => {
    const events = await kubectl(['get', 'events.events.k8s.io', '-n', app, '-o', 'json']);
    const bindings = await kubectl(['get', 'anchorepolicybindings', '-n', app, '-o', 'json']);
    expect(events).toContain('anchore');
    expect(bindings).toContain('"observedGeneration"');
    expect(scraped.length).toBeGreaterThanOrEqual(2);
    for (const text of [events, bindings, ...scraped]) {
      expect(text).not.toContain(SECRET);
      for (const t of tokens) expect(text).not.toContain(t);
    }
  });

  it('when the logs of every replica are read, then neither the Anchore password nor any bearer token appears', () => {
    expect(everStarted.length).toBeGreaterThanOrEqual(4);
    expect(tokens.length).toBeGreaterThanOrEqual(5);
    for (const r of everStarted) {
      const log = r.log();
      expect(log.length).toBeGreaterThan(1000);
      expect(log).not.toContain(SECRET);
      for (const t of tokens) expect(log).not.toContain(t);
    }
  });

  it('when the release is uninstalled, then the CRDs and the bindings stay', async () => {
    await stopAll();
    await helm(['uninstall', release, '-n', ns]);
    expect(await kubectlRaw(['get', 'serviceaccount', sa, '-n', ns])).toMatchObject({ code: 1 });
    for (const crd of [`anchorepolicybindings.${GROUP}`, `clusteranchorepolicybindings.${GROUP}`]) {
      expect((await kubectlRaw(['get', 'crd', crd])).code).toBe(0);
    }
    const b = await getJson<Binding>(['anchorepolicybinding', 'web', '-n', app]);
    expect(b.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});
