import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { cachedBinaries, ensureBinaries } from '../cluster/local-cluster.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, namespaceManifest, testCluster, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { evaluatedSince, inventoried, inventoryPods, touchNamespace } from '../support/looked.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';

/*
 * How GitOps tools read the bindings' status, judged by their own code on live objects: kstatus from
 * sigs.k8s.io/cli-utils (what Flux's `wait`/healthChecks use) and deploy/gitops/argocd-health.lua run the way Argo CD
 * runs a health script (gopher-lua, Argo CD's sandbox), both through test/tools/statuscheck. docs/gitops.md describes
 * the mapping this suite pins down.
 *
 * Like bindings.test.ts, it must be the only operator writing these bindings while it runs (jest runs the suites one
 * after the other here): every operator instance reconciles every binding in the cluster, also in namespaces outside
 * its NAMESPACES_INCLUDE, where it writes NoMatchingImages — an operator of a concurrent test run would overwrite them.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LUA = join(root, 'deploy', 'gitops', 'argocd-health.lua');
/** Slow enough that a binding created right after its pods run is seen waiting for analysis. */
const ANALYSIS_MS = 20_000;

interface Binding {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation: number; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    summary?: Record<string, number>;
  };
}
interface Judgement {
  kind: string;
  namespace?: string;
  name: string;
  kstatus?: { status: string; message: string };
  kstatusError?: string;
  health?: { status: string; message: string };
  healthError?: string;
}

let statuscheck = '';

/** Runs statuscheck on objects (or on raw JSON text, e.g. a kubectl watch stream). */
function judge(input: unknown[] | string, script = LUA): Promise<Judgement[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(statuscheck, ['-health', script], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`statuscheck failed: ${stderr || err.message}`));
      else
        resolve(
          stdout
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Judgement),
        );
    });
    child.stdin?.end(typeof input === 'string' ? input : input.map((o) => JSON.stringify(o)).join('\n'));
  });
}

const cond = (b: Binding, type: string) => b.status?.conditions?.find((c) => c.type === type);
const apb = (ns: string, name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name, namespace: ns }, spec });
const capb = (name: string, spec: Record<string, unknown>): string => JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'ClusterAnchorePolicyBinding', metadata: { name }, spec });

/** The two readers agree: kstatus Current ↔ Healthy (or Suspended), InProgress ↔ Progressing, Failed ↔ Degraded. */
const AGREES: Record<string, string[]> = { Current: ['Healthy', 'Suspended'], InProgress: ['Progressing'], Failed: ['Degraded'] };

