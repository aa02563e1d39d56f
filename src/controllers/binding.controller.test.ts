import { afterEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import type { PolicyCheck, PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingInfo, BindingSpec, BindingStatus, Condition } from '../crds/types.ts';
import { type BindingStatusWriter, KubeError, type ObjectRef } from '../kube/cluster.port.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import { Scope } from '../model/scope.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aBinding, aContainer, aNamespace, aPod, memoryStores } from '../testing/factories.ts';
import { MemoryStore } from '../testing/memory-store.ts';
import { BindingController } from './binding.controller.ts';

/*
 * The binding controller's reconcile with its ports faked: the status writer (as the apiserver answers), the Event
 * recorder, the evaluation cache (as Anchore answers). What the step functions cannot show on their own: what is
 * written, told (Events, log) and retried across reconciles.
 */
const DIGEST = `sha256:${'a'.repeat(64)}`;
const POLICIES: PolicyRecord[] = [{ policy_id: 'p1', name: 'Strict', active: true }];
const failing: PolicyCheck = {
  policy_id: 'p1',
  image_digest: DIGEST,
  evaluated_tag: 'docker.io/library/nginx:1.27',
  status: 'fail',
  final_action: 'stop',
  final_action_reason: 'policy_evaluation',
  number_of_findings: 1,
  findings: [],
};

interface Told {
  ref: ObjectRef;
  type: string;
  reason: string;
  note: string;
}

const controllers: BindingController[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.queue.shutdown(1000);
});

function harness() {
  const stores = memoryStores();
  stores.namespaces.put(aNamespace('shop'));
  stores.pods.put(aPod('shop', 'web', [aContainer('app', 'nginx:1.27', { digest: DIGEST })]));
  const bindings = new MemoryStore<BindingInfo>('anchorepolicybindings');
  const events: Told[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      cb();
    },
  });
  /** What Anchore and the apiserver do next. */
  const state: { policies: PolicyRecord[]; policiesDown: boolean; checksDown: boolean; reject?: () => Error } = { policies: POLICIES, policiesDown: false, checksDown: false };
  const writes: BindingStatus[] = [];
  const writer: BindingStatusWriter = {
    patchStatus: async (b, status) => {
      if (state.reject) throw state.reject();
      writes.push(structuredClone(status));
      // As the apiserver would: the stored binding now has this status (and a new resourceVersion).
      bindings.put({ ...b, resourceVersion: String(Number(b.resourceVersion) + 1), status: structuredClone(status) });
    },
  };
  const images = {
    catalog: () => ({ digest: DIGEST, analysis: 'analyzed', polls: 0, tags: new Set<string>() }),
    reRegistering: () => false,
    recheck: () => true,
    onAnalysisFinal: () => undefined,
    onVanished: () => undefined,
    demand: () => undefined,
    ensureAccount: async () => undefined,
  } as unknown as ImageRegistry;
  const cache = {
    policies: async () => {
      if (state.policiesDown) throw new AnchoreError('unavailable', 'listPolicies', 'HTTP 503');
      return state.policies;
    },
    check: async () => {
      if (state.checksDown) throw new AnchoreError('unavailable', 'checkImage', 'HTTP 503');
      return failing;
    },
    prune: () => undefined,
    invalidateAccount: () => undefined,
  } as unknown as EvaluationCache;
  const controller = new BindingController({
    stores,
    bindings,
    clusterBindings: new MemoryStore<BindingInfo>('clusteranchorepolicybindings'),
    scope: new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] }),
    images,
    cache,
    writer,
    events: { event: (ref, type, reason, _action, note) => void events.push({ ref, type, reason, note }) },
    workers: 1,
    policyPollMs: 0,
    log: createLogger({ level: 'debug', pretty: false }, sink),
    metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
    installId: 'ops/anchore-operator',
  });
  controllers.push(controller);
  const add = (spec: BindingSpec = { podSelector: { matchLabels: { app: 'web' } } }): BindingInfo => {
    const b = aBinding('web', 'shop', spec);
    bindings.put(b);
    return b;
  };
  /** One reconcile; what it threw (for the work queue), if anything. */
  const reconcile = (b: BindingInfo): Promise<unknown> =>
    controller.reconcile(b.key).then(
      () => undefined,
      (err: unknown) => err,
    );
  const current = (b: BindingInfo): BindingInfo => bindings.get(b.key) as BindingInfo;
  const cond = (b: BindingInfo, type: string): Condition | undefined => current(b).status.conditions?.find((c) => c.type === type);
  const told = (reason: string): Told[] => events.filter((e) => e.reason === reason);
  return { controller, state, writes, events, logs, add, reconcile, current, cond, told };
}

