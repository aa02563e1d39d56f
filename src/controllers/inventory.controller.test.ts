import { afterEach, describe, expect, it } from '@jest/globals';
import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aPod, hex64, memoryStores } from '../testing/factories.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { buildHealthReport } from './integration.controller.ts';
import { InventoryController } from './inventory.controller.ts';
import { MissingAccounts } from '../model/missing-accounts.ts';
import { Scope } from '../model/scope.ts';

const log = createLogger({ level: 'silent', pretty: false });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('InventoryController timing', () => {
  let controller: InventoryController | undefined;
  afterEach(async () => {
    await controller?.queue.shutdown(1000);
  });

  it('when pods keep changing and then stop, then the last change is reported within debounce + minimum interval', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('churn'));
    const sends: Array<{ at: number; pods: Set<string> }> = [];
    const anchore = {
      postKubernetesInventory: async (_account: string, inv: KubernetesInventory): Promise<void> => {
        await sleep(60); // a large report takes a while to upload
        sends.push({ at: Date.now(), pods: new Set(inv.pods.map((p) => p.name)) });
      },
    } as unknown as AnchoreApi;
    const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] });
    controller = new InventoryController({
      stores: s,
      scope,
      anchore,
      clusterName: 'c',
      intervalMs: 60_000,
      debounceMs: 50,
      minIntervalMs: 200,
      batchBytes: 0,
      log,
      metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
    });
    controller.start();
    // Churn: a new pod every 7 ms for 1.5 s, each deleted 300 ms later.
    const churnEnd = Date.now() + 1500;
    let n = 0;
    while (Date.now() < churnEnd) {
      s.pods.put(aPod('churn', `p-${n}`, [aContainer('c', `img-${n}:1`, { digest: `sha256:${hex64(String(n))}` })]));
      if (n >= 40) s.pods.remove(`churn/p-${n - 40}`);
      n++;
      await sleep(7);
    }
    const last = `p-${n - 1}`;
    const lastAt = Date.now();
    await sleep(1500);
    const first = sends.find((x) => x.at >= lastAt && x.pods.has(last));
    expect(first).toBeDefined();
    // debounce 50 + at most the minimum interval 200 + upload 60, with room for a loaded machine.
    expect(first!.at - lastAt).toBeLessThan(700);
  });
});