describe('GitOps status readers on live bindings (kstatus / Argo CD Lua)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('gitops');
  const clusterNames: string[] = [];
  const digests: Record<string, string> = {};

  const getApb = (name: string) => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
  /** Waits until the binding has a status for its current generation that satisfies `pred`. */
  const settled = (get: () => Promise<Binding>, pred: (b: Binding) => boolean, timeoutMs = 30_000) =>
    eventually(
      async () => {
        const b = await get();
        return b.status?.observedGeneration === b.metadata.generation && pred(b) ? b : undefined;
      },
      timeoutMs,
      200,
    );
  const one = async (b: Binding, script = LUA): Promise<Judgement> => {
    const [j] = await judge([b], script);
    expect(j?.kstatusError).toBeUndefined();
    expect(j?.healthError).toBeUndefined();
    return j as Judgement;
  };

  beforeAll(async () => {
    statuscheck = cachedBinaries()?.['STATUSCHECK'] ?? (await ensureBinaries())['STATUSCHECK'] ?? '';
    expect(statuscheck).not.toBe('');
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 0, analyzing_ms: ANALYSIS_MS },
        policies: {
          admin: [
            { policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true },
            { policy_id: 'strict', name: 'Strict' },
          ],
        },
      },
    });
    await apply(namespaceManifest(ns));
    // Short analysis polls: the binding follows the end of the analysis within seconds.
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('gitops'), NAMESPACES_INCLUDE: ns, LEADER_ELECTION: 'false', ANALYSIS_POLL_MAX_SECONDS: '2' }));
    await apply(deployment(ns, 'web', 1, [{ name: 'web', image: 'nginx:1.27' }]));
    await apply(deployment(ns, 'gate', 1, [{ name: 'gate', image: 'envoyproxy/envoy:v1.31.0' }]));
    for (const p of [...(await waitForRunningPods(ns, 'app=web', 1)), ...(await waitForRunningPods(ns, 'app=gate', 1))]) {
      for (const c of p.containers) digests[c.name] = digestOf(c.imageID) ?? '';
    }
    // Deterministic verdicts: nginx passes, envoy fails (whichever policy asks).
    sim.setVerdict(digests['web'] as string, { status: 'pass', final_action: 'go' });
    sim.setVerdict(digests['gate'] as string, { status: 'fail', final_action: 'stop', findings: 2 });
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    for (const name of clusterNames) await kubectl(['delete', 'capb', name, '--ignore-not-found', '--wait=false']);
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the images are still being analysed, then the binding is Reconciling: kstatus InProgress, Argo CD Progressing', async () => {
    await apply(apb(ns, 'pending', { podSelector: { matchLabels: { app: 'web' } } }));
    const b = await settled(
      () => getApb('pending'),
      (x) => cond(x, 'Reconciling')?.status === 'True',
      15_000,
    );
    expect(cond(b, 'Reconciling')?.reason).toBe('AnalysisPending');
    expect(cond(b, 'Ready')).toMatchObject({ status: 'False', reason: 'AnalysisPending' });
    const j = await one(b);
    expect(j.kstatus?.status).toBe('InProgress');
    expect(j.health).toEqual({ status: 'Progressing', message: `AnalysisPending: ${cond(b, 'Reconciling')?.message}` });
  });

  it('when the analysis finishes, then the same binding becomes Ready: kstatus Current, Argo CD Healthy', async () => {
    const b = await settled(
      () => getApb('pending'),
      (x) => cond(x, 'Ready')?.status === 'True',
      ANALYSIS_MS + 30_000,
    );
    expect(cond(b, 'Reconciling')).toBeUndefined();
    expect(cond(b, 'Ready')?.reason).toBe('Evaluated');
    expect(b.status?.summary).toMatchObject({ images: 1, passed: 1, pending: 0 });
    const j = await one(b);
    expect(j.kstatus).toEqual({ status: 'Current', message: 'Resource is Ready' });
    expect(j.health?.status).toBe('Healthy');
  });

  it('when every image passes, then Ready=True, Compliant=True: kstatus Current, Argo CD Healthy with the verdict in the message', async () => {
    await apply(apb(ns, 'pass', { podSelector: { matchLabels: { app: 'web' } } }));
    const b = await settled(
      () => getApb('pass'),
      (x) => cond(x, 'Ready')?.status === 'True',
    );
    expect(cond(b, 'Compliant')).toMatchObject({ status: 'True', reason: 'PolicyPassed' });
    expect(b.status?.summary).toMatchObject({ images: 1, passed: 1 });
    const j = await one(b);
    expect(j.kstatus?.status).toBe('Current');
    expect(j.health?.status).toBe('Healthy');
    expect(j.health?.message).toBe(`Evaluated: ${cond(b, 'Ready')?.message}; PolicyPassed: ${cond(b, 'Compliant')?.message}`);
  });

  it('when an image fails the policy, then the binding is still Ready (the verdict is in Compliant=False): kstatus Current, Argo CD Healthy, or Degraded when the script is told to', async () => {
    await apply(apb(ns, 'fail', { podSelector: { matchLabels: { app: 'gate' } } }));
    const b = await settled(
      () => getApb('fail'),
      (x) => cond(x, 'Ready')?.status === 'True',
    );
    expect(cond(b, 'Ready')?.reason).toBe('Evaluated');
    expect(cond(b, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed' });
    expect(b.status?.summary).toMatchObject({ images: 1, failed: 1 });
    const j = await one(b);
    expect(j.kstatus?.status).toBe('Current');
    expect(j.health?.status).toBe('Healthy');
    expect(j.health?.message).toContain('PolicyFailed: 1 image(s) fail policy Default bundle');
    // The documented opt-in: flip DEGRADED_WHEN_NONCOMPLIANT and policy failures show as Degraded in Argo CD.
    const variant = readFileSync(LUA, 'utf8').replace('local DEGRADED_WHEN_NONCOMPLIANT = false', 'local DEGRADED_WHEN_NONCOMPLIANT = true');
    expect(variant).toContain('local DEGRADED_WHEN_NONCOMPLIANT = true');
    const dir = mkdtempSync(join(tmpdir(), 'argocd-health-'));
    const file = join(dir, 'health.lua');
    writeFileSync(file, variant);
    try {
      expect((await one(b, file)).health?.status).toBe('Degraded');
      expect((await one(await getApb('pass'), file)).health?.status).toBe('Healthy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when the policy does not exist, then the binding is Stalled: kstatus Failed, Argo CD Degraded with the cause', async () => {
    await apply(apb(ns, 'nopolicy', { policyId: 'no-such-policy' }));
    const b = await settled(
      () => getApb('nopolicy'),
      (x) => cond(x, 'Stalled')?.status === 'True',
    );
    expect(cond(b, 'Stalled')?.reason).toBe('PolicyNotFound');
    const j = await one(b);
    expect(j.kstatus).toEqual({ status: 'Failed', message: cond(b, 'Stalled')?.message });
    expect(j.health).toEqual({ status: 'Degraded', message: `PolicyNotFound: ${cond(b, 'Stalled')?.message}` });
    expect(j.health?.message).toContain('no-such-policy');
  });

  it('when a selector cannot be used, then the binding is Stalled with InvalidSelector: kstatus Failed, Argo CD Degraded', async () => {
    await apply(apb(ns, 'badsel', { podSelector: { matchLabels: { 'bad key!': 'x' } } }));
    const b = await settled(
      () => getApb('badsel'),
      (x) => cond(x, 'Stalled')?.status === 'True',
    );
    expect(cond(b, 'Stalled')?.reason).toBe('InvalidSelector');
    const j = await one(b);
    expect(j.kstatus?.status).toBe('Failed');
    expect(j.health?.status).toBe('Degraded');
  });

  it('when the spec is edited, then every version a watcher sees is InProgress / Progressing until observedGeneration catches up, then Current / Healthy', async () => {
    const { kubeconfig, kubectl: kubectlBin } = testCluster();
    // A watch sees every version of the object in order, as Argo CD's and Flux's informers do: the version right
    // after the edit (generation N+1, status still for N) is always among them, however fast the operator is.
    const watch = spawn(kubectlBin, ['--kubeconfig', kubeconfig, 'get', 'anchorepolicybinding', 'pass', '-n', ns, '-w', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stream = '';
    watch.stdout.on('data', (d: Buffer) => {
      stream += d.toString();
    });
    const parse = (): Binding[] =>
      stream
        .split(/\n(?=\{)/)
        .filter((t) => t.trim())
        .map((t) => JSON.parse(t) as Binding);
    let before: Binding;
    try {
      // The watch lists the current object first.
      before = await eventually(
        () => {
          try {
            return parse()[0];
          } catch {
            return undefined; // still arriving
          }
        },
        10_000,
        50,
      );
      expect(before.status?.observedGeneration).toBe(before.metadata.generation);
      await apply(apb(ns, 'pass', { podSelector: { matchLabels: { app: 'web' } }, policyId: 'strict' }));
      const generation = before.metadata.generation + 1;
      await eventually(
        () => {
          try {
            return parse().some((v) => v.status?.observedGeneration === generation && v.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
          } catch {
            return false;
          }
        },
        30_000,
        50,
      );
    } finally {
      watch.kill('SIGTERM');
    }
    const versions = parse();
    const seen = await judge(versions);
    expect(seen.length).toBeGreaterThanOrEqual(3); // before, right after the edit, after the operator's status write
    expect(seen).toHaveLength(versions.length);
    const edited = versions.findIndex((v) => v.metadata.generation === before.metadata.generation + 1);
    expect(edited).toBeGreaterThan(0);
    expect(versions[edited]?.status?.observedGeneration).toBe(before.metadata.generation);
    expect(seen[edited]?.kstatus?.status).toBe('InProgress');
    expect(seen[edited]?.kstatus?.message).toBe(`AnchorePolicyBinding generation is ${before.metadata.generation + 1}, but latest observed generation is ${before.metadata.generation}`);
    expect(seen[edited]?.health?.status).toBe('Progressing');
    for (let i = 0; i < versions.length; i++) {
      const v = versions[i] as Binding;
      const j = seen[i] as Judgement;
      if (v.status?.observedGeneration !== v.metadata.generation) expect({ i, k: j.kstatus?.status, h: j.health?.status }).toEqual({ i, k: 'InProgress', h: 'Progressing' });
      expect(AGREES[j.kstatus?.status ?? '']).toContain(j.health?.status);
    }
    expect(seen.at(-1)?.kstatus?.status).toBe('Current');
    expect(seen.at(-1)?.health?.status).toBe('Healthy');
    expect((await getApb('pass')).status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('when nothing changes but pods come and go, then a watcher sees no new version of a settled binding (no churn)', async () => {
    const { kubeconfig, kubectl: kubectlBin } = testCluster();
    const before = await getApb('fail');
    const watch = spawn(kubectlBin, ['--kubeconfig', kubeconfig, 'get', 'anchorepolicybinding', 'fail', '-n', ns, '-w', '-o', 'json', '--watch-only'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stream = '';
    watch.stdout.on('data', (d: Buffer) => {
      stream += d.toString();
    });
    let marked = '';
    try {
      // Pod churn in the namespace makes the operator re-evaluate every binding there (from its cache).
      const churning = (body: Parameters<typeof inventoryPods>[0]) => inventoryPods(body, ns).some((p) => p.startsWith('churn-'));
      await apply(deployment(ns, 'churn', 1, [{ name: 'churn', image: 'nginx:1.27' }]));
      await waitForRunningPods(ns, 'app=churn', 1);
      await inventoried(sim, ns, churning);
      await kubectl(['delete', 'deployment', 'churn', '-n', ns]);
      // The operator has handled the churn (its inventory lists the pod no more), then re-evaluated the binding once
      // more: every reconcile the churn woke has ended before that one.
      await inventoried(sim, ns, (body) => !churning(body));
      await evaluatedSince(operator, [{ namespace: ns, name: 'fail' }], await touchNamespace(ns));
      // The watch delivers versions in order: one made now, if nobody wrote since `before` (the apiserver refuses it
      // otherwise), is the first and last the watcher may see.
      marked = await kubectl([
        'annotate',
        'apb',
        'fail',
        '-n',
        ns,
        'test.anchore.io/marker=churn',
        `--resource-version=${before.metadata.resourceVersion}`,
        '-o',
        'jsonpath={.metadata.resourceVersion}',
      ]);
      await eventually(() => stream.includes('test.anchore.io/marker'), 10_000, 50);
    } finally {
      watch.kill('SIGTERM');
    }
    const versions = (await judge(stream)).length;
    expect(versions).toBe(1);
    expect(JSON.parse(stream) as Binding).toMatchObject({ metadata: { resourceVersion: marked } });
    expect((await getApb('fail')).metadata.resourceVersion).toBe(marked);
  });

  it('when Anchore is unreachable, then Reconciling with AnchoreUnavailable: kstatus InProgress, Argo CD Progressing; and back to Current / Healthy', async () => {
    sim.setFaults([{ path: /^\/v2\/(policies|images\/[^/]+\/check)/, outage: { untilMs: Date.now() + 5000 } }]);
    await kubectl(['annotate', 'apb', 'fail', '-n', ns, 'anchore.io/reevaluate=outage', '--overwrite']);
    const down = await settled(
      () => getApb('fail'),
      (x) => cond(x, 'Ready')?.reason === 'AnchoreUnavailable',
      15_000,
    );
    expect(cond(down, 'Reconciling')?.status).toBe('True');
    const j = await one(down);
    expect(j.kstatus?.status).toBe('InProgress');
    expect(j.health?.status).toBe('Progressing');
    expect(j.health?.message).toContain('AnchoreUnavailable: ');
    const up = await settled(
      () => getApb('fail'),
      (x) => cond(x, 'Ready')?.status === 'True',
      40_000,
    );
    expect((await one(up)).kstatus?.status).toBe('Current');
    sim.clearFaults();
  });

  it('when a binding is suspended, then Ready=True/Suspended: kstatus Current, Argo CD Suspended', async () => {
    await apply(apb(ns, 'paused', { podSelector: { matchLabels: { app: 'web' } }, suspend: true }));
    const b = await settled(
      () => getApb('paused'),
      (x) => cond(x, 'Ready')?.status === 'True',
    );
    expect(cond(b, 'Ready')?.reason).toBe('Suspended');
    const j = await one(b);
    expect(j.kstatus?.status).toBe('Current');
    expect(j.health?.status).toBe('Suspended');
  });

  it('when ClusterAnchorePolicyBindings settle or stall, then the same script judges the cluster-scoped kind the same way', async () => {
    const good = uniqueName('gitops-ok');
    const bad = uniqueName('gitops-nopolicy');
    clusterNames.push(good, bad);
    await apply(capb(good, { namespaces: [ns], podSelector: { matchLabels: { app: 'web' } } }));
    await apply(capb(bad, { namespaces: [ns], policyId: 'no-such-policy' }));
    const ok = await settled(
      () => getJson<Binding>(['capb', good]),
      (x) => cond(x, 'Ready')?.status === 'True',
    );
    const stalled = await settled(
      () => getJson<Binding>(['capb', bad]),
      (x) => cond(x, 'Stalled')?.status === 'True',
    );
    const [jo, js] = await judge([ok, stalled]);
    expect(jo).toMatchObject({ kind: 'ClusterAnchorePolicyBinding', name: good, kstatus: { status: 'Current' }, health: { status: 'Healthy' } });
    expect(js).toMatchObject({ kind: 'ClusterAnchorePolicyBinding', name: bad, kstatus: { status: 'Failed' }, health: { status: 'Degraded' } });
  });

  it('when a binding has no status yet (the operator has not seen it), then Argo CD says Progressing while kstatus already says Current', async () => {
    // The object exactly as the apiserver creates it (server dry run), before any operator writes status. kstatus
    // treats an object without status fields as Current: docs/gitops.md explains what that means for Flux.
    const created = JSON.parse(await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], apb(ns, 'fresh', { podSelector: {} }))) as Binding;
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const j = await one(created);
    expect(j.kstatus?.status).toBe('Current');
    expect(j.health).toEqual({ status: 'Progressing', message: 'Waiting for the anchore-operator to report status' });
  });

  it('when every binding in the namespace is listed, then kstatus and Argo CD agree on each of them', async () => {
    const list = await kubectl(['get', 'anchorepolicybindings', '-n', ns, '-o', 'json']);
    const seen = await judge(list);
    expect(seen.map((j) => j.name).sort()).toEqual(['badsel', 'fail', 'nopolicy', 'pass', 'paused', 'pending']);
    const table = Object.fromEntries(seen.map((j) => [j.name, `${j.kstatus?.status}/${j.health?.status}`]));
    expect(table).toEqual({
      badsel: 'Failed/Degraded',
      fail: 'Current/Healthy',
      nopolicy: 'Failed/Degraded',
      pass: 'Current/Healthy',
      paused: 'Current/Suspended',
      pending: 'Current/Healthy',
    });
    for (const j of seen) expect(AGREES[j.kstatus?.status ?? '']).toContain(j.health?.status);
  });

  it('when the argocd-cm snippet is read, then both kinds carry exactly deploy/gitops/argocd-health.lua', () => {
    const cm = parseYaml(readFileSync(join(root, 'deploy', 'gitops', 'argocd-cm-health.yaml'), 'utf8')) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.name).toBe('argocd-cm');
    const script = readFileSync(LUA, 'utf8');
    expect(Object.keys(cm.data).sort()).toEqual(['resource.customizations.health.anchore.io_AnchorePolicyBinding', 'resource.customizations.health.anchore.io_ClusterAnchorePolicyBinding']);
    for (const [key, value] of Object.entries(cm.data)) expect({ key, same: value === script }).toEqual({ key, same: true });
  });
});
