import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { boundStatus } from '../../src/controllers/binding-status.ts';
import type { BindingStatus } from '../../src/crds/types.ts';
import { REEVALUATE_NOT_A_DURATION } from '../../src/crds/schema.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { KubeError } from '../../src/kube/errors.ts';
import { KubeBindingStatusWriter } from '../../src/kube/writer.ts';
import { aBinding } from '../../src/testing/factories.ts';
import { type AnchoreSimulator, DEFAULT_POLICY_ID, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, quiet, testCluster, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime?: string;
}
interface Binding {
  metadata: { name: string; generation: number; resourceVersion?: string };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    policy?: { id: string; name: string };
    summary?: Record<string, number>;
    results?: Array<{ image: string; result: string }>;
    lastEvaluationTime?: string;
  };
}

const apb = (ns: string, name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'anchore.io/v1alpha1',
  kind: 'AnchorePolicyBinding',
  metadata: { name, namespace: ns },
  spec,
});
const cond = (b: Binding | undefined, type: string): Condition | undefined => b?.status?.conditions?.find((c) => c.type === type);
/** Running images the operator has followed to analyzed, in account admin (anchore_operator_images). */
const analyzed = async (t: TestOperator): Promise<number> => sumOf(await scrape(t.op.metricsPort), 'anchore_operator_images', { account: 'admin', analysis_status: 'analyzed' });

/**
 * Bindings the apiserver accepts but the operator cannot act on, each with the Stalled reason it must get and a piece
 * of the message that tells the owner what to fix. The schema allows no invalid `images.include` glob (any non-empty
 * string up to 512 characters is a valid glob), so the glob case is an `images.exclude` that can never match.
 */
const ACCEPTED_BAD: Array<{ what: string; spec: (i: number) => Record<string, unknown>; reason: string; message: (i: number) => string }> = [
  {
    what: 'a policyId Anchore does not have',
    spec: (i) => ({ podSelector: { matchLabels: { app: 'target' } }, policyId: `no-such-policy-${i}` }),
    reason: 'PolicyNotFound',
    message: (i) => `has no policy with id "no-such-policy-${i}"`,
  },
  {
    what: 'an account Anchore does not have',
    spec: (i) => ({ podSelector: { matchLabels: { app: 'target' } }, account: `no-such-account-${i}` }),
    reason: 'AccountNotFound',
    message: (i) => `Anchore account "no-such-account-${i}" does not exist`,
  },
  {
    what: 'an images.exclude glob that can never match',
    spec: () => ({ podSelector: { matchLabels: { app: 'target' } }, images: { exclude: ['nginx:*'] } }),
    reason: 'InvalidSpec',
    message: () => 'spec.images.exclude: invalid image exclusion "nginx:*"',
  },
  {
    what: 'a matchLabels key that is not a label key',
    spec: () => ({ podSelector: { matchLabels: { 'bad key!': 'x' } } }),
    reason: 'InvalidSelector',
    message: () => 'spec.podSelector: ',
  },
  {
    what: 'a matchExpressions value that is not a label value',
    spec: () => ({ podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['not a label value'] }] } }),
    reason: 'InvalidSelector',
    message: () => 'label value "not a label value"',
  },
];