describe('InventoryController batches and missing accounts', () => {
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [{ account: 'team-a', namespaces: ['shop'] }] });

  function setup(post: (account: string, inv: KubernetesInventory) => Promise<void>, namespaces: string[]): { controller: InventoryController; metrics: OperatorMetrics; missing: MissingAccounts } {
    const s = memoryStores();
    for (const ns of namespaces) {
      s.namespaces.put(aNamespace(ns));
      s.pods.put(aPod(ns, `p-${ns}`, [aContainer('c', `img-${ns}:1`, { digest: `sha256:${hex64(ns)}` })]));
    }
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const missing = new MissingAccounts(log, metrics);
    const anchore = { postKubernetesInventory: post } as unknown as AnchoreApi;
    // batchBytes 1: every namespace is a batch of its own.
    const controller = new InventoryController({
      stores: s,
      scope,
      anchore,
      clusterName: 'c',
      intervalMs: 60_000,
      debounceMs: 10,
      minIntervalMs: 0,
      batchBytes: 1,
      log,
      metrics,
      missingAccounts: missing,
    });
    return { controller, metrics, missing };
  }

  it('when one batch of several is refused, then the others are still sent, every batch is listed 1-based and the report fails', async () => {
    const sent: string[] = [];
    const { controller } = setup(
      async (_a, inv) => {
        const ns = inv.namespaces.map((n) => n.name).join();
        if (ns === 'b') throw new AnchoreError('rejected', 'post_kubernetes_inventory', 'post_kubernetes_inventory: Anchore rejected the request (400)', { status: 400 });
        sent.push(ns);
      },
      ['a', 'b', 'c'],
    );
    await expect(controller.reconcile('admin')).rejects.toThrow('400');
    expect(sent).toEqual(['a', 'c']);
    const [st] = controller.status();
    expect(st).toMatchObject({ batchCount: 3, lastSuccessfulIndex: 3, batches: [{ index: 1 }, { index: 2, error: expect.stringContaining('400') }, { index: 3 }] });
    expect(st?.batches[0]).not.toHaveProperty('error');
    const report = buildHealthReport(controller.status(), 1, 60).accounts.admin;
    expect(report).toMatchObject({ batch_size: 3, last_successful_index: 3, has_errors: true });
    expect(report?.batches.map((b) => b.batch_index)).toEqual([1, 2, 3]);
  });

  it('when four batches all arrive, then last_successful_index is 4 and no batch carries an error', async () => {
    const { controller } = setup(async () => undefined, ['a', 'b', 'c', 'd']);
    await controller.reconcile('admin');
    const report = buildHealthReport(controller.status(), 1, 60);
    expect(report.accounts.admin).toEqual({
      report_timestamp: expect.any(String),
      batch_size: 4,
      last_successful_index: 4,
      has_errors: false,
      batches: [1, 2, 3, 4].map((i) => ({ batch_index: i, send_timestamp: expect.any(String) })),
    });
    expect(report.errors).toEqual([]);
  });

  it('when a health report is built while a report is being sent, then it tells the previous complete report, never a batch in flight', async () => {
    let release: (() => void) | undefined;
    let slow = false;
    const { controller } = setup(async () => {
      if (slow) await new Promise<void>((r) => (release = r));
    }, ['a', 'b']);
    await controller.reconcile('admin');
    const before = buildHealthReport(controller.status(), 1, 60).accounts.admin;
    slow = true;
    const second = controller.reconcile('admin');
    while (release === undefined) await new Promise((r) => setTimeout(r, 1));
    // First batch of the second report in flight: the health report still shows the first report, consistent.
    expect(buildHealthReport(controller.status(), 1, 60).accounts.admin).toEqual(before);
    expect(before).toMatchObject({ batch_size: 2, last_successful_index: 2, has_errors: false });
    slow = false;
    release();
    await second;
    expect(buildHealthReport(controller.status(), 1, 60).accounts.admin).toMatchObject({ batch_size: 2, last_successful_index: 2, has_errors: false });
  });

  it('when Anchore is unreachable, then the remaining batches are not sent and the report says so', async () => {
    let calls = 0;
    const { controller } = setup(async () => {
      calls++;
      throw new AnchoreError('unavailable', 'post_kubernetes_inventory', 'post_kubernetes_inventory: cannot reach Anchore (ECONNREFUSED)');
    }, ['a', 'b', 'c']);
    await expect(controller.reconcile('admin')).rejects.toThrow('ECONNREFUSED');
    expect(calls).toBe(1);
    const report = buildHealthReport(controller.status(), 1, 60);
    expect(report.accounts.admin).toMatchObject({ batch_size: 3, last_successful_index: -1, has_errors: true, batches: [{ batch_index: 1, error: expect.stringContaining('ECONNREFUSED') }] });
    expect(report.errors).toEqual([expect.stringContaining('batch 1/3'), 'account admin inventory: 2 of 3 batches not sent']);
  });

  it('when the routed account does not exist, then its namespaces go to the default account, once-logged, counted, and the real account is tried again', async () => {
    let exists = false;
    const posts: Array<[string, string]> = [];
    const { controller, metrics, missing } = setup(
      async (account, inv) => {
        if (account === 'team-a' && !exists)
          throw new AnchoreError('account-not-found', 'post_kubernetes_inventory', 'post_kubernetes_inventory: the Anchore account does not exist (404): User account not found: team-a', {
            status: 404,
          });
        posts.push([account, inv.namespaces.map((n) => n.name).join()]);
      },
      ['shop'],
    );
    await controller.reconcile('team-a');
    expect(posts).toEqual([['admin', 'shop']]);
    expect(controller.status()[0]).toMatchObject({ sentToAccount: 'admin', lastSuccessfulIndex: 1, batches: [{ index: 1, error: expect.stringContaining('sent to account "admin" instead') }] });
    expect(missing.list()).toEqual(['team-a']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('anchore_operator_account_missing{account="team-a"} 1');
    expect(text).toContain('anchore_operator_inventory_batch_failures_total{account="team-a",reason="account_missing"} 1');
    exists = true;
    await controller.reconcile('team-a');
    expect(posts.at(-1)).toEqual(['team-a', 'shop']);
    expect(controller.status()[0]?.sentToAccount).toBeUndefined();
    expect(missing.list()).toEqual([]);
    expect(await metrics.registry.metrics()).not.toContain('anchore_operator_account_missing{');
  });
});
