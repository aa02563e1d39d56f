import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, valueOf } from '../support/prometheus.ts';

const INVENTORY = '/v2/kubernetes-inventory';
const HEARTBEAT_S = 5;

/*
 * Issue 23, item 10 ("alarms that never clear"): a namespace labelled with a mistyped Anchore account, then corrected.
 * Before, the old account stayed anchore_operator_account_missing 1 and got an empty report every heartbeat until a
 * restart. A condition that is gone must clear by itself. Operator in-process, the simulator as Anchore (accounts
 * admin and team-a; team-aa does not exist), heartbeat every 5 s so several pass in the test.
 */
describe('a corrected account label clears the missing account (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const ns = uniqueName('acct');
  const postsTo = (account: string): number => sim.requests({ method: 'POST', path: INVENTORY }).filter((r) => r.account === account).length;
  const gauge = async (name: string, account: string): Promise<number | undefined> => valueOf(await scrape(operator.op.metricsPort), name, { account });

  beforeAll(async () => {
    sim = await startSimulator({
      config: {
        analysis: { queued_ms: 20, analyzing_ms: 50 },
        accounts: [
          { name: 'admin', users: [{ username: 'admin', password: 'foobar' }] },
          { name: 'team-a', users: [] },
        ],
      },
    });
    await apply(namespaceManifest(ns, { 'anchore.io/account': 'team-aa' }));
    await apply(deployment(ns, 'svc', 1, [{ name: 'nginx', image: 'nginx:1.27' }]));
    await waitForRunningPods(ns, 'app=svc', 1);
    operator = await startTestOperator(
      operatorEnv(sim.url, {
        CLUSTER_NAME: uniqueName('acct'),
        NAMESPACES_INCLUDE: ns,
        ACCOUNT_NAMESPACE_LABEL: 'anchore.io/account',
        INVENTORY_INTERVAL_SECONDS: String(HEARTBEAT_S),
        INTEGRATION_ENABLED: 'false',
        METRICS_VULNERABILITIES: 'false',
        LOG_LEVEL: 'info',
      }),
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it('when the mistyped label is corrected, then anchore_operator_account_missing for the old name goes and no more inventory is sent for it, without a restart', async () => {
    // The mistake shows: the gauge is 1, the inventory goes to admin meanwhile.
    await eventually(async () => (await gauge('anchore_operator_account_missing', 'team-aa')) === 1, 20_000, 200);
    expect(await gauge('anchore_operator_namespaces_account_missing', 'team-aa')).toBe(1);
    await eventually(() => sim.inventories('admin').some((r) => r.body.namespaces?.some((n) => n.name === ns)), 20_000, 200);
    expect(postsTo('team-aa')).toBeGreaterThan(0);

    await kubectl(['label', 'namespace', ns, 'anchore.io/account=team-a', '--overwrite']);
    await eventually(() => sim.inventories('team-a').some((r) => r.body.namespaces?.some((n) => n.name === ns)), 20_000, 200);
    await eventually(async () => (await gauge('anchore_operator_account_missing', 'team-aa')) === undefined, 10_000, 200);
    const after = await scrape(operator.op.metricsPort);
    expect(valueOf(after, 'anchore_operator_namespaces_account_missing', { account: 'team-aa' })).toBeUndefined();
    // Nothing left for the stale-inventory alert to watch age.
    expect(valueOf(after, 'anchore_operator_inventory_last_success_timestamp_seconds', { account: 'team-aa' })).toBeUndefined();

    // Two more heartbeats to team-a (evidence that the operator went through every account it reports to at least once
    // since), and none to team-aa meanwhile (nor empty ones to admin in its name).
    const before = { old: postsTo('team-aa'), teamA: postsTo('team-a') };
    await eventually(() => postsTo('team-a') >= before.teamA + 2, (3 * HEARTBEAT_S + 5) * 1000, 100);
    expect(postsTo('team-aa')).toBe(before.old);
    // One line each way: missing, then no longer named; and the inventory controller said it let the account go.
    const lines = operator.logs.join('').split('\n');
    expect(lines.filter((l) => l.includes('no namespace routes to account \\"team-aa\\" any more'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('Anchore account \\"team-aa\\" does not exist'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('Anchore account \\"team-aa\\" is no longer named'))).toHaveLength(1);
  }, 90_000);
});