/** Bindings the apiserver must refuse (structural schema, CEL, strict field validation), with what it must say. */
const REJECTED: Array<{ what: string; spec: Record<string, unknown>; says: string[] }> = [
  { what: 'an unknown mode', spec: { mode: 'scan' }, says: ['spec.mode', 'Unsupported value: "scan"'] },
  { what: 'an unknown failOn', spec: { failOn: 'maybe' }, says: ['spec.failOn', 'Unsupported value: "maybe"'] },
  { what: 'an interval below 1m', spec: { reevaluateInterval: '30s' }, says: ['spec.reevaluateInterval', 'reevaluateInterval must be at least 1m'] },
  { what: 'an interval that is not a duration', spec: { reevaluateInterval: 'daily' }, says: ['spec.reevaluateInterval', REEVALUATE_NOT_A_DURATION] },
  { what: 'policyId with mode analyze', spec: { mode: 'analyze', policyId: 'x' }, says: ['spec.policyId', 'policyId applies only to mode evaluate'] },
  { what: 'failOn with mode analyze', spec: { mode: 'analyze', failOn: 'warn' }, says: ['spec.failOn', 'failOn applies only to mode evaluate'] },
  { what: 'In without values', spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }, says: ['matchExpressions[0]', 'In and NotIn need at least one value'] },
  { what: 'Exists with values', spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } }, says: ['matchExpressions[0]', 'Exists and DoesNotExist take none'] },
  { what: 'an unknown selector operator', spec: { podSelector: { matchExpressions: [{ key: 'app', operator: 'Like' }] } }, says: ['operator', 'Unsupported value: "Like"'] },
  { what: 'an invalid account name', spec: { account: 'bad account!' }, says: ['spec.account', 'should match'] },
  { what: 'an empty include glob', spec: { images: { include: [''] } }, says: ['spec.images.include[0]', 'at least 1 chars long'] },
  { what: 'a string for suspend', spec: { suspend: 'yes' }, says: ['spec.suspend', 'must be of type boolean'] },
  { what: 'an unknown field', spec: { polcyId: 'typo' }, says: ['unknown field "spec.polcyId"'] },
];

/*
 * A namespace flooded with malformed AnchorePolicyBindings: the apiserver turns away what the schema can express, the
 * operator marks the rest Stalled with a reason (no retry loop), and a good binding created in the middle of it goes
 * Ready about as fast as it does alone. Operator in-process, scoped to this namespace; the simulator as Anchore.
 */
