import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent, request } from 'undici';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, type RecordedRequest, startSimulator } from '../anchore-sim/index.ts';
import { call, digestSource } from '../anchore-sim/test-client.ts';
import { apply, deployment, digestOf, eventually, kubectl, kubectlRaw, namespaceManifest, quiet, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';
import { selfSigned } from '../support/tls.ts';
import { DENIED_BY_WEBHOOK, policyBinding, webhookRule, webhookTarget, workloadsWebhook } from '../support/webhook.ts';

/*
 * Issue 22, points 1, 3, 4 and 6, through the real kube-apiserver (same set-up as admission.test.ts: a
 * ValidatingWebhookConfiguration with a URL clientConfig on 127.0.0.1, scoped by namespaceSelector to this suite's
 * namespaces, served by an in-process operator talking to its own simulator).
 *
 * Point 1: where a tag points is learned only from evidence a tenant cannot forge (what Anchore holds under the tag,
 * what kubelets pulled for tag-only specs), never from a spec that pins a digest beside the tag.
 * Point 4: an image CI added to Anchore after the operator started is judged, on every replica (a miss asks Anchore
 * about the tag: GET /v2/images?full_tag=).
 * Point 3: admission registers unknown images within bounds: per review, per namespace per minute, never on an IP
 * address or localhost, never for a request denied on policy.
 * Point 6: an image reference the operator cannot parse is judged as "cannot be judged", never skipped.
 * And during an Anchore outage one review asks at most twice per image.
 *
 * Namespaces: `free` is in the operator's scope with no binding and is not sent to the webhook (the tenant who pins
 * digests there); `guarded` has a deny binding with failurePolicy open (tier=open) and one with closed (tier=closed);
 * `bulk` (deny, open) and `burst` (deny, closed) hold the registration checks, each its own per-namespace budget.
 */
const { host: webhookHost, listenEnv, tlsIps } = webhookTarget('admission-evidence');

const DENIED = DENIED_BY_WEBHOOK;
const BAD_TAG = 'docker.io/acme/bad:1.0';
const SOLO_TAG = 'docker.io/acme/solo:1.0';
const PULLED_TAG = 'docker.io/acme/pulled:1.0';
const LATE_TAG = 'docker.io/acme/late:1.0';
/** The default ADMISSION_REGISTER_MAX_PER_REVIEW. */
const PER_REVIEW = 5;
/**
 * ADMISSION_REGISTER_NAMESPACE_PER_MINUTE for this suite: low, but above PER_REVIEW, so that the 40-image review is
 * bounded by the per-review limit (a namespace limit below it would bind first and hide over_review_limit).
 */
const NS_PER_MINUTE = 6;
const OUTCOMES = ['registered', 'failed', 'request_denied', 'repository_not_allowed', 'over_review_limit', 'over_namespace_limit', 'over_global_limit'] as const;
type Outcome = (typeof OUTCOMES)[number];

interface ReviewAnswer {
  uid: string;
  allowed: boolean;
  status?: { message: string };
  warnings?: string[];
}

const apb = policyBinding;

const webhookConfig = (name: string, port: number, caPem: string, namespaces: string[]): string =>
  workloadsWebhook({ name, port, caPem, namespaces, host: webhookHost, rules: [webhookRule([''], ['pods']), webhookRule(['apps'], ['deployments', 'replicasets'])] });

/** The Deployment manifest with its pod template labelled tier=<tier> (the guarded bindings select on it). */
function tiered(manifest: string, tier: string): string {
  const d = JSON.parse(manifest) as { spec: { template: { metadata: { labels: Record<string, string> } } } };
  d.spec.template.metadata.labels['tier'] = tier;
  return JSON.stringify(d);
}

/**
 * A bare Pod, one container per image (c0, c1, …). `unschedulable`: a nodeSelector no node matches, so the Pod stays
 * Pending with no imageIDs and the operator never registers it as a running image (only admission may).
 */
function pod(ns: string, name: string, images: string[], o: { tier?: string; annotations?: Record<string, string>; unschedulable?: boolean } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name, ...(o.tier ? { tier: o.tier } : {}) }, annotations: o.annotations ?? {} },
    spec: {
      terminationGracePeriodSeconds: 0,
      ...(o.unschedulable ? { nodeSelector: { 'anchore-operator.test/no-such-node': 'true' } } : {}),
      containers: images.map((image, i) => ({ name: `c${i}`, image })),
    },
  });
}