/** The error the Kubernetes client throws for a 422 (the cluster port's KubeError of kind invalid). */
const invalid = (cause: string): Error => new KubeError(422, 'Invalid', `PATCH /apis/anchore.io/v1alpha1/namespaces/shop/anchorepolicybindings/web/status: 422 Invalid: ${cause}`);

describe('binding controller: status writes the apiserver refuses', () => {
  const cause = 'AnchorePolicyBinding.anchore.io "web" is invalid: status.conditions[0].message: Too long: may not be more than 32768 bytes';

  it('when the apiserver answers 422 to every status write, then one Warning Event and one log line carry its cause, however often it is retried; a new cause is told again', async () => {
    const h = harness();
    const b = h.add();
    h.state.reject = () => invalid(cause);
    for (let i = 0; i < 4; i++) expect(await h.reconcile(b)).toMatchObject({ status: 422 });
    expect(h.told('StatusRejected')).toEqual([
      { ref: expect.objectContaining({ kind: 'AnchorePolicyBinding', name: 'web', namespace: 'shop' }), type: 'Warning', reason: 'StatusRejected', note: expect.stringContaining(cause) },
    ]);
    expect(h.told('StatusRejected')[0]?.note).not.toContain('PATCH /apis');
    const warned = h.logs.filter((l) => l['level'] === 'warn' && l['cause'] === cause);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ name: 'web', namespace: 'shop', reason: 'Invalid', msg: expect.stringContaining('refused the binding status') });

    h.state.reject = () => invalid(`${cause}, status.results[0].message: Too long`);
    await h.reconcile(b);
    expect(h.told('StatusRejected')).toHaveLength(2);

    // Once a write succeeds, the next refusal is news again.
    h.state.reject = undefined;
    expect(await h.reconcile(b)).toBeUndefined();
    expect(h.current(b).status.conditions).toBeDefined();
    h.state.reject = () => invalid(cause);
    await h.controller.reconcile(b.key).catch(() => undefined);
    // The status is unchanged, so nothing is written (or refused) until it changes.
    expect(h.told('StatusRejected')).toHaveLength(2);
  });

  it('when the apiserver refuses a status, then the work queue backs off (a failure, not a tight loop)', async () => {
    const h = harness();
    const b = h.add();
    let attempts = 0;
    h.state.reject = () => (attempts++, invalid(cause));
    // Queued when the store announced the binding; dispatched from now on.
    h.controller.queue.start();
    const t0 = Date.now();
    while (h.controller.queue.failures(b.key) < 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(h.controller.queue.failures(b.key)).toBe(1);
    // The binding queue's backoff starts at 2 s (±30 %): no second attempt within a second.
    await new Promise((r) => setTimeout(r, 1000));
    expect(attempts).toBe(1);
    expect(h.told('StatusRejected')).toHaveLength(1);
  });

  it('when a binding selects more than a condition message can hold, then the status it writes is bounded to the schema, and an unchanged one is not written again', async () => {
    const h = harness();
    const include = Array.from({ length: 100 }, (_, i) => `registry.invalid/${i}/`.padEnd(512, 'g'));
    const b = h.add({ podSelector: { matchLabels: { app: 'web' } }, images: { include } });
    expect(await h.reconcile(b)).toBeUndefined();
    const ready = h.cond(b, 'Ready');
    expect(ready).toMatchObject({ status: 'True', reason: 'NoMatchingImages' });
    expect([...(ready?.message ?? '')]).toHaveLength(32768);
    expect(ready?.message).toMatch(/… \(\d+ more characters\)$/);
    expect(h.cond(b, 'Compliant')?.message).toMatch(/… \(\d+ more characters\)$/);
    expect(await h.reconcile(h.current(b))).toBeUndefined();
    expect(h.writes).toHaveLength(1);
  });
});

