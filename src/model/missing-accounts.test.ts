import { describe, expect, it } from '@jest/globals';
import type { BindingInfo } from '../crds/types.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aBinding, aNamespace } from '../testing/factories.ts';
import { MemoryStore } from '../testing/memory-store.ts';
import { MissingAccounts, accountsInUse } from './missing-accounts.ts';
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
