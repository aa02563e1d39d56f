import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, quiet, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, sumOf } from '../support/prometheus.ts';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Binding {
  metadata: { name: string; generation: number };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

const apb = (ns: string, name: string, spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'anchore.io/v1alpha1',
  kind: 'AnchorePolicyBinding',
  metadata: { name, namespace: ns },
  spec,
});
const cond = (b: Binding | undefined, type: string): Condition | undefined => b?.status?.conditions?.find((c) => c.type === type);

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
  { what: 'an interval that is not a duration', spec: { reevaluateInterval: 'daily' }, says: ['spec.reevaluateInterval', 'should match'] },
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
      await eventually(() => operator.op.images.catalog(`admin|${digest}`)?.analysis === 'analyzed', 30_000, 50);
    }
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

    // Stalled means left alone: over 5 s the 50 bindings cost (almost) no reconciles, and the operator stays ready.
    // Baseline once the stalls already under way have been counted (the write comes before the count).
    const before = await quiet(bindingReconciles, 1000);
    await new Promise((r) => setTimeout(r, 5_000));
    const during = (await bindingReconciles()) - before;
    expect(during).toBeLessThan(10);
    expect(operator.op.isReady()).toBe(true);

    process.stdout.write(
      `[measure] malformed bindings: good binding Ready alone in ${alone} ms; created right after 50 malformed ones in ${crowded} ms; ` +
        `all 50 Stalled with their reason ${stalledMs} ms after creation (${[...new Set(ACCEPTED_BAD.map((k) => k.reason))].join('/')}); 50/50 rejected by the apiserver with a message; ` +
        `${during} binding reconciles in the 5 s after\n`,
    );
    expect(crowded).toBeLessThanOrEqual(alone + 5_000);
  }, 240_000);
});
