import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, runningPods, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';
import { selfSigned } from '../support/tls.ts';
import { DENIED_BY_WEBHOOK, policyBinding, webhookTarget, workloadsWebhook } from '../support/webhook.ts';

/*
 * Issue 22, points 2 and 5, through the real kube-apiserver (same set-up as admission.test.ts: a
 * ValidatingWebhookConfiguration with a URL clientConfig on 127.0.0.1, scoped by namespaceSelector to this suite's
 * namespaces, served by an in-process operator talking to its own simulator).
 *
 * Point 2: a workload admitted while its image passed keeps healing (pods recreated, scaled, restarted) after the image
 * starts failing, because the objects kube-controller-manager creates for an admitted owner inherit its admission
 * (the controller-manager runs with --use-service-account-credentials, so the apiserver names each controller's
 * service account). A tenant who writes the same ownerReferences is not that controller, and is judged as usual.
 *
 * Point 5: breakglass is honoured only for the subjects RBAC allows ("use" on breakglass.anchore.io in the
 * namespace), with a reason, and a revoked RoleBinding takes effect at once.
 */
const { host: webhookHost, listenEnv, tlsIps } = webhookTarget('admission-trust');

/** Passes, then fails (the "new CVE"). */
const HEAL_IMAGE = 'docker.io/acme/heal:1.0';
/** Fails from the start. */
const BAD_IMAGE = 'docker.io/acme/heal:2.0';
const BREAKGLASS = 'anchore.io/admission-breakglass';
const REEVALUATE = 'anchore.io/reevaluate';
const DENIED = DENIED_BY_WEBHOOK;

/** The digest the kwok nodes report for a tag-only image: sha256 of the normalised `repo:tag` (test/cluster/kwok-stages.yaml). */
const kwokDigest = (normalised: string): string => `sha256:${createHash('sha256').update(normalised).digest('hex')}`;

const apb = policyBinding;

const webhookConfig = (name: string, port: number, caPem: string, namespaces: string[]): string => workloadsWebhook({ name, port, caPem, namespaces, host: webhookHost });

/** The manifest with the pod template labelled tier=<tier> (the deny bindings select tier=gated) and annotated. */
function labelled(manifest: string, tier: string, annotations: Record<string, string> = {}): string {
  const d = JSON.parse(manifest) as { spec: { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } } };
  d.spec.template.metadata.labels['tier'] = tier;
  d.spec.template.metadata.annotations = annotations;
  return JSON.stringify(d);
}

/** A tenant: a ServiceAccount bound to the ClusterRole `edit` in the namespace (no breakglass permission). */
const tenantManifests = (ns: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant', namespace: ns } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'tenant-edit', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: ns }],
      },
    ],
  });
const tenantUser = (ns: string): string => `system:serviceaccount:${ns}:tenant`;
/** kubectl as the tenant (the apiserver authenticates the request as the tenant's service account). */
const asTenant = (ns: string, args: string[], input?: string) => kubectlRaw([`--as=${tenantUser(ns)}`, ...args], input);

async function canI(ns: string, user: string, verb: string, resource: string): Promise<boolean> {
  const r = await kubectlRaw(['auth', 'can-i', verb, resource, '-n', ns, `--as=${user}`]);
  return r.stdout.trim() === 'yes';
}

/**
 * Whether the tenant may break glass, asked the way the operator asks: a SubjectAccessReview on `use`
 * `breakglass.anchore.io`. (`kubectl auth can-i use breakglass.anchore.io` cannot answer this: kubectl splits the
 * group off only for resources the apiserver serves, and sends any other argument whole as the resource name in the
 * core group, so it says "no" even when RBAC allows.)
 */
async function mayBreakGlass(ns: string): Promise<boolean> {
  const sar = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: tenantUser(ns),
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      resourceAttributes: { namespace: ns, group: 'anchore.io', resource: 'breakglass', verb: 'use' },
    },
  };
  const r = JSON.parse(await kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(sar))) as { status?: { allowed?: boolean } };
  return r.status?.allowed === true;
}