describe('malformed bindings at volume (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('badbind');

  const getApb = (name: string): Promise<Binding> => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
  const listApb = async (): Promise<Map<string, Binding>> => new Map((await getJson<{ items: Binding[] }>(['anchorepolicybindings', '-n', ns])).items.map((b) => [b.metadata.name, b]));
  /** Applies a binding and returns the ms until the apiserver shows it Ready=True (polled from outside, ~50 ms steps). */
  async function timeToReady(name: string, app: string): Promise<number> {
    const t0 = Date.now();
    await apply(JSON.stringify(apb(ns, name, { podSelector: { matchLabels: { app } } })));
    const b = await eventually(
      async () => {
        const x = await getApb(name);
        return cond(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      60_000,
      50,
    );
    const ms = Date.now() - t0;
    expect(cond(b, 'Ready')?.reason).toBe('Evaluated');
    expect(cond(b, 'Stalled')).toBeUndefined();
    return ms;
  }
  const bindingReconciles = async (): Promise<number> => sumOf(await scrape(operator.op.metricsPort), 'anchore_operator_reconcile_total', { controller: 'binding' });

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('badbind'), NAMESPACES_INCLUDE: ns, INTEGRATION_ENABLED: 'false', METRICS_VULNERABILITIES: 'false', LOG_LEVEL: 'info' }),
    );
    // Two good workloads with an image each (one per good binding, so the second cannot ride on the first's cached
    // evaluation) and the target the malformed bindings select.
    await apply(deployment(ns, 'good-a', 1, [{ name: 'app', image: 'badbind.registry.local/good-a:1.0' }]));
    await apply(deployment(ns, 'good-b', 1, [{ name: 'app', image: 'badbind.registry.local/good-b:1.0' }]));
    await apply(deployment(ns, 'target', 1, [{ name: 'app', image: 'badbind.registry.local/target:1.0' }]));
    for (const app of ['good-a', 'good-b', 'target']) {
      const [pod] = await waitForRunningPods(ns, `app=${app}`, 1);
      const digest = digestOf(pod?.containers[0]?.imageID ?? '') ?? '';
      sim.setVerdict(digest, { status: 'pass', final_action: 'go' });
    }
    await eventually(async () => (await analyzed(operator)) === 3, 30_000, 50);
  }, 180_000);
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when 50 malformed bindings the apiserver accepts and 50 it rejects arrive, then each rejection says what is wrong, each accepted one is Stalled with its reason without retry loops, and a good binding is Ready as fast as alone (within 5 s)', async () => {
    const alone = await timeToReady('good-alone', 'good-a');

    // 50 accepted-but-malformed bindings in one request, then at once a good one while they are being reconciled.
    const bad = Array.from({ length: 50 }, (_, i) => ({ name: `bad-${i}`, i, kind: ACCEPTED_BAD[i % ACCEPTED_BAD.length]! }));
    const createdAt = Date.now();
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: bad.map((b) => apb(ns, b.name, b.kind.spec(b.i))) }));
    // Watched from now on, alongside what follows: every accepted malformed binding must end Stalled.
    const allStalled = eventually(
      async () => {
        const all = await listApb();
        return bad.every((b) => cond(all.get(b.name), 'Stalled')?.status === 'True') ? { all, ms: Date.now() - createdAt } : undefined;
      },
      60_000,
      100,
    );
    const crowded = await timeToReady('good-crowded', 'good-b');

    // 50 the apiserver must refuse, one request each so that each message is its own.
    const rejected = Array.from({ length: 50 }, (_, i) => ({ name: `rejected-${i}`, kind: REJECTED[i % REJECTED.length]! }));
    const answers = await Promise.all(rejected.map(async (r) => ({ ...r, res: await kubectlRaw(['apply', '-f', '-'], JSON.stringify(apb(ns, r.name, r.kind.spec))) })));
    for (const a of answers) {
      expect({ what: a.kind.what, code: a.res.code === 0 ? 0 : 'failed' }).toEqual({ what: a.kind.what, code: 'failed' });
      // Names the object (a decoding error, such as an unknown field, names its kind), the field and what is wrong.
      const said = a.res.stderr.trim();
      expect({ what: a.kind.what, names: said.includes(`AnchorePolicyBinding "${a.name}" is invalid`) || said.includes('cannot be handled as a AnchorePolicyBinding') }).toEqual({
        what: a.kind.what,
        names: true,
      });
      for (const s of a.kind.says) expect({ what: a.kind.what, said }).toEqual({ what: a.kind.what, said: expect.stringContaining(s) });
    }
    const stored = await listApb();
    expect([...stored.keys()].filter((n) => n.startsWith('rejected-'))).toEqual([]);

    // Every accepted malformed binding is Stalled (and not Ready) with the right reason and an actionable message.
    const { all: settled, ms: stalledMs } = await allStalled;
    for (const b of bad) {
      const x = settled.get(b.name);
      const stalled = cond(x, 'Stalled');
      expect({ name: b.name, what: b.kind.what, reason: stalled?.reason, ready: cond(x, 'Ready')?.status, observed: x?.status?.observedGeneration === x?.metadata.generation }).toEqual({
        name: b.name,
        what: b.kind.what,
        reason: b.kind.reason,
        ready: 'False',
        observed: true,
      });
      expect({ name: b.name, message: stalled?.message }).toEqual({ name: b.name, message: expect.stringContaining(b.kind.message(b.i)) });
    }

    // Stalled means left alone: once the stalls under way have been counted, the binding queue holds no ready key, and
    // the only delayed ones are the slow rechecks (15 s, 5 min) of what lives in Anchore (a policy, an account) and
    // of the good bindings: nothing else will run until something changes. A stall retried like a failure (backoff
    // from 2 s) keeps its key delayed, so the 30 invalid specs and selectors would show here.
    const before = await quiet(bindingReconciles, 1000);
    const slowRechecks = bad.filter((b) => b.kind.reason === 'PolicyNotFound' || b.kind.reason === 'AccountNotFound').length + 2;
    const parked = await eventually(
      async () => {
        const s = await scrape(operator.op.metricsPort);
        const ready = sumOf(s, 'anchore_operator_workqueue_depth', { queue: 'binding', state: 'ready' });
        const delayed = sumOf(s, 'anchore_operator_workqueue_depth', { queue: 'binding', state: 'delayed' });
        if (ready > 0 || delayed > slowRechecks) throw new Error(`binding queue: ${ready} ready, ${delayed} delayed (at most ${slowRechecks} slow rechecks expected)`);
        return delayed;
      },
      10_000,
      100,
    );
    const during = (await bindingReconciles()) - before;
    expect(during).toBeLessThan(10);
    expect(operator.op.isReady()).toBe(true);

    process.stdout.write(
      `[measure] malformed bindings: good binding Ready alone in ${alone} ms; created right after 50 malformed ones in ${crowded} ms; ` +
        `all 50 Stalled with their reason ${stalledMs} ms after creation (${[...new Set(ACCEPTED_BAD.map((k) => k.reason))].join('/')}); 50/50 rejected by the apiserver with a message; ` +
        `${during} binding reconciles after, ${parked} keys parked for a slow recheck\n`,
    );
    expect(crowded).toBeLessThanOrEqual(alone + 5_000);
  }, 240_000);
});