describe('admission evidence: tag resolution, what Anchore knows, bounded registration, unparsable references (real kube-apiserver)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const run = uniqueName('ev');
  const free = uniqueName('adm-free');
  const guarded = uniqueName('adm-guard');
  const bulk = uniqueName('adm-bulk');
  const burst = uniqueName('adm-burst');
  const namespaces = [free, guarded, bulk, burst];
  const webhook = uniqueName('anchore-operator-evidence');
  const dir = mkdtempSync(join(tmpdir(), 'admission-evidence-tls-'));
  /** A digest of this run's own (kwok keeps a digest the spec pins). */
  const digest = (name: string): string => `sha256:${createHash('sha256').update(`${run}/${name}`).digest('hex')}`;
  /** Passing and failing digests of docker.io/acme/bad:1.0. */
  const P = digest('P');
  const F = digest('F');

  /** Adds an image to Anchore as CI would (POST /v2/images by digest, with its tag) and waits for its analysis. */
  async function ciAdds(repository: string, d: string, tag: string): Promise<void> {
    const r = await call(sim.url, 'POST', '/v2/images', { json: digestSource(repository, d, tag) });
    expect(r.status).toBe(200);
    await eventually(() => sim.images('admin').some((i) => i.image_digest === d && i.analysis_status === 'analyzed'), 10_000, 50);
  }
  const checksOf = (d: string): RecordedRequest[] => sim.requests({ method: 'GET', path: `/v2/images/${d}/check` });
  const tagLookups = (tag: string): RecordedRequest[] => sim.requests({ method: 'GET', path: '/v2/images' }).filter((q) => q.query['full_tag'] === tag);
  /** POST /v2/images the operator's admission sent (its annotation says so), for images naming `fragment`. */
  const admissionAdds = (fragment: string): RecordedRequest[] =>
    sim
      .requests({ method: 'POST', path: '/v2/images' })
      .filter((q) => (q.body as { annotations?: Record<string, string> }).annotations?.['anchore-operator/requestor'] === 'admission' && JSON.stringify(q.body).includes(fragment));
  async function registrations(): Promise<Record<Outcome, number>> {
    const s = await scrape(operator.op.metricsPort);
    return Object.fromEntries(OUTCOMES.map((outcome) => [outcome, sumOf(s, 'anchore_operator_admission_registrations_total', { outcome })])) as Record<Outcome, number>;
  }

  /**
   * A second replica that is not the leader (its Lease is held by another identity, for an hour), serving admission
   * from its own caches; it reads Anchore's image list once, at its start.
   */
  async function startFollower(): Promise<{ follower: TestOperator; review(name: string, image: string): Promise<ReviewAnswer>; stop(): Promise<void> }> {
    const lease = uniqueName('adm-ev-lease');
    const now = new Date().toISOString().replace('Z', '000Z');
    await apply(
      JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: lease, namespace: guarded },
        spec: { holderIdentity: 'another-replica', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
      }),
    );
    const lists = (): number => sim.requests({ method: 'GET', path: '/v2/images' }).filter((q) => q.query['full_tag'] === undefined).length;
    const listsBefore = lists();
    const tls = selfSigned(mkdtempSync(join(dir, 'follower-')), 'anchore-operator-follower');
    const follower = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm-ev'),
        NAMESPACES_INCLUDE: namespaces.join(','),
        LEADER_ELECTION: 'true',
        LEADER_ELECTION_NAMESPACE: guarded,
        LEADER_ELECTION_ID: lease,
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        ADMISSION_DEADLINE_MS: '2000',
        ADMISSION_SHUTDOWN_DELAY_SECONDS: '0',
        ANCHORE_IMAGES_REFRESH_SECONDS: '3600',
      }),
    );
    const agent = new Agent({ connect: { ca: tls.pem } });
    const stop = async (): Promise<void> => {
      await agent.close();
      await follower.stop();
    };
    try {
      expect(follower.op.isLeader()).toBe(false);
      await eventually(() => lists() > listsBefore, 10_000, 50);
    } catch (err) {
      await stop();
      throw err;
    }
    /** A dry-run review of a Deployment of `image` in `guarded` (tier=open), POSTed to the follower directly. */
    const review = async (name: string, image: string): Promise<ReviewAnswer> => {
      const object = JSON.parse(tiered(deployment(guarded, name, 1, [{ name: 'app', image }]), 'open')) as unknown;
      const body = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: `${name}-1`, kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, namespace: guarded, name, operation: 'CREATE', object, dryRun: true },
      });
      const res = await request(`https://127.0.0.1:${follower.op.admission!.port}/validate`, { method: 'POST', body, dispatcher: agent, headers: { 'content-type': 'application/json' } });
      const answer = (await res.body.json()) as { response: ReviewAnswer };
      expect(answer.response.uid).toBe(`${name}-1`);
      return answer.response;
    };
    return { follower, review, stop };
  }

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 20, analyzing_ms: 50 }, policies: { admin: [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }] } } });
    sim.setVerdict(P, { status: 'pass', final_action: 'go' });
    sim.setVerdict(F, { status: 'fail', final_action: 'stop', findings: 2 });
    // CI built docker.io/acme/bad:1.0 as F, and Anchore analysed it under that tag.
    await ciAdds('docker.io/acme/bad', F, BAD_TAG);
    for (const ns of namespaces) await apply(namespaceManifest(ns));
    const tls = selfSigned(dir, 'anchore-operator-admission', tlsIps);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('adm-ev'),
        NAMESPACES_INCLUDE: namespaces.join(','),
        ADMISSION_ENABLED: 'true',
        ADMISSION_PORT: '0',
        ADMISSION_CERT_FILE: tls.certFile,
        ADMISSION_KEY_FILE: tls.keyFile,
        ADMISSION_DEADLINE_MS: '2000',
        ADMISSION_REGISTER_NAMESPACE_PER_MINUTE: String(NS_PER_MINUTE),
        ADMISSION_SHUTDOWN_DELAY_SECONDS: '0',
        // No re-read of Anchore's image lists during the suite: an image CI adds later can only be found by a lookup.
        ANCHORE_IMAGES_REFRESH_SECONDS: '3600',
        ...listenEnv,
      }),
    );
    await apply(apb(bulk, 'gate', { enforcement: 'deny' }));
    await apply(apb(burst, 'gate', { enforcement: 'deny', failurePolicy: 'closed' }));
    await apply(apb(guarded, 'gate-open', { enforcement: 'deny', podSelector: { matchLabels: { tier: 'open' } } }));
    await apply(apb(guarded, 'gate-closed', { enforcement: 'deny', failurePolicy: 'closed', podSelector: { matchLabels: { tier: 'closed' } } }));
    await apply(webhookConfig(webhook, operator.op.admission!.port, tls.pem, [guarded, bulk, burst]));
    // The apiserver reads webhook configurations through an informer: wait until it calls ours (and the operator knows
    // the bindings). A dry run registers nothing.
    await eventually(
      async () => {
        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], tiered(deployment(guarded, 'probe', 1, [{ name: 'app', image: `registry.example/acme/probe-${run}:1.0` }]), 'closed'));
        return r.code !== 0 && r.stderr.includes('anchore-operator denied');
      },
      30_000,
      250,
    );
  });
  afterAll(async () => {
    await kubectl(['delete', 'validatingwebhookconfiguration', webhook, '--ignore-not-found']);
    await operator?.stop();
    sim?.clearFaults();
    await sim?.stop();
    for (const ns of namespaces) await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('point 1: a pod spec cannot say where a tag points', () => {
    it('when Anchore holds a failing digest F under a tag and a pod elsewhere pins a passing digest P beside that tag, then a Deployment of the plain tag is denied on F', async () => {
      await apply(pod(free, 'pins-p', [`${BAD_TAG}@${P}`]));
      // The operator registers what runs, P included, but never under the tag the spec pinned it beside: only under the
      // digest's own pseudo-tag (a tenant's pin must not become Anchore's record of where the tag points).
      const registered = await eventually(() => sim.images('admin').find((i) => i.image_digest === P), 30_000, 100);
      expect(registered.image_detail.map((d) => d.full_tag)).toEqual([`docker.io/acme/bad:${P.slice('sha256:'.length)}`]);

      const r = await kubectlRaw(['apply', '-f', '-'], tiered(deployment(guarded, 'plain-bad', 1, [{ name: 'app', image: 'acme/bad:1.0' }]), 'open'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`image ${BAD_TAG} fails Anchore policy Default bundle`);
      expect(r.stderr).toContain('final action stop');
      expect(checksOf(F).some((q) => q.query['tag'] === BAD_TAG)).toBe(true);
    });

    it('when Anchore never saw a failing digest under a tag, then a pod pinning a passing digest beside it does not make the plain tag pass: closed denies it as not judged, open only warns', async () => {
      const pSolo = digest('P-solo');
      sim.setVerdict(pSolo, { status: 'pass', final_action: 'go' });
      await apply(pod(free, 'pins-solo', [`${SOLO_TAG}@${pSolo}`]));
      await eventually(() => sim.images('admin').find((i) => i.image_digest === pSolo && i.analysis_status === 'analyzed'), 30_000, 100);

      const closed = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], tiered(deployment(guarded, 'plain-solo', 1, [{ name: 'app', image: 'acme/solo:1.0' }]), 'closed'));
      expect(closed.code).not.toBe(0);
      expect(closed.stderr).toContain(DENIED);
      expect(closed.stderr).toContain(`image ${SOLO_TAG} cannot be judged (Anchore holds no image under this tag and no pod runs it) and failurePolicy is closed`);
      expect(closed.stderr).not.toContain('final action go');
      const open = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], tiered(deployment(guarded, 'plain-solo', 1, [{ name: 'app', image: 'acme/solo:1.0' }]), 'open'));
      expect(open.code).toBe(0);
      expect(open.stderr).toContain(`image ${SOLO_TAG} was not checked against Anchore policy`);
      expect(checksOf(pSolo)).toHaveLength(0);
    });

    it('when a kubelet pulled a failing digest for a tag-only spec, then the plain tag is denied on that evidence alone (Anchore holds no record of the digest under that tag)', async () => {
      // Anchore refuses every add meanwhile, so the operator cannot file F under the tag: only the kubelet says so.
      sim.setFaults([{ method: 'POST', path: '/v2/images', status: 503, errorRate: 1 }]);
      try {
        await apply(pod(free, 'pulls-f', ['acme/pulled:1.0'], { annotations: { 'image-digest.kwok.anchore.local/c0': F } }));
        const [running] = await waitForRunningPods(free, 'app=pulls-f', 1);
        expect(digestOf(running!.containers[0]!.imageID)).toBe(F);
        // The operator saw what the kubelet pulled: it tried to add F under the tag (and Anchore refused).
        await eventually(
          () => sim.requests({ method: 'POST', path: '/v2/images' }).some((q) => q.status === 503 && JSON.stringify(q.body).includes(`"pull_string":"docker.io/acme/pulled@${F}"`)),
          30_000,
          100,
        );
        expect(sim.images('admin').some((i) => i.image_detail.some((d) => d.full_tag === PULLED_TAG))).toBe(false);

        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], tiered(deployment(guarded, 'plain-pulled', 1, [{ name: 'app', image: 'acme/pulled:1.0' }]), 'open'));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(DENIED);
        expect(r.stderr).toContain(`image ${PULLED_TAG} fails Anchore policy Default bundle`);
        expect(checksOf(F).some((q) => q.query['tag'] === PULLED_TAG)).toBe(true);
      } finally {
        sim.clearFaults();
      }
    });
    /*
     * The attacker's next move: hide the failing digest instead of adding a passing one. Pinning F beside another tag
     * once made the operator re-add F annotated as pinned, and replicas reading Anchore afterwards ignored all of F's
     * tags, CI's included (found by this test). Now a pin writes no tag record at all, so there is nothing to hide with.
     */
    it('when a tenant pins the failing digest F beside another tag, then a replica reading Anchore afterwards still resolves the plain tag to F and denies it', async () => {
      const other = 'docker.io/acme/bad:pinned-elsewhere';
      await apply(pod(free, 'pins-f-elsewhere', [`${other}@${F}`]));
      // The operator registers the running F under its pseudo-tag, never under the tag the spec wrote beside it.
      await eventually(() => sim.images('admin').find((i) => i.image_digest === F && i.image_detail.some((d) => d.full_tag === `docker.io/acme/bad:${F.slice('sha256:'.length)}`)), 30_000, 100);
      expect(
        sim
          .images('admin')
          .find((i) => i.image_digest === F)
          ?.image_detail.some((d) => d.full_tag === other),
      ).toBe(false);
      const replica = await startFollower();
      try {
        const answer = await replica.review('plain-bad-on-follower', 'acme/bad:1.0');
        expect(answer.warnings ?? []).toEqual([]);
        expect(answer.allowed).toBe(false);
        expect(answer.status?.message).toContain(`image ${BAD_TAG} fails Anchore policy Default bundle`);
      } finally {
        await replica.stop();
      }
    });
  });

  describe('point 4: what Anchore holds is known on every replica', () => {
    it('when CI adds a failing image after the operators started, then a review of its tag is judged and denied, on the leader and on a replica that is not the leader, each asking Anchore about the tag', async () => {
      // The follower has read Anchore's image list once, at its start: before CI adds the image.
      const replica = await startFollower();
      try {
        const late = digest('late');
        sim.setVerdict(late, { status: 'fail', final_action: 'stop', findings: 1 });
        await ciAdds('docker.io/acme/late', late, LATE_TAG);

        // The leader, through the apiserver.
        const lookupsBefore = tagLookups(LATE_TAG).length;
        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], tiered(deployment(guarded, 'late', 1, [{ name: 'app', image: 'acme/late:1.0' }]), 'open'));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(DENIED);
        expect(r.stderr).toContain(`image ${LATE_TAG} fails Anchore policy Default bundle`);
        expect(tagLookups(LATE_TAG).length).toBeGreaterThan(lookupsBefore);

        // The follower, asked directly (the apiserver may call any replica).
        const lookupsBeforeFollower = tagLookups(LATE_TAG).length;
        const answer = await replica.review('late-via-follower', 'acme/late:1.0');
        expect(replica.follower.op.isLeader()).toBe(false);
        expect(answer.allowed).toBe(false);
        expect(answer.status?.message).toContain(`image ${LATE_TAG} fails Anchore policy Default bundle`);
        expect(tagLookups(LATE_TAG).length).toBeGreaterThan(lookupsBeforeFollower);
      } finally {
        await replica.stop();
      }
    });
  });

  // The per-namespace budget is per minute: these four run one after the other, well within a minute of the first
  // registration this operator makes (every earlier review in the suite is a dry run or denied on policy).
  describe('point 3: registration of unknown images is bounded', () => {
    it('when one Pod names 40 unknown images and two on internal registries, then admission registers at most ADMISSION_REGISTER_MAX_PER_REVIEW of them, none on an IP address or localhost', async () => {
      const before = await registrations();
      const unknown = Array.from({ length: 40 }, (_, i) => `registry.example/acme/unknown-${run}-${i}:1.0`);
      const internal = ['10.0.0.7:5000/acme/internal:1.0', 'localhost:5000/x:1'];
      const r = await kubectlRaw(['apply', '-f', '-'], pod(bulk, 'many', [...unknown, ...internal], { unschedulable: true }));
      // failurePolicy open: admitted, with a warning for each image it could not judge.
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('admitted because failurePolicy is open');

      await eventually(async () => (await registrations()).registered - before.registered >= PER_REVIEW, 15_000, 100);
      const sent = await quiet(() => admissionAdds(`registry.example/acme/unknown-${run}-`).length);
      expect(sent).toBe(PER_REVIEW);
      expect(admissionAdds('10.0.0.7')).toHaveLength(0);
      expect(admissionAdds('localhost:5000')).toHaveLength(0);
      expect(sim.requests({ method: 'POST', path: '/v2/images' }).filter((q) => /10\.0\.0\.7|localhost:5000/.test(JSON.stringify(q.body)))).toHaveLength(0);
      const after = await registrations();
      expect(after.registered - before.registered).toBe(PER_REVIEW);
      expect(after.over_review_limit - before.over_review_limit).toBe(unknown.length - PER_REVIEW);
      expect(after.repository_not_allowed - before.repository_not_allowed).toBe(internal.length);
      expect(after.over_namespace_limit - before.over_namespace_limit).toBe(0);
    });

    it('when a review is denied because an image fails policy, then the unknown images beside it are not registered (outcome request_denied)', async () => {
      const before = await registrations();
      const unknown = [0, 1, 2].map((i) => `registry.example/acme/beside-${run}-${i}:1.0`);
      const r = await kubectlRaw(['apply', '-f', '-'], pod(bulk, 'fails-and-unknown', [`${BAD_TAG}@${F}`, ...unknown], { unschedulable: true }));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`image ${BAD_TAG}@${F} fails Anchore policy`);
      expect(r.stderr).not.toContain('sent to it for analysis');
      const after = await registrations();
      expect(after.request_denied - before.request_denied).toBe(unknown.length);
      expect(after.registered - before.registered).toBe(0);
      expect(await quiet(() => admissionAdds(`registry.example/acme/beside-${run}-`).length, 1000)).toBe(0);
    });

    it('when a review is denied under failurePolicy closed only because its image is unknown, then that image is registered and the denial says it was sent for analysis', async () => {
      const image = `registry.example/acme/closed-${run}:1.0`;
      const r = await kubectlRaw(['apply', '-f', '-'], pod(burst, 'unknown', [image]));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(DENIED);
      expect(r.stderr).toContain(`image ${image} cannot be judged`);
      expect(r.stderr).toContain('the images Anchore did not know were sent to it for analysis');
      await eventually(() => admissionAdds(image).length === 1, 10_000, 50);
    });

    it('when several such reviews arrive at once, then admission registers at most ADMISSION_REGISTER_NAMESPACE_PER_MINUTE images in the namespace (outcome over_namespace_limit)', async () => {
      const before = await registrations();
      // The namespace already spent 1 of its NS_PER_MINUTE (the previous test): 4 reviews × 2 images ask for 8 more.
      const reviews = [0, 1, 2, 3].map((i) => [0, 1].map((j) => `registry.example/acme/burst-${run}-${i}-${j}:1.0`));
      const answers = await Promise.all(reviews.map((images, i) => kubectlRaw(['apply', '-f', '-'], pod(burst, `burst-${i}`, images))));
      for (const a of answers) {
        expect(a.code).not.toBe(0);
        expect(a.stderr).toContain(DENIED);
      }
      // Those whose images were not all sent say so, and point at the metric.
      expect(answers.some((a) => a.stderr.includes('admission did not send them all'))).toBe(true);
      const budget = NS_PER_MINUTE - 1;
      await eventually(async () => (await registrations()).registered - before.registered >= budget, 15_000, 100);
      expect(await quiet(() => admissionAdds(`registry.example/acme/burst-${run}-`).length)).toBe(budget);
      const after = await registrations();
      expect(after.registered - before.registered).toBe(budget);
      expect(after.over_namespace_limit - before.over_namespace_limit).toBe(8 - budget);
    });
  });

  describe('point 6: an image reference that cannot be parsed is never skipped', () => {
    const UPPER = 'acme/UPPER:1.0';

    it('when a Pod names an image the operator cannot parse, then failurePolicy closed denies it saying so, and open admits it with a warning', async () => {
      // The apiserver itself accepts the reference (it checks only that the image is not blank)…
      const accepted = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], pod(free, 'upper', [UPPER]));
      expect(accepted.code).toBe(0);
      // …while it is no valid image reference (repository names are lowercase).
      const closed = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], pod(guarded, 'upper', [UPPER], { tier: 'closed' }));
      expect(closed.code).not.toBe(0);
      expect(closed.stderr).toContain(DENIED);
      expect(closed.stderr).toContain(`image "${UPPER}" cannot be judged (the image reference cannot be parsed`);
      expect(closed.stderr).toContain('failurePolicy is closed');
      const open = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], pod(guarded, 'upper', [UPPER], { tier: 'open' }));
      expect(open.code).toBe(0);
      expect(open.stderr).toMatch(/Warning: anchore-operator: .*image "acme\/UPPER:1\.0" was not checked against Anchore policy \(the image reference cannot be parsed/);
      expect(open.stderr).toContain('admitted because failurePolicy is open');
    });
  });

  describe('an Anchore outage', () => {
    it('when every policy check fails, then one review asks Anchore at most twice per image (one retry) and failurePolicy closed denies', async () => {
      const a = digest('outage-a');
      const b = digest('outage-b');
      await ciAdds('docker.io/acme/outage-a', a, 'docker.io/acme/outage-a:1.0');
      await ciAdds('docker.io/acme/outage-b', b, 'docker.io/acme/outage-b:1.0');
      sim.setFaults([{ method: 'GET', path: /\/check$/, status: 503, errorRate: 1 }]);
      try {
        const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], pod(guarded, 'outage', [`docker.io/acme/outage-a:1.0@${a}`, `docker.io/acme/outage-b:1.0@${b}`], { tier: 'closed' }));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(DENIED);
        expect(r.stderr).toMatch(/cannot be judged \((Anchore could not be asked|Anchore did not answer within the admission deadline)/);
        // Calls still under way when the answer went out land too: count once nothing more arrives.
        const calls = await quiet(() => [checksOf(a).length, checksOf(b).length], 1500);
        for (const n of calls) {
          expect(n).toBeGreaterThanOrEqual(1);
          expect(n).toBeLessThanOrEqual(2);
        }
      } finally {
        sim.clearFaults();
      }
    });
  });
});