interface DeploymentStatus {
  metadata: { generation: number; uid: string };
  spec: { replicas: number };
  status?: { observedGeneration?: number; replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

/** Waits until the Deployment has exactly `n` replicas, all updated and ready, for its current generation. */
async function waitForDeployment(ns: string, name: string, n: number, timeoutMs = 45_000): Promise<DeploymentStatus> {
  return eventually(
    async () => {
      const d = await getJson<DeploymentStatus>(['deployment', name, '-n', ns]);
      const s = d.status ?? {};
      return (s.observedGeneration ?? 0) >= d.metadata.generation && d.spec.replicas === n && s.replicas === n && s.readyReplicas === n && s.updatedReplicas === n ? d : undefined;
    },
    timeoutMs,
    200,
  );
}

interface ReplicaSetItem {
  metadata: { name: string; uid: string; creationTimestamp: string; ownerReferences?: Array<{ kind: string; name: string }> };
  spec: { replicas: number };
  status?: { readyReplicas?: number };
}

async function replicaSetsOf(ns: string, deploymentName: string): Promise<ReplicaSetItem[]> {
  const list = await getJson<{ items: ReplicaSetItem[] }>(['replicasets', '-n', ns, '-l', `app=${deploymentName}`]);
  return list.items.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === deploymentName));
}