/** Code points, as the apiserver counts a string's maxLength. */
const chars = (s: string | undefined): number => [...(s ?? '')].length;
/** A valid label value of 63 characters (the schema's and Kubernetes' maximum). */
const labelValue = (i: number, j: number): string => `v${i}-${j}-`.padEnd(62, 'x') + '0';
/** A valid label key of 317 characters (the schema's maximum): a 253-character DNS prefix and a 63-character name. */
const labelKey = (i: number): string => `${[`p${i}`.padEnd(63, 'a'), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.')}/${`n${i}`.padEnd(62, 'n')}0`;
/** As many matchExpressions (32) with as many values (64) of the longest kind as the schema admits. */
const hugeSelector = (operator: 'In' | 'NotIn'): Record<string, unknown> => ({
  matchExpressions: Array.from({ length: 32 }, (_, i) => ({ key: labelKey(i), operator, values: Array.from({ length: 64 }, (_, j) => labelValue(i, j)) })),
});
/** `n` image globs of 512 characters (the schema's maximum) that match nothing running. */
const hugeGlobs = (what: string, n = 100): string[] => Array.from({ length: n }, (_, i) => `registry.invalid/${what}-${i}/`.padEnd(509, 'g') + '/**');

/*
 * Bindings as large as the CRD admits: their selection, quoted in condition messages, runs to hundreds of kilobytes,
 * far past the schema's 32,768-character limit on a condition message. Every status the operator writes is bounded
 * to the schema's limits (src/crds/schema.ts), so each of them gets its conditions. Against the real apiserver, which
 * enforces those limits with 422 Invalid.
 */
