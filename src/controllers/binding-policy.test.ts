import { describe, expect, it } from '@jest/globals';
import type { PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingSpec, BindingStatus } from '../crds/types.ts';
import type { ObjectRef } from '../kube/cluster.port.ts';
import { compileBinding } from '../model/binding-spec.ts';
import { Scope } from '../model/scope.ts';
import { StallError, WaitError } from '../runtime/errors.ts';
import { aBinding, aNamespace, memoryStores } from '../testing/factories.ts';
import { POLICY_NOT_FOUND_RECHECK_MS, type PolicyDeps, resolvePolicies } from './binding-policy.ts';
import type { Selection } from './binding-select.ts';

const policies: PolicyRecord[] = [
  { policy_id: 'default', name: 'Default', active: true },
  { policy_id: 'strict', name: 'Strict', active: false },
];

function harness(o: { list?: () => Promise<PolicyRecord[]>; load?: (account: string) => Promise<void> } = {}) {
  const stores = memoryStores();
  stores.namespaces.put(aNamespace('lab', { 'anchore.io/account': 'tema-a' }));
  const calls: Array<{ account: string; maxAgeMs: number }> = [];
  const loaded: string[] = [];
  const active: Array<[string, string]> = [];
  const events: Array<{ ref: ObjectRef; reason: string; note: string }> = [];
  const deps: PolicyDeps = {
    stores,
    scope: new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [], accountLabel: 'anchore.io/account' }),
    images: {
      ensureAccount: async (a) => {
        loaded.push(a);
        await o.load?.(a);
      },
    },
    cache: {
      policies: async (account, maxAgeMs) => {
        calls.push({ account, maxAgeMs });
        return o.list ? o.list() : policies;
      },
    },
    events: { event: (ref, _type, reason, _action, note) => void events.push({ ref, reason, note }) },
    onActivePolicy: (a, id) => void active.push([a, id]),
  };
  return { deps, calls, loaded, active, events };
}

const selection = (accounts: string[], namespace = 'shop'): Selection => ({
  groups: accounts.map((account, i) => ({ key: `${account}|k${i}`, account, namespace, image: { tag: `t${i}`, repository: 'r' } as never, workloads: new Map() })),
  accounts: new Set(accounts),
  workloads: accounts.length,
});

async function run(h: ReturnType<typeof harness>, spec: BindingSpec, sel: Selection, fresh = false, status: BindingStatus = {}) {
  const b = aBinding('b', 'shop', spec, status);
  const c = compileBinding(b, () => undefined);
  if (!c.ok) throw new Error(c.problem.message);
  return resolvePolicies(h.deps, b, c.value, sel, fresh);
}

describe('binding policy step', () => {
  it('when a binding follows the active policy, then each account is loaded first and its active policy is recorded', async () => {
    const h = harness();
    const got = await run(h, {}, selection(['admin', 'team-a']));
    expect(h.loaded).toEqual(['admin', 'team-a']);
    expect([...got].map(([a, p]) => [a, p.policy_id])).toEqual([
      ['admin', 'default'],
      ['team-a', 'default'],
    ]);
    expect(h.active).toEqual([
      ['admin', 'default'],
      ['team-a', 'default'],
    ]);
    expect(h.calls.map((c) => c.maxAgeMs)).toEqual([60_000, 60_000]);
  });

  it('when the binding is in analyze mode, then accounts are loaded but no policy is read', async () => {
    const h = harness();
    expect((await run(h, { mode: 'analyze' }, selection(['admin']))).size).toBe(0);
    expect(h.loaded).toEqual(['admin']);
    expect(h.calls).toEqual([]);
  });

  it('when the named policy is missing, then it stalls on PolicyNotFound with a slow recheck, reading fresh lists while stalled', async () => {
    const h = harness();
    const err = await run(h, { policyId: 'gone' }, selection(['admin'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StallError);
    expect(err).toMatchObject({ reason: 'PolicyNotFound', recheckAfterMs: POLICY_NOT_FOUND_RECHECK_MS });
    expect((err as Error).message).toContain('no policy with id "gone"');
    await run(h, { policyId: 'gone' }, selection(['admin']), false, {
      observedGeneration: 1,
      conditions: [{ type: 'Ready', status: 'False', reason: 'PolicyNotFound', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
    }).catch(() => undefined);
    await run(h, { policyId: 'strict' }, selection(['admin']), true);
    expect(h.calls.map((c) => c.maxAgeMs)).toEqual([60_000, 5_000, 0]);
  });

  it('when no policy is active, then it stalls naming the account', async () => {
    const h = harness({ list: async () => [{ policy_id: 'x', name: 'X', active: false }] });
    await expect(run(h, {}, selection(['admin']))).rejects.toMatchObject({
      name: 'StallError',
      reason: 'PolicyNotFound',
      message: expect.stringContaining('Anchore account "admin" has no active policy'),
    });
  });

  it('when Anchore is unavailable, then it waits and retries', async () => {
    const h = harness({ list: async () => Promise.reject(new AnchoreError('unavailable', 'listPolicies', 'connection refused')) });
    const err = await run(h, {}, selection(['admin'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitError);
    expect(err).toMatchObject({ reason: 'AnchoreUnavailable', afterMs: 10_000 });
  });

  it('when Anchore refuses the credentials, then it stalls on AuthFailed', async () => {
    const h = harness({ load: async () => Promise.reject(new AnchoreError('auth', 'listImages', '401 Unauthorized')) });
    await expect(run(h, {}, selection(['admin']))).rejects.toMatchObject({ name: 'StallError', reason: 'AuthFailed' });
  });

  it('when a namespace label routes to a missing account, then the binding stalls naming the label and the namespace gets a Warning', async () => {
    const h = harness({ load: async () => Promise.reject(new AnchoreError('account-not-found', 'listImages', 'account tema-a not found')) });
    const err = await run(h, {}, selection(['tema-a'], 'lab')).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StallError', reason: 'AccountNotFound' });
    expect((err as Error).message).toContain('Anchore account "tema-a" does not exist (namespace lab names it in its label anchore.io/account)');
    expect(h.events).toEqual([{ ref: expect.objectContaining({ kind: 'Namespace', name: 'lab' }), reason: 'AnchoreAccountNotFound', note: expect.stringContaining('tema-a') }]);
  });

  it('when the binding names the missing account itself, then no namespace is blamed', async () => {
    const h = harness({ load: async () => Promise.reject(new AnchoreError('account-not-found', 'listImages', 'no such account')) });
    await expect(run(h, { account: 'tema-a' }, selection(['tema-a'], 'lab'))).rejects.toMatchObject({ reason: 'AccountNotFound' });
    expect(h.events).toEqual([]);
  });
});
