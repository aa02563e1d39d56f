import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, ensureCrds, eventually, getJson, kubectl, namespaceManifest, testCluster, uniqueName } from '../support/k8s.ts';
import { type TestOperator, observedLeader, operatorEnv, startTestOperator } from '../support/operator.ts';

const chart = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'helm', 'anchore-operator');
const CRDS = ['anchorepolicybindings.anchore.io', 'clusteranchorepolicybindings.anchore.io'];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
function helm(args: string[]): Promise<Result> {
  const { helm: bin, kubeconfig } = testCluster();
  return new Promise((resolve) => {
    execFile(bin, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Crd {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
}
interface Lease {
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}

/*
 * Issue 23, item 11 (d): what `helm uninstall` leaves behind and how a new install deals with it, as documented in the
 * chart README ("Uninstall and install again"). The chart is installed for real (its pods are kwok's, so no operator
 * runs in them); the Lease an uninstalled replica leaves is taken by an operator in-process.
 */
describe('helm uninstall, then install again (real cluster)', () => {
  const nsA = uniqueName('reinst-a');
  const nsB = uniqueName('reinst-b');
  const relA = uniqueName('ra');
  const relB = uniqueName('rb');
  const set = ['--set', 'clusterName=reinstall', '--set', 'anchore.url=https://anchore.invalid:8228', '--set', 'anchore.username=u', '--set', 'anchore.password=p', '--wait=false'];
  const installed: Array<[string, string]> = [];
  let sim: AnchoreSimulator | undefined;
  let operator: TestOperator | undefined;

  beforeAll(async () => {
    await ensureCrds();
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    for (const [rel, ns] of installed) await helm(['uninstall', rel, '-n', ns, '--wait=false']);
    await kubectl(['delete', 'namespace', nsA, nsB, '--wait=false', '--ignore-not-found']);
  });

  it('when a release is uninstalled, then the CRDs stay (resource-policy keep) owned by it, and an install under another name is refused until they are handed over; after that it installs', async () => {
    // The first install adopts CRDs that exist already (other suites applied them): --take-ownership.
    const first = await helm(['install', relA, chart, '-n', nsA, '--create-namespace', '--take-ownership', ...set]);
    expect(first.stderr.replace(/WARNING: Kubernetes configuration file is .*\n/g, '')).toBe('');
    installed.push([relA, nsA]);
    // The NOTES say so at install time.
    expect(first.stdout).toContain(`helm uninstall keeps the CRDs (and every binding), still owned by release ${relA} in ${nsA}`);
    expect((await helm(['uninstall', relA, '-n', nsA])).code).toBe(0);
    installed.pop();
    for (const name of CRDS) {
      const crd = await getJson<Crd>(['crd', name]);
      expect(crd.metadata.annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep', 'meta.helm.sh/release-name': relA, 'meta.helm.sh/release-namespace': nsA });
    }

    const refused = await helm(['install', relB, chart, '-n', nsB, '--create-namespace', ...set]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('invalid ownership metadata');
    expect(refused.stderr).toContain(`annotation validation error: key "meta.helm.sh/release-name" must equal "${relB}": current value is "${relA}"`);

    // The hand-over the chart README documents (Helm older than 3.17, which has no --take-ownership).
    await kubectl(['annotate', 'crd', ...CRDS, `meta.helm.sh/release-name=${relB}`, `meta.helm.sh/release-namespace=${nsB}`, '--overwrite']);
    await kubectl(['label', 'crd', ...CRDS, 'app.kubernetes.io/managed-by=Helm', '--overwrite']);
    const second = await helm(['install', relB, chart, '-n', nsB, '--create-namespace', ...set]);
    expect({ code: second.code, stderr: second.stderr.replace(/WARNING: Kubernetes configuration file is .*\n/g, '') }).toEqual({ code: 0, stderr: '' });
    installed.push([relB, nsB]);
    expect((await getJson<Crd>(['crd', CRDS[0]!])).metadata.annotations?.['meta.helm.sh/release-name']).toBe(relB);
  }, 120_000);

  it('when a replica was killed and left the Lease held, then an install under the same name takes it over once the lease duration has passed; nothing to clean up', async () => {
    // What a replica killed during `helm uninstall` leaves (a cleanly stopped one releases the Lease instead, and the
    // next leader takes it at once: test/integration/leader-election.test.ts). Chart timings: 15 s.
    const lease = `${relA}-anchore-operator`;
    await apply(namespaceManifest(nsA));
    // MicroTime: RFC 3339 with microseconds.
    const now = new Date().toISOString().replace(/Z$/, '000Z');
    await apply(
      JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: lease, namespace: nsA },
        spec: { holderIdentity: `${relA}-anchore-operator-7d9f-gone_0badc0de`, leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 3 },
      }),
    );
    sim = await startSimulator({ config: {} });
    const t0 = Date.now();
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('reinst'),
        NAMESPACES_INCLUDE: nsA,
        INTEGRATION_ENABLED: 'false',
        LEADER_ELECTION: 'true',
        LEADER_ELECTION_NAMESPACE: nsA,
        LEADER_ELECTION_ID: lease,
        POD_NAME: `${relA}-anchore-operator-5c4b-new`,
      }),
    );
    const started = operator;
    const op = started.op;
    // It sees the old holder and waits: never two leaders.
    await eventually(() => observedLeader(started) === `${relA}-anchore-operator-7d9f-gone_0badc0de`, 10_000, 100);
    expect(op.isLeader()).toBe(false);
    await eventually(() => op.isLeader(), 30_000, 100);
    const tookMs = Date.now() - t0;
    expect(tookMs).toBeGreaterThanOrEqual(14_000);
    const l = await getJson<Lease>(['lease', lease, '-n', nsA]);
    expect(l.spec.holderIdentity).toMatch(new RegExp(`^${relA}-anchore-operator-5c4b-new_[0-9a-f]{8}$`));
    expect(l.spec.leaseTransitions).toBe(4);
    process.stdout.write(`[measure] leftover Lease (15 s) taken over ${tookMs} ms after the new replica started\n`);
  }, 90_000);
});