describe('bindings at the size the CRD admits (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('bigbind');
  const image = 'bigbind.registry.local/target:1.0';
  let messageLimit = 0;

  const getApb = (name: string): Promise<Binding> => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
  /** kubectl create, not apply: apply would copy a spec this large into an annotation, which has a 256 KiB limit. */
  const create = async (obj: Record<string, unknown>): Promise<void> => {
    const r = await kubectlRaw(['create', '-f', '-'], JSON.stringify(obj));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  };
  /** Each condition's message fits the schema; a cut one ends with how much was left out. */
  const expectBounded = (b: Binding): void => {
    for (const c of b.status?.conditions ?? []) {
      expect({ type: c.type, fits: chars(c.message) <= messageLimit }).toEqual({ type: c.type, fits: true });
    }
  };

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 50, analyzing_ms: 100 } } });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('bigbind'), NAMESPACES_INCLUDE: ns, INTEGRATION_ENABLED: 'false', METRICS_VULNERABILITIES: 'false', LOG_LEVEL: 'info' }),
    );
    await apply(deployment(ns, 'target', 1, [{ name: 'app', image }]));
    const [pod] = await waitForRunningPods(ns, 'app=target', 1);
    const digest = digestOf(pod?.containers[0]?.imageID ?? '') ?? '';
    sim.setVerdict(digest, { status: 'pass', final_action: 'go' });
    await eventually(async () => (await analyzed(operator)) === 1, 30_000, 50);
    // The limit the apiserver enforces, read from the CRD it serves.
    const crd = await getJson<{ spec: { versions: Array<{ schema: { openAPIV3Schema: any } }> } }>(['crd', 'anchorepolicybindings.anchore.io']);
    messageLimit = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.status.properties.conditions.items.properties.message.maxLength as number;
    expect(messageLimit).toBe(32768);
  }, 180_000);
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when an AnchorePolicyBinding has the largest selectors and globs the CRD admits and matches nothing, then Ready and Compliant are written, their messages cut to the limit with a count of what was left out', async () => {
    await create(apb(ns, 'huge-none', { podSelector: hugeSelector('In'), images: { include: hugeGlobs('include'), exclude: hugeGlobs('exclude') } }));
    const b = await eventually(
      async () => {
        const x = await getApb('huge-none');
        return cond(x, 'Ready') ? x : undefined;
      },
      30_000,
      200,
    );
    expect(b.status?.observedGeneration).toBe(b.metadata.generation);
    expect(cond(b, 'Ready')).toMatchObject({ status: 'True', reason: 'NoMatchingImages', message: expect.stringMatching(/^No running image matches this binding \(podSelector /) });
    expect(cond(b, 'Compliant')).toMatchObject({ status: 'Unknown', reason: 'NoMatchingImages' });
    for (const type of ['Ready', 'Compliant']) {
      const m = cond(b, type)?.message;
      expect({ type, length: chars(m) }).toEqual({ type, length: messageLimit });
      expect({ type, m: m?.slice(-40) }).toEqual({ type, m: expect.stringMatching(/… \(\d+ more characters\)$/) });
    }
    expectBounded(b);
  });

  it('when such a binding selects a running image, then it is evaluated (Ready) and, with an unknown policy, Stalled — each with its conditions written', async () => {
    const spec = { podSelector: hugeSelector('NotIn'), images: { include: [...hugeGlobs('include', 99), 'bigbind.registry.local/**'], exclude: hugeGlobs('exclude') } };
    await create(apb(ns, 'huge-match', spec));
    await create(apb(ns, 'huge-stalled', { ...spec, policyId: 'no-such-policy' }));
    const ready = await eventually(
      async () => {
        const x = await getApb('huge-match');
        return cond(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      30_000,
      200,
    );
    expect(cond(ready, 'Ready')?.reason).toBe('Evaluated');
    expect(cond(ready, 'Compliant')).toMatchObject({ status: 'True', reason: 'PolicyPassed' });
    expect(ready.status?.summary).toMatchObject({ images: 1, passed: 1 });
    const stalled = await eventually(
      async () => {
        const x = await getApb('huge-stalled');
        return cond(x, 'Stalled')?.status === 'True' ? x : undefined;
      },
      30_000,
      200,
    );
    expect(cond(stalled, 'Stalled')?.reason).toBe('PolicyNotFound');
    expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'PolicyNotFound' });
    expectBounded(ready);
    expectBounded(stalled);
  });

  it('when a ClusterAnchorePolicyBinding has the largest namespace and pod selectors, namespaces and globs the CRD admits, then its conditions are written within the limit', async () => {
    const name = uniqueName('huge-capb');
    try {
      await create({
        apiVersion: 'anchore.io/v1alpha1',
        kind: 'ClusterAnchorePolicyBinding',
        metadata: { name },
        spec: {
          namespaceSelector: hugeSelector('In'),
          namespaces: Array.from({ length: 256 }, (_, i) => `ns-${i}-`.padEnd(252, 'n') + '*'),
          podSelector: hugeSelector('In'),
          images: { include: hugeGlobs('include'), exclude: hugeGlobs('exclude') },
        },
      });
      // Any install may own a cluster binding (another suite's operator too): what matters is that one could write it.
      const b = await eventually(
        async () => {
          const x = await getJson<Binding>(['capb', name]);
          return cond(x, 'Ready') ? x : undefined;
        },
        30_000,
        200,
      );
      expect(cond(b, 'Ready')).toMatchObject({ status: 'True', reason: 'NoMatchingImages' });
      expect(chars(cond(b, 'Ready')?.message)).toBe(messageLimit);
      expectBounded(b);
    } finally {
      await kubectl(['delete', 'capb', name, '--ignore-not-found', '--wait=false']);
    }
  });

  it('when a status goes past every limit of the schema, then the apiserver refuses it as it is (422 Invalid, naming the field) and accepts it once bounded', async () => {
    // A namespace no operator watches: only this test writes the status.
    const raw = uniqueName('bigbind-raw');
    await apply(namespaceManifest(raw));
    const client = new KubeClient({ kubeconfig: testCluster().kubeconfig });
    try {
      await create(apb(raw, 'raw', { suspend: true }));
      const writer = new KubeBindingStatusWriter(client);
      const binding = aBinding('raw', raw);
      const long = (c: string, n: number): string => c.repeat(n);
      const over: BindingStatus = {
        observedGeneration: 1,
        conditions: [
          // Multi-byte characters: the limit counts characters, not bytes.
          { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z', reason: long('R', 2000), message: long('é', 40_000) },
          { type: 'Compliant', status: 'False', lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'PolicyFailed', message: long('😀', 33_000) },
        ],
        results: [
          {
            image: 'bigbind.registry.local/raw:1',
            result: 'fail',
            message: long('m', 5000),
            topFindings: Array.from({ length: 8 }, (_, i) => ({ gate: 'g', trigger: 't', action: 'stop', message: long(String(i), 3000) })),
            workloads: Array.from({ length: 25 }, (_, i) => `${raw}/Deployment/w${String(i).padStart(2, '0')}`),
          },
        ],
      };
      const refused = await writer.patchStatus(binding, over).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(KubeError);
      expect(refused).toMatchObject({ kind: 'invalid', status: 422, reason: 'Invalid', message: expect.stringContaining('status.conditions[0].message') });

      const { status: bounded } = boundStatus(over);
      await writer.patchStatus(binding, bounded);
      const stored = await getJson<{ status: BindingStatus }>(['anchorepolicybinding', 'raw', '-n', raw]);
      expect(stored.status).toEqual(bounded);
      const [ready, compliant] = stored.status.conditions ?? [];
      expect(chars(ready?.message)).toBe(messageLimit);
      expect(ready?.message).toMatch(/^é+… \(\d+ more characters\)$/);
      expect(chars(compliant?.message)).toBe(messageLimit);
      const r0 = stored.status.results?.[0];
      expect(r0?.topFindings).toHaveLength(5);
      expect(r0?.workloads).toHaveLength(10);
      expect(r0?.workloads?.[9]).toBe('… and 16 more');
    } finally {
      await client.close();
      await kubectl(['delete', 'namespace', raw, '--wait=false', '--ignore-not-found']);
    }
  });
});

