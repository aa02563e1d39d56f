import { describe, expect, it } from '@jest/globals';
import type { BindingInfo } from '../crds/types.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aBinding, aNamespace } from '../testing/factories.ts';
import { MemoryStore } from '../testing/memory-store.ts';
import { MissingAccounts, accountsInUse, trackMissingAccounts } from './missing-accounts.ts';
import { Scope } from './scope.ts';

const log = createLogger({ level: 'silent', pretty: false });

describe('MissingAccounts: a missing account nothing names any more is forgotten', () => {
  const scope = new Scope({
    namespaces: { exclude: ['ignored'] },
    imageExclude: [],
    imagePolicy: { missingTagPolicy: 'digest' },
    defaultAccount: 'admin',
    routes: [{ account: 'team-r', namespaces: ['routed'] }],
    accountLabel: 'anchore.io/account',
  });
  const stores = () => ({
    namespaces: new MemoryStore('namespaces', [aNamespace('shop', { 'anchore.io/account': 'team-a' }), aNamespace('ignored', { 'anchore.io/account': 'team-i' })]),
    bindings: new MemoryStore<BindingInfo>('anchorepolicybindings', [aBinding('b', 'shop', { account: 'team-b' })]),
    clusterBindings: new MemoryStore<BindingInfo>('clusteranchorepolicybindings', [aBinding('c', undefined, { account: 'team-c' })]),
  });

  it.each([
    ['admin', true, 'the default account'],
    ['team-r', true, 'an ACCOUNT_ROUTES account'],
    ['team-a', true, 'the account label of a namespace in scope'],
    ['team-b', true, "a binding's spec.account"],
    ['team-c', true, "a cluster binding's spec.account"],
    ['team-i', false, 'the label of a namespace out of scope'],
    ['team-x', false, 'nothing'],
  ])('when the account is %s, then it is in use: %s (%s)', (account, used) => {
    expect(accountsInUse(scope, stores()).has(account)).toBe(used);
  });

  it('when the label naming a missing account is corrected, then the account is forgotten and its gauge series goes; one still named stays', async () => {
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const missing = new MissingAccounts(log, metrics);
    const s = stores();
    missing.missing('team-a', 'User account not found: team-a', 'admin');
    missing.missing('team-b', 'User account not found: team-b');
    expect(missing.forgetUnused((a) => accountsInUse(scope, s).has(a))).toEqual([]);
    s.namespaces.put({ ...aNamespace('shop', { 'anchore.io/account': 'team-a2' }), uid: s.namespaces.get('shop')!.uid });
    expect(missing.forgetUnused((a) => accountsInUse(scope, s).has(a))).toEqual(['team-a']);
    expect(missing.list()).toEqual(['team-b']);
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('anchore_operator_account_missing{account="team-a"}');
    expect(text).toContain('anchore_operator_account_missing{account="team-b"} 1');
    // Named again and still missing: found out afresh by the next call there.
    missing.missing('team-a', 'User account not found: team-a', 'admin');
    expect(missing.isMissing('team-a')).toBe(true);
  });
});

describe('trackMissingAccounts: the missing-account state follows the cluster', () => {
  const scope = new Scope({
    namespaces: { exclude: ['ignored'] },
    imageExclude: [],
    imagePolicy: { missingTagPolicy: 'digest' },
    defaultAccount: 'admin',
    routes: [],
    accountLabel: 'anchore.io/account',
  });

  it('when namespaces route to a missing account, then the gauge counts those in scope; when the label is corrected, the account is forgotten and the series go', async () => {
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const missing = new MissingAccounts(log, metrics);
    const stores = {
      namespaces: new MemoryStore('namespaces', [
        aNamespace('shop', { 'anchore.io/account': 'tema-a' }),
        aNamespace('cart', { 'anchore.io/account': 'tema-a' }),
        aNamespace('ignored', { 'anchore.io/account': 'tema-a' }),
        aNamespace('other'),
      ]),
      bindings: new MemoryStore<BindingInfo>('anchorepolicybindings'),
      clusterBindings: new MemoryStore<BindingInfo>('clusteranchorepolicybindings'),
    };
    trackMissingAccounts({ missing, scope, stores, metrics });
    expect(await metrics.registry.metrics()).not.toContain('anchore_operator_namespaces_account_missing{');

    missing.missing('tema-a', 'User account not found: tema-a', 'admin');
    expect(await metrics.registry.metrics()).toContain('anchore_operator_namespaces_account_missing{account="tema-a"} 2');

    for (const name of ['shop', 'cart']) {
      const was = stores.namespaces.get(name)!;
      stores.namespaces.put({ ...was, resourceVersion: '2', labels: { 'anchore.io/account': 'team-a' } });
    }
    // Still named by the namespace out of scope? No: only what routes work counts.
    expect(missing.list()).toEqual([]);
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('anchore_operator_namespaces_account_missing{');
    expect(text).not.toContain('anchore_operator_account_missing{');
  });

  it('when a binding naming a missing account is deleted, then the account is forgotten', () => {
    const missing = new MissingAccounts(log);
    const stores = {
      namespaces: new MemoryStore('namespaces', [aNamespace('shop')]),
      bindings: new MemoryStore<BindingInfo>('anchorepolicybindings', [aBinding('b', 'shop', { account: 'team-b' })]),
      clusterBindings: new MemoryStore<BindingInfo>('clusteranchorepolicybindings'),
    };
    trackMissingAccounts({ missing, scope, stores, metrics: new OperatorMetrics(undefined, { defaultMetrics: false }) });
    missing.missing('team-b', 'User account not found: team-b');
    stores.namespaces.put({ ...stores.namespaces.get('shop')!, resourceVersion: '2', labels: { touched: 'yes' } });
    expect(missing.list()).toEqual(['team-b']);
    stores.bindings.remove(aBinding('b', 'shop').key);
    expect(missing.list()).toEqual([]);
  });
});