describe('binding controller: Anchore-side state', () => {
  it('when evaluation meets an unavailable Anchore, then one Warning Event AnchoreUnavailable for the transition (none on retries) and Compliant keeps the last verdict', async () => {
    const h = harness();
    const b = h.add();
    expect(await h.reconcile(b)).toBeUndefined();
    expect(h.cond(b, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: '1 image(s) fail policy Strict' });
    const evaluatedAt = h.controller.lastEvaluated.get(b.key) as number;

    h.state.checksDown = true;
    for (let i = 0; i < 3; i++) expect(await h.reconcile(h.current(b))).toBeUndefined();
    expect(h.cond(b, 'Ready')).toMatchObject({ status: 'False', reason: 'AnchoreUnavailable' });
    expect(h.cond(b, 'Compliant')).toMatchObject({
      status: 'False',
      reason: 'PolicyFailed',
      message: `From the last successful evaluation at ${new Date(evaluatedAt).toISOString().replace(/\.\d+Z$/, 'Z')} (Anchore is unavailable now): 1 image(s) fail policy Strict`,
    });
    expect(h.told('AnchoreUnavailable')).toEqual([{ ref: expect.objectContaining({ name: 'web' }), type: 'Warning', reason: 'AnchoreUnavailable', note: expect.stringContaining('HTTP 503') }]);
    // The verdict did not change: no Compliant Event either. Written once for the transition, not on each retry.
    expect(h.told('PolicyFailed')).toHaveLength(1);
    expect(h.writes).toHaveLength(2);

    // Back, then the policy list fails: the policy step's outage keeps the verdict too, and is told once more.
    h.state.checksDown = false;
    expect(await h.reconcile(h.current(b))).toBeUndefined();
    expect(h.cond(b, 'Ready')).toMatchObject({ status: 'True' });
    h.state.policiesDown = true;
    for (let i = 0; i < 3; i++) expect(await h.reconcile(h.current(b))).toMatchObject({ name: 'WaitError', reason: 'AnchoreUnavailable' });
    expect(h.cond(b, 'Compliant')).toMatchObject({ status: 'False', reason: 'PolicyFailed', message: expect.stringMatching(/^From the last successful evaluation at /) });
    expect(h.told('AnchoreUnavailable')).toHaveLength(2);
  });

  it('when the policy is gone from Anchore, then the binding is Stalled with PolicyNotFound, names no policy and no verdicts, and forgets its failing workloads', async () => {
    const h = harness();
    const b = h.add();
    await h.reconcile(b);
    expect(h.current(b).status.policy).toMatchObject({ id: 'p1' });
    expect(h.controller.failuresByWorkload.get(b.key)?.size).toBe(1);

    h.state.policies = [];
    expect(await h.reconcile(h.current(b))).toMatchObject({ name: 'StallError', reason: 'PolicyNotFound' });
    const status = h.current(b).status;
    expect(h.cond(b, 'Stalled')).toMatchObject({ status: 'True', reason: 'PolicyNotFound' });
    expect(status.policy).toBeUndefined();
    expect(status.results).toBeUndefined();
    expect(status.summary).toBeUndefined();
    expect(h.cond(b, 'Compliant')).toBeUndefined();
    expect(h.controller.failuresByWorkload.get(b.key)).toBeUndefined();
    expect(h.told('PolicyNotFound')).toHaveLength(1);

    h.state.policies = POLICIES;
    expect(await h.reconcile(h.current(b))).toBeUndefined();
    expect(h.current(b).status).toMatchObject({ policy: { id: 'p1' }, summary: { images: 1, failed: 1 } });
  });
});