describe('admission trust: self-healing and breakglass (real kube-apiserver)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const nsHeal = uniqueName('adm-heal');
  const nsGlass = uniqueName('adm-glass');
  const webhook = uniqueName('anchore-operator-trust');
  const dir = mkdtempSync(join(tmpdir(), 'admission-trust-tls-'));
  const healDigest = kwokDigest(HEAL_IMAGE);
  const badDigest = kwokDigest(BAD_IMAGE);
  const inherited = async (kind: string): Promise<number> => sumOf(await scrape(operator.op.metricsPort), 'anchore_operator_admission_requests_total', { kind, verdict: 'inherited' });
  const bindingResult = async (ns: string, image: string): Promise<string | undefined> => {
    const b = await getJson<{ status?: { results?: Array<{ image: string; result: string }> } }>(['anchorepolicybindings.anchore.io', 'gate', '-n', ns]);
    return b.status?.results?.find((r) => r.image === image)?.result;
  };

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 20, analyzing_ms: 50 }, policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }] } } });
    sim.setVerdict(healDigest, { status: 'pass', final_action: 'go' });
    sim.setVerdict(badDigest, { status: 'fail', final_action: 'stop', findings: 2 });
    await apply(namespaceManifest(nsHeal));
    await apply(namespaceManifest(nsGlass));
    const tls = selfSigned(dir, 'anchore-operator-admission', tlsIps);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm-trust'),
        NAMESPACES_INCLUDE: `${nsHeal},${nsGlass}`,
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        ADMISSION_DEADLINE_MS: '2000',
        ...listenEnv,
      }),
    );
    // Seed: both images run (in pods no binding selects), so the operator registers them and Anchore analyses them.
    await apply(
      deployment(nsHeal, 'seed', 1, [
        { name: 'heal', image: HEAL_IMAGE },
        { name: 'bad', image: BAD_IMAGE },
      ]),
    );
    const [seed] = await waitForRunningPods(nsHeal, 'app=seed', 1);
    expect(seed!.containers.map((c) => digestOf(c.imageID)).sort()).toEqual([healDigest, badDigest].sort());
    await eventually(() => [healDigest, badDigest].every((d) => sim.images('admin').some((i) => i.image_digest === d && i.analysis_status === 'analyzed')), 30_000, 100);
    for (const ns of [nsHeal, nsGlass]) {
      await apply(apb(ns, 'gate', { enforcement: 'deny', podSelector: { matchLabels: { tier: 'gated' } } }));
      await apply(tenantManifests(ns));
    }
    await apply(webhookConfig(webhook, operator.op.admission!.port, tls.pem, [nsHeal, nsGlass]));
    // The apiserver reads webhook configurations through an informer, and RBAC through its own: wait until both apply.
    for (const ns of [nsHeal, nsGlass]) {
      await eventually(
        async () => {
          const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], labelled(deployment(ns, 'probe', 1, [{ name: 'app', image: BAD_IMAGE }]), 'gated'));
          return r.code !== 0 && r.stderr.includes('anchore-operator denied');
        },
        30_000,
        250,
      );
      await eventually(() => canI(ns, tenantUser(ns), 'create', 'deployments.apps'), 30_000, 250);
    }
  }, 120_000);

  afterAll(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', webhook, '--ignore-not-found']);
    await operator?.stop();
    await sim?.stop();
    for (const ns of [nsHeal, nsGlass]) await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('point 2: self-healing is never blocked, and nobody borrows another workload’s admission', () => {
    let inheritedPodsBefore = 0;
    let inheritedReplicaSetsBefore = 0;

    it('when the image passes, then the deny-bound Deployment heal is admitted (judged, no warning) and runs 2/2', async () => {
      const r = await kubectlRaw(['apply', '-f', '-'], labelled(deployment(nsHeal, 'heal', 2, [{ name: 'app', image: HEAL_IMAGE }]), 'gated'));
      expect(r.code).toBe(0);
      expect(r.stderr).not.toContain('anchore-operator');
      await waitForDeployment(nsHeal, 'heal', 2);
      const pods = await waitForRunningPods(nsHeal, 'app=heal', 2);
      expect(pods.map((p) => digestOf(p.containers[0]!.imageID))).toEqual([healDigest, healDigest]);
      await eventually(async () => (await bindingResult(nsHeal, HEAL_IMAGE)) === 'pass', 30_000, 200);
    }, 60_000);

    it('when a new CVE makes the image fail and the binding re-evaluates, then its status says fail and a new Deployment with the image is denied', async () => {
      sim.setVerdict(healDigest, { status: 'fail', final_action: 'stop', findings: 1 });
      await kubectl(['annotate', 'anchorepolicybindings.anchore.io', 'gate', '-n', nsHeal, `${REEVALUATE}=${uniqueName('cve')}`, '--overwrite']);
      await eventually(async () => (await bindingResult(nsHeal, HEAL_IMAGE)) === 'fail', 30_000, 200);
      const copy = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], labelled(deployment(nsHeal, 'heal-copy', 1, [{ name: 'app', image: HEAL_IMAGE }]), 'gated'));
      expect(copy.code).not.toBe(0);
      expect(copy.stderr).toContain(DENIED);
      expect(copy.stderr).toContain(`anchore-operator denied Deployment ${nsHeal}/heal-copy`);
      expect(copy.stderr).toContain(`image ${HEAL_IMAGE} fails Anchore policy`);
      expect(copy.stderr).toContain('final action stop');
    }, 60_000);

    it('when both pods of heal are deleted, then the ReplicaSet controller recreates them and heal is 2/2 again', async () => {
      inheritedPodsBefore = await inherited('Pod');
      inheritedReplicaSetsBefore = await inherited('ReplicaSet');
      const old = (await runningPods(nsHeal, 'app=heal')).map((p) => p.name);
      expect(old).toHaveLength(2);
      await kubectl(['delete', 'pods', '-n', nsHeal, ...old, '--wait=false']);
      await eventually(
        async () => {
          const pods = await runningPods(nsHeal, 'app=heal');
          return pods.length === 2 && pods.every((p) => !old.includes(p.name));
        },
        45_000,
        200,
      );
      await waitForDeployment(nsHeal, 'heal', 2);
    }, 60_000);

    it('when heal is scaled to 3, then 3 pods run', async () => {
      await kubectl(['scale', 'deployment/heal', '-n', nsHeal, '--replicas=3']);
      await waitForDeployment(nsHeal, 'heal', 3);
      await waitForRunningPods(nsHeal, 'app=heal', 3, 45_000);
    }, 60_000);

    it('when heal is restarted, then the new ReplicaSet’s pods run, the rollout completes, and the operator counts the inherited admissions', async () => {
      const before = (await replicaSetsOf(nsHeal, 'heal')).map((rs) => rs.metadata.uid);
      await kubectl(['rollout', 'restart', 'deployment/heal', '-n', nsHeal]);
      await kubectl(['rollout', 'status', 'deployment/heal', '-n', nsHeal, '--timeout=45s']);
      await waitForDeployment(nsHeal, 'heal', 3);
      const fresh = (await replicaSetsOf(nsHeal, 'heal')).filter((rs) => !before.includes(rs.metadata.uid));
      expect(fresh).toHaveLength(1);
      expect(fresh[0]!.spec.replicas).toBe(3);
      expect(fresh[0]!.status?.readyReplicas).toBe(3);
      // Recreated 2 + scaled 1 + restarted 3 pods, and the restart's ReplicaSet: all created by the controllers.
      expect((await inherited('Pod')) - inheritedPodsBefore).toBeGreaterThanOrEqual(6);
      expect((await inherited('ReplicaSet')) - inheritedReplicaSetsBefore).toBeGreaterThanOrEqual(1);
    }, 60_000);

    it('when a tenant creates a bare Pod with the failing image and a controller ownerReference to the heal ReplicaSet, then it is denied; the ReplicaSet controller’s identity would be trusted', async () => {
      const [rs] = (await replicaSetsOf(nsHeal, 'heal')).filter((x) => x.spec.replicas > 0);
      const pod = JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'borrower',
          namespace: nsHeal,
          labels: { tier: 'gated' },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs!.metadata.name, uid: rs!.metadata.uid, controller: true }],
        },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: HEAL_IMAGE }] },
      });
      const r = await asTenant(nsHeal, ['create', '-f', '-'], pod);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`anchore-operator denied Pod ${nsHeal}/borrower`);
      expect(r.stderr).toContain(`image ${HEAL_IMAGE} fails Anchore policy`);
      // The same request under the identity kube-controller-manager uses is inherited: the user is what decides.
      const controller = await kubectlRaw(['create', '--dry-run=server', '--as=system:serviceaccount:kube-system:replicaset-controller', '-f', '-'], pod);
      expect(controller.stderr).toBe('');
      expect(controller.code).toBe(0);
    }, 60_000);

    it('when a tenant creates a ReplicaSet with the failing image and an ownerReference to the heal Deployment, then it is denied', async () => {
      const heal = await getJson<DeploymentStatus>(['deployment', 'heal', '-n', nsHeal]);
      const rs = JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: 'borrowed-rs',
          namespace: nsHeal,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'heal', uid: heal.metadata.uid, controller: true }],
        },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'borrowed' } },
          template: { metadata: { labels: { app: 'borrowed', tier: 'gated' } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: HEAL_IMAGE }] } },
        },
      });
      const r = await asTenant(nsHeal, ['create', '-f', '-'], rs);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`anchore-operator denied ReplicaSet ${nsHeal}/borrowed-rs`);
      expect(r.stderr).toContain(`image ${HEAL_IMAGE} fails Anchore policy`);
    }, 60_000);

    it('when a tenant edits the heal ReplicaSet’s template to another failing image, then the update is denied and the ReplicaSet is unchanged', async () => {
      const [rs] = (await replicaSetsOf(nsHeal, 'heal')).filter((x) => x.spec.replicas > 0);
      const patch = JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: BAD_IMAGE }]);
      const r = await asTenant(nsHeal, ['patch', 'replicaset', rs!.metadata.name, '-n', nsHeal, '--type=json', '-p', patch]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`anchore-operator denied ReplicaSet ${nsHeal}/${rs!.metadata.name}`);
      expect(r.stderr).toContain(`image ${BAD_IMAGE} fails Anchore policy`);
      const after = await getJson<{ spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(['replicaset', rs!.metadata.name, '-n', nsHeal]);
      expect(after.spec.template.spec.containers[0]!.image).toBe(HEAL_IMAGE);
    }, 60_000);
  });

  describe('point 5: breakglass only for the subjects the cluster admin allows, with a reason', () => {
    const hotfix = (name: string, reason: string): string => labelled(deployment(nsGlass, name, 1, [{ name: 'app', image: BAD_IMAGE }]), 'gated', { [BREAKGLASS]: reason });
    const grant = (): string =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'Role',
            metadata: { name: 'breakglass', namespace: nsGlass },
            rules: [{ apiGroups: ['anchore.io'], resources: ['breakglass'], verbs: ['use'] }],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'tenant-breakglass', namespace: nsGlass },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'breakglass' },
            subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: nsGlass }],
          },
        ],
      });

    it('when a tenant without the permission sets breakglass, then the failing Deployment is denied naming "use" on breakglass.anchore.io', async () => {
      expect(await mayBreakGlass(nsGlass)).toBe(false);
      const r = await asTenant(nsGlass, ['apply', '-f', '-'], hotfix('hotfix', 'INC-1'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`anchore-operator denied Deployment ${nsGlass}/hotfix: breakglass refused`);
      expect(r.stderr).toContain(`${tenantUser(nsGlass)} may not break glass in namespace ${nsGlass}`);
      expect(r.stderr).toContain('"use" on "breakglass.anchore.io"');
    }, 60_000);

    it('when the admin grants use on breakglass.anchore.io, then the tenant’s Deployment is admitted, its pods run (inherited), and an AdmissionBreakglass Event names the tenant and the reason', async () => {
      await apply(grant());
      await eventually(() => mayBreakGlass(nsGlass), 30_000, 200);
      const r = await asTenant(nsGlass, ['apply', '-f', '-'], hotfix('hotfix', 'INC-1'));
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`${BREAKGLASS} is set (INC-1)`);
      await waitForRunningPods(nsGlass, 'app=hotfix', 1, 45_000);
      await waitForDeployment(nsGlass, 'hotfix', 1);
      const event = await eventually(
        async () => {
          const list = await getJson<{ items: Array<{ note: string; type: string; regarding: { kind: string; name: string } }> }>([
            'events.events.k8s.io',
            '-n',
            nsGlass,
            '--field-selector',
            'reason=AdmissionBreakglass',
          ]);
          return list.items.find((e) => e.regarding.kind === 'Deployment' && e.regarding.name === 'hotfix');
        },
        15_000,
        250,
      );
      expect(event.type).toBe('Warning');
      expect(event.note).toContain(`(user ${tenantUser(nsGlass)})`);
      expect(event.note).toContain('INC-1');
      // Glass was broken once, for the Deployment: its ReplicaSet and pods came from the controllers and inherited it.
      expect(sumOf(await scrape(operator.op.metricsPort), 'anchore_operator_admission_breakglass_total', { namespace: nsGlass })).toBe(1);
    }, 60_000);

    it('when the breakglass reason is empty or blank, then even the cluster admin is denied and asked for a reason', async () => {
      for (const reason of ['', '   ']) {
        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], hotfix('hotfix-blank', reason));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(DENIED);
        expect(r.stderr).toContain(`anchore-operator denied Deployment ${nsGlass}/hotfix-blank: breakglass refused`);
        expect(r.stderr).toContain('annotation needs a reason');
      }
    }, 60_000);

    it('when the RoleBinding is deleted, then the tenant is denied again at once (no cached permission)', async () => {
      // Admitted just before: were the permission cached, this answer would be reused below.
      const allowed = await asTenant(nsGlass, ['apply', '--dry-run=server', '-f', '-'], hotfix('hotfix-2', 'INC-2'));
      expect(allowed.code).toBe(0);
      await kubectl(['delete', 'rolebinding', 'tenant-breakglass', '-n', nsGlass]);
      await eventually(async () => !(await mayBreakGlass(nsGlass)), 30_000, 100);
      const r = await asTenant(nsGlass, ['apply', '--dry-run=server', '-f', '-'], hotfix('hotfix-2', 'INC-2'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`${tenantUser(nsGlass)} may not break glass in namespace ${nsGlass}`);
    }, 60_000);
  });
});