/*
 * What a binding's status says while Anchore-side state is wrong: a policy deleted there no longer shows as the
 * binding's policy, nor do its verdicts; an Anchore that does not answer keeps the last known verdict (Compliant) and
 * is told once by an Event. Operator in-process, scoped to its namespace; the simulator as Anchore.
 */
describe('binding status while Anchore-side state is wrong (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('anchoreside');
  /**
   * How often the operator said that binding `name` cannot be evaluated for `reason`: each time it does, it logs one
   * warning "binding cannot be evaluated" and records one Warning Event (which its recorder may then hold back: the
   * second AnchoreUnavailable within a minute is not written again).
   */
  const toldOf = (name: string, reason: string): number =>
    operator.logs
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg?: string; name?: string; namespace?: string; reason?: string })
      .filter((l) => l.msg?.startsWith('binding cannot be evaluated') && l.namespace === ns && l.name === name && l.reason === reason).length;

  const getApb = (name: string): Promise<Binding> => getJson<Binding>(['anchorepolicybinding', name, '-n', ns]);
  const until = (name: string, ok: (b: Binding) => boolean, timeoutMs = 30_000): Promise<Binding> =>
    eventually(
      async () => {
        const x = await getApb(name);
        return ok(x) ? x : undefined;
      },
      timeoutMs,
      200,
    );
  const eventsFor = async (name: string): Promise<Array<{ reason: string; type: string; note: string }>> =>
    (await getJson<{ items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }> }>(['events.events.k8s.io', '-n', ns])).items.filter((e) => e.regarding.name === name);

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 50, analyzing_ms: 100 },
        policies: {
          admin: [
            { policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true },
            { policy_id: 'doomed', name: 'Doomed' },
          ],
        },
      },
    });
    await apply(namespaceManifest(ns));
    operator = await startTestOperator(
      operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('anchoreside'), NAMESPACES_INCLUDE: ns, INTEGRATION_ENABLED: 'false', METRICS_VULNERABILITIES: 'false', LOG_LEVEL: 'info' }),
    );
    await apply(deployment(ns, 'target', 1, [{ name: 'app', image: 'anchoreside.registry.local/target:1.0' }]));
    const [pod] = await waitForRunningPods(ns, 'app=target', 1);
    const digest = digestOf(pod?.containers[0]?.imageID ?? '') ?? '';
    sim.setVerdict(digest, { status: 'fail', final_action: 'stop', findings: 1 });
    await eventually(async () => (await analyzed(operator)) === 1, 30_000, 50);
  }, 180_000);
  afterAll(async () => {
    sim?.clearFaults();
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the policy a binding evaluates against is deleted in Anchore, then it is Stalled with PolicyNotFound and status.policy, summary and results are cleared; restored, they come back', async () => {
    await apply(JSON.stringify(apb(ns, 'doomed', { podSelector: { matchLabels: { app: 'target' } }, policyId: 'doomed' })));
    const evaluated = await until('doomed', (x) => cond(x, 'Ready')?.status === 'True');
    expect(evaluated.status?.policy).toMatchObject({ id: 'doomed', name: 'Doomed' });
    expect(evaluated.status?.results).toHaveLength(1);
    expect(cond(evaluated, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed' });

    sim.deletePolicy('admin', 'doomed');
    await kubectl(['annotate', 'apb', 'doomed', '-n', ns, 'anchore.io/reevaluate=deleted', '--overwrite']);
    const stalled = await until('doomed', (x) => cond(x, 'Stalled')?.status === 'True');
    expect(cond(stalled, 'Stalled')).toMatchObject({ reason: 'PolicyNotFound', message: expect.stringContaining('has no policy with id "doomed"') });
    expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'PolicyNotFound' });
    // Nothing in status claims a policy, or verdicts of it, that Anchore no longer has.
    expect(stalled.status?.policy).toBeUndefined();
    expect(stalled.status?.results).toBeUndefined();
    expect(stalled.status?.summary).toBeUndefined();
    expect(stalled.status?.lastEvaluationTime).toBeUndefined();
    expect(cond(stalled, 'Compliant')).toBeUndefined();
    expect((await kubectl(['get', 'apb', 'doomed', '-n', ns])).split('\n')[1]).toMatch(/^doomed\s+evaluate\s+False\s+PolicyNotFound\s/);

    // Recreated in Anchore: the stalled binding's own recheck (every 15 s) finds it, without touching the binding.
    sim.putPolicy('admin', { policy_id: 'doomed', name: 'Doomed' });
    const back = await until('doomed', (x) => cond(x, 'Ready')?.status === 'True', 40_000);
    expect(back.status?.policy).toMatchObject({ id: 'doomed', name: 'Doomed' });
    expect(back.status?.results).toHaveLength(1);
    expect(cond(back, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed' });
  }, 90_000);

  it('when Anchore answers 503, then Ready=False AnchoreUnavailable keeps Compliant with the last verdict and when it was established, and one Warning Event is written per transition, not per retry', async () => {
    await apply(JSON.stringify(apb(ns, 'verdict', { podSelector: { matchLabels: { app: 'target' } } })));
    const before = await until('verdict', (x) => cond(x, 'Ready')?.status === 'True');
    expect(cond(before, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: '1 image(s) fail policy Default bundle' });

    // 1. The checks fail (the policy list still answers): the evaluate step meets the outage.
    sim.setFaults([{ path: /^\/v2\/images\/[^/]+\/check$/, status: 503 }]);
    await kubectl(['annotate', 'apb', 'verdict', '-n', ns, 'anchore.io/reevaluate=outage-1', '--overwrite']);
    const down = await until('verdict', (x) => cond(x, 'Ready')?.reason === 'AnchoreUnavailable');
    expect(cond(down, 'Ready')?.status).toBe('False');
    expect(cond(down, 'Reconciling')).toMatchObject({ status: 'True', reason: 'AnchoreUnavailable' });
    const compliant = cond(down, 'Compliant');
    expect(compliant).toMatchObject({ status: 'False', reason: 'PolicyFailed', lastTransitionTime: cond(before, 'Compliant')?.lastTransitionTime });
    expect(compliant?.message).toMatch(/^From the last successful evaluation at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(Anchore is unavailable now\): 1 image\(s\) fail policy Default bundle$/);
    expect(down.status?.summary).toMatchObject({ images: 1, failed: 1 });
    expect(down.status?.lastEvaluationTime).toBe(before.status?.lastEvaluationTime);
    await eventually(async () => (await eventsFor('verdict')).some((e) => e.reason === 'AnchoreUnavailable' && e.type === 'Warning'), 15_000, 250);
    expect((await eventsFor('verdict')).filter((e) => e.reason === 'AnchoreUnavailable')).toHaveLength(1);

    // Retried every 10 s while Anchore stays away: no new Event, no new status write.
    const checks = (): number => sim.requests({ path: /\/check$/ }).length;
    const checksDown = checks();
    await eventually(() => checks() >= checksDown + 2, 40_000, 500);
    const still = await getApb('verdict');
    expect(still.metadata.resourceVersion).toBe(down.metadata.resourceVersion);
    expect(toldOf('verdict', 'AnchoreUnavailable')).toBe(1);

    sim.clearFaults();
    const up = await until('verdict', (x) => cond(x, 'Ready')?.status === 'True', 30_000);
    expect(cond(up, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: '1 image(s) fail policy Default bundle' });

    // 2. The policy list fails (a forced re-evaluation reads it fresh): the policy step meets the outage.
    sim.setFaults([{ path: '/v2/policies', status: 503 }]);
    await kubectl(['annotate', 'apb', 'verdict', '-n', ns, 'anchore.io/reevaluate=outage-2', '--overwrite']);
    const down2 = await until('verdict', (x) => cond(x, 'Ready')?.reason === 'AnchoreUnavailable');
    expect(cond(down2, 'Compliant')).toMatchObject({
      status: 'False',
      reason: 'PolicyFailed',
      message: expect.stringMatching(/^From the last successful evaluation at .*: 1 image\(s\) fail policy Default bundle$/),
    });
    expect(down2.status?.policy).toMatchObject({ id: DEFAULT_POLICY_ID });
    const policyCalls = (): number => sim.requests({ path: '/v2/policies' }).length;
    const callsDown = policyCalls();
    await eventually(() => policyCalls() >= callsDown + 2, 40_000, 500);
    expect(toldOf('verdict', 'AnchoreUnavailable')).toBe(2);
    sim.clearFaults();
    await until('verdict', (x) => cond(x, 'Ready')?.status === 'True', 30_000);
  }, 180_000);
});
