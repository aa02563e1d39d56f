import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import { startSimulator } from '../../test/anchore-sim/index.ts';
import { call } from '../../test/anchore-sim/test-client.ts';
import { AnchoreHttpClient } from '../anchore/anchore.http.ts';
import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aNode, aPod, hex64, type MemoryStores, memoryStores } from '../testing/factories.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { buildHealthReport } from './integration.controller.ts';
import { InventoryController } from './inventory.controller.ts';
import { MissingAccounts } from '../model/missing-accounts.ts';
import { Scope } from '../model/scope.ts';
import { ManualClock } from '../testing/manual-clock.ts';

const log = createLogger({ level: 'silent', pretty: false });

describe('InventoryController timing (fake time)', () => {
  let controller: InventoryController | undefined;
  afterEach(async () => {
    await controller?.queue.shutdown(1000);
  });

  /** Moves the clock in 1 ms steps, letting the controller's promises and event-loop turns settle before each. */
  async function run(clock: ManualClock, ms: number, each?: () => void): Promise<void> {
    for (let i = 0; i < ms; i++) {
      each?.();
      // The controller yields to the event loop (setImmediate) between shares: let those turns run too.
      for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
      clock.advance(1);
    }
  }

  it('when pods keep changing and then stop, then the last change is reported within debounce + minimum interval + the upload, and reports start at least the minimum interval apart', async () => {
    const s = memoryStores();
    s.namespaces.put(aNamespace('churn'));
    const clock = new ManualClock(Date.now());
    const sends: Array<{ at: number; pods: Set<string> }> = [];
    const anchore = {
      postKubernetesInventory: (_account: string, inv: KubernetesInventory): Promise<void> =>
        // A report takes 60 ms to upload.
        new Promise((resolve) =>
          clock.setTimeout(() => {
            sends.push({ at: clock.now(), pods: new Set(inv.pods.map((p) => p.name)) });
            resolve();
          }, 60),
        ),
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
      clock,
    });
    controller.start();
    // Churn: a new pod every 7 ms for 1.5 s, each deleted 280 ms later.
    let n = 0;
    await run(clock, 1500, () => {
      if (clock.now() % 7 !== 0) return;
      s.pods.put(aPod('churn', `p-${n}`, [aContainer('c', `img-${n}:1`, { digest: `sha256:${hex64(String(n))}` })]));
      if (n >= 40) s.pods.remove(`churn/p-${n - 40}`);
      n++;
    });
    const last = `p-${n - 1}`;
    const lastAt = clock.now();
    await run(clock, 1500);
    const first = sends.find((x) => x.at >= lastAt && x.pods.has(last));
    expect(first).toBeDefined();
    // Debounce 50 + at most the minimum interval 200 (counted from the start of the previous report) + upload 60.
    expect(first!.at - lastAt).toBeLessThanOrEqual(50 + 200 + 60);
    // Reports start at least the minimum interval apart (each upload takes the same 60 ms).
    for (let i = 1; i < sends.length; i++) expect(sends[i]!.at - sends[i - 1]!.at).toBeGreaterThanOrEqual(200);
    // And the churn was reported as it went, not only at the end.
    expect(sends.filter((x) => x.at < lastAt).length).toBeGreaterThan(3);
  });
});

describe('InventoryController batches and missing accounts', () => {
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [{ account: 'team-a', namespaces: ['shop'] }] });

  function setup(
    post: (account: string, inv: KubernetesInventory) => Promise<void>,
    namespaces: string[],
  ): { controller: InventoryController; metrics: OperatorMetrics; missing: MissingAccounts; clock: ManualClock } {
    const s = memoryStores();
    for (const ns of namespaces) {
      s.namespaces.put(aNamespace(ns));
      s.pods.put(aPod(ns, `p-${ns}`, [aContainer('c', `img-${ns}:1`, { digest: `sha256:${hex64(ns)}` })]));
    }
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const missing = new MissingAccounts(log, metrics);
    const anchore = { postKubernetesInventory: post } as unknown as AnchoreApi;
    const clock = new ManualClock();
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
      clock,
    });
    return { controller, metrics, missing, clock };
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
    const { controller, clock } = setup(async () => {
      if (slow) await new Promise<void>((r) => (release = r));
    }, ['a', 'b']);
    await controller.reconcile('admin');
    const before = buildHealthReport(controller.status(), 1, 60).accounts.admin;
    slow = true;
    clock.advance(60_000); // the next full report is due
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
    const { controller, metrics, missing, clock } = setup(
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
    // Nothing changed, and yet the real account is tried again within a minute (not at the next heartbeat only).
    clock.advance(30_000);
    await controller.reconcile('team-a');
    expect(posts).toHaveLength(1);
    clock.advance(30_000);
    await controller.reconcile('team-a');
    expect(posts.at(-1)).toEqual(['team-a', 'shop']);
    expect(controller.status()[0]?.sentToAccount).toBeUndefined();
    expect(missing.list()).toEqual([]);
    expect(await metrics.registry.metrics()).not.toContain('anchore_operator_account_missing{');
  });
});

describe('InventoryController when no namespace routes to an account any more (nothing latches)', () => {
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [], accountLabel: 'anchore.io/account' });
  const notFound = (account: string): AnchoreError =>
    new AnchoreError('account-not-found', 'post_kubernetes_inventory', `post_kubernetes_inventory: the Anchore account does not exist (404): User account not found: ${account}`, { status: 404 });
  let controller: InventoryController | undefined;
  afterEach(async () => {
    await controller?.queue.shutdown(1000);
    controller = undefined;
  });

  function setup(exists: (account: string) => boolean): { s: MemoryStores; posts: Array<[string, string]>; metrics: OperatorMetrics; missing: MissingAccounts; controller: InventoryController } {
    const s = memoryStores();
    const posts: Array<[string, string]> = [];
    const anchore = {
      postKubernetesInventory: async (account: string, inv: KubernetesInventory): Promise<void> => {
        if (!exists(account)) throw notFound(account);
        posts.push([account, inv.namespaces.map((n) => n.name).join()]);
      },
    } as unknown as AnchoreApi;
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const missing = new MissingAccounts(log, metrics);
    controller = new InventoryController({ stores: s, scope, anchore, clusterName: 'c', intervalMs: 60_000, debounceMs: 10, minIntervalMs: 0, batchBytes: 0, log, metrics, missingAccounts: missing });
    return { s, posts, metrics, missing, controller };
  }

  it('when a mistyped account label is corrected, then nothing more is sent for the mistyped account (no empty heartbeats), its series go and the missing-accounts record forgets it', async () => {
    const { s, posts, metrics, missing, controller: c } = setup((a) => a !== 'team-x');
    s.namespaces.put(aNamespace('shop', { 'anchore.io/account': 'team-x' }));
    s.pods.put(aPod('shop', 'p', [aContainer('c', 'nginx:1', { digest: `sha256:${hex64('shop')}` })]));
    await c.reconcile('team-x');
    expect(posts).toEqual([['admin', 'shop']]);
    expect(missing.list()).toEqual(['team-x']);
    const before = await metrics.registry.metrics();
    expect(before).toContain('anchore_operator_account_missing{account="team-x"} 1');
    expect(before).toContain('anchore_operator_inventory_last_success_timestamp_seconds{account="team-x"}');

    // The label is corrected: the namespace now routes to team-a, and nothing to team-x.
    s.namespaces.put({ ...aNamespace('shop', { 'anchore.io/account': 'team-a' }), uid: s.namespaces.get('shop')!.uid });
    posts.length = 0;
    expect(missing.forgetUnused((a) => [...s.namespaces.list()].some((ns) => scope.accountFor(ns, ns.name) === a))).toEqual(['team-x']);
    // team-x never held anything (every report went to admin): nothing is sent, no requeue (no heartbeat).
    await expect(c.reconcile('team-x')).resolves.toBeUndefined();
    await c.reconcile('team-a');
    expect(posts).toEqual([['team-a', 'shop']]);
    expect(c.status().map((x) => x.account)).toEqual(['team-a']);
    const after = await metrics.registry.metrics();
    expect(after).not.toContain('anchore_operator_account_missing{');
    expect(after).not.toContain('anchore_operator_inventory_last_success_timestamp_seconds{account="team-x"}');
    expect(after).toContain('anchore_operator_inventory_last_success_timestamp_seconds{account="team-a"}');

    // Started, the heartbeat goes to the accounts in use only.
    posts.length = 0;
    c.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(posts.map(([a]) => a).sort()).toEqual(['admin', 'team-a']);
  });

  it('when an account that exists loses its last namespace, then it gets one report that lists its namespaces with no pods (clearing what Anchore holds) and no more', async () => {
    const { s, posts, metrics, controller: c } = setup(() => true);
    s.namespaces.put(aNamespace('shop', { 'anchore.io/account': 'team-a' }));
    s.pods.put(aPod('shop', 'p', [aContainer('c', 'nginx:1', { digest: `sha256:${hex64('shop')}` })]));
    await c.reconcile('team-a');
    s.namespaces.remove('shop');
    posts.length = 0;
    await expect(c.reconcile('team-a')).resolves.toBeUndefined();
    // Anchore replaces each namespace present in a report: present with no pods, it is emptied. An empty report
    // (no namespaces) would leave it as it was.
    expect(posts).toEqual([['team-a', 'shop']]);
    await expect(c.reconcile('team-a')).resolves.toBeUndefined();
    expect(posts).toHaveLength(1);
    expect(await metrics.registry.metrics()).not.toContain('anchore_operator_inventory_last_success_timestamp_seconds{account="team-a"}');
    // The configured default account keeps its heartbeat, even empty.
    await expect(c.reconcile('admin')).resolves.toEqual({ requeueAfterMs: 60_000 });
  });
});

describe('InventoryController and reports too large for Anchore (413)', () => {
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] });
  const labels = (n: number, prefix: string): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}.example.com/label-${i}`, 'v'.repeat(60)]));

  /** Namespaces of `pods` pods, one container each (its own image), on one node; `nsLabels`/`podLabels` labels each. */
  function cluster(spec: Record<string, { pods: number; nsLabels?: number; podLabels?: number }>): MemoryStores {
    const s = memoryStores();
    s.nodes.put(aNode('node-1'));
    for (const [ns, o] of Object.entries(spec)) {
      s.namespaces.put(aNamespace(ns, labels(o.nsLabels ?? 0, ns)));
      for (let i = 0; i < o.pods; i++) {
        const pod = aPod(ns, `p-${i}`, [aContainer('c', `registry.example.com/${ns}/app-${i}:1`, { digest: `sha256:${hex64(`${ns}-${i}`)}` })], { node: 'node-1' });
        pod.labels = { ...pod.labels, ...labels(o.podLabels ?? 0, 'pod') };
        s.pods.put(pod);
      }
    }
    return s;
  }

  /** An Anchore behind a proxy that refuses bodies larger than `limit` bytes with 413, as the client reports it. */
  function behindProxy(limit: number): { anchore: AnchoreApi; accepted: KubernetesInventory[]; refused: number[] } {
    const accepted: KubernetesInventory[] = [];
    const refused: number[] = [];
    const anchore = {
      postKubernetesInventory: async (_account: string, inv: KubernetesInventory): Promise<void> => {
        const bytes = Buffer.byteLength(JSON.stringify(inv));
        if (bytes > limit) {
          refused.push(bytes);
          throw new AnchoreError('rejected', 'post_kubernetes_inventory', 'post_kubernetes_inventory: Anchore rejected the request (413): 413 Request Entity Too Large nginx', { status: 413 });
        }
        accepted.push(structuredClone(inv));
      },
    } as unknown as AnchoreApi;
    return { anchore, accepted, refused };
  }

  function controllerFor(
    stores: MemoryStores,
    anchore: AnchoreApi,
    over: { batchBytes?: number; splitNamespaces?: boolean } = {},
  ): { controller: InventoryController; metrics: OperatorMetrics; logs: Array<{ level: string; msg: string }>; clock: ManualClock } {
    const clock = new ManualClock();
    const logs: Array<{ level: string; msg: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb): void {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { level: string; msg: string });
        cb();
      },
    });
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const controller = new InventoryController({
      stores,
      scope,
      anchore,
      clusterName: 'c',
      intervalMs: 60_000,
      debounceMs: 10,
      minIntervalMs: 0,
      batchBytes: over.batchBytes ?? 0,
      ...(over.splitNamespaces === undefined ? {} : { splitNamespaces: over.splitNamespaces }),
      log: createLogger({ level: 'debug', pretty: false }, sink),
      metrics,
      clock,
    });
    return { controller, metrics, logs, clock };
  }

  /** The accepted reports that carry namespace `ns`, and what each carried of it. */
  function carrying(accepted: KubernetesInventory[], ns: string): Array<{ inv: KubernetesInventory; pods: number; containers: number }> {
    return accepted.flatMap((inv) => {
      const entry = inv.namespaces.find((n) => n.name === ns);
      if (!entry) return [];
      const pods = inv.pods.filter((p) => p.namespace_uid === entry.uid);
      const uids = new Set(pods.map((p) => p.uid));
      return [{ inv, pods: pods.length, containers: inv.containers.filter((c) => uids.has(c.pod_uid)).length }];
    });
  }

  it('when Anchore answers 413 to a whole report (INVENTORY_BATCH_BYTES=0), then it is not re-sent whole for ever: it is cut on namespace boundaries, delivered, and the next report starts under the learned limit', async () => {
    const namespaces = Array.from({ length: 10 }, (_, i) => `ns-${i}`);
    const stores = cluster(Object.fromEntries(namespaces.map((n) => [n, { pods: 60 }])));
    const limit = 100_000;
    const { anchore, accepted, refused } = behindProxy(limit);
    const { controller, metrics, logs, clock } = controllerFor(stores, anchore);

    await expect(controller.reconcile('admin')).resolves.toEqual({ requeueAfterMs: 60_000 });
    expect(refused[0]).toBeGreaterThan(200_000); // the whole report, refused once...
    expect(refused.length).toBeLessThan(5); // ...and not again and again
    for (const ns of namespaces) expect(carrying(accepted, ns).map((x) => [x.pods, x.containers])).toEqual([[60, 60]]); // each namespace whole, once
    expect(controller.batchLimit('admin')).toBeLessThanOrEqual(limit);
    const [st] = controller.status();
    expect(st).toMatchObject({ batchCount: accepted.length, lastSuccessfulIndex: accepted.length, lastSuccess: expect.any(Date) });
    expect(st?.batches.every((b) => b.error === undefined)).toBe(true);
    expect(buildHealthReport(controller.status(), 1, 60).errors).toEqual([]);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`anchore_operator_inventory_batch_failures_total{account="admin",reason="too_large"} ${refused.length}`);
    expect(text).toContain('anchore_operator_inventory_reports_total{account="admin",result="success"} 1');
    const warnings = (): string[] => logs.filter((l) => l.level === 'warn').map((l) => l.msg);
    // Said once for the report that taught the limit, however many batches were refused on the way.
    expect(warnings()).toEqual([
      expect.stringMatching(/^Anchore \(or a proxy in front of it\) refused .+ for account "admin" as too large \(413\); its inventory now goes in batches of at most \d+ bytes/),
    ]);

    // The next report: batches under the learned limit from the start, nothing refused, nothing logged again.
    const before = { accepted: accepted.length, refused: refused.length, warnings: warnings().length };
    clock.advance(60_000);
    await controller.reconcile('admin');
    expect(refused.length).toBe(before.refused);
    expect(warnings().length).toBe(before.warnings);
    for (const ns of namespaces) expect(carrying(accepted.slice(before.accepted), ns).map((x) => [x.pods, x.containers])).toEqual([[60, 60]]);
  });

  it('when one namespace is too large only because of its labels, then it goes alone without labels, complete, and the others keep theirs', async () => {
    const stores = cluster({ big: { pods: 5, nsLabels: 300, podLabels: 60 }, small: { pods: 3, nsLabels: 2 } });
    const limit = 40_000;
    const { anchore, accepted, refused } = behindProxy(limit);
    const { controller, logs, clock } = controllerFor(stores, anchore);
    await controller.reconcile('admin');
    expect(refused.length).toBeGreaterThan(0);
    const [big] = carrying(accepted, 'big');
    expect(carrying(accepted, 'big')).toHaveLength(1);
    expect(big).toMatchObject({ pods: 5, containers: 5 });
    expect(big?.inv.namespaces).toEqual([{ uid: stores.namespaces.get('big')?.uid, name: 'big' }]);
    expect(big?.inv.pods.every((p) => p.labels === undefined && p.node_uid === stores.nodes.get('node-1')?.uid)).toBe(true);
    expect(big?.inv.nodes).toEqual([expect.not.objectContaining({ labels: expect.anything() })]);
    expect(big?.inv.nodes[0]).toMatchObject({ name: 'node-1', kubelet_version: 'v1.36.3' });
    const [small] = carrying(accepted, 'small');
    expect(small).toMatchObject({ pods: 3, containers: 3 });
    expect(small?.inv.namespaces.find((n) => n.name === 'small')?.labels).toEqual(labels(2, 'small'));
    expect(controller.status()[0]).toMatchObject({ lastSuccessfulIndex: controller.status()[0]?.batchCount, lastSuccess: expect.any(Date) });
    const stripped = (): number => logs.filter((l) => l.level === 'info' && l.msg.includes('"big" is sent without labels')).length;
    expect(stripped()).toBe(1);
    clock.advance(60_000);
    await controller.reconcile('admin');
    expect(stripped()).toBe(1);
  });

  it('when one namespace is too large even alone and without labels, then it is not split (that would erase it where Anchore overwrites per namespace): the others are delivered, it is reported undeliverable once, and it is sent again when it fits', async () => {
    const stores = cluster({ a: { pods: 3 }, huge: { pods: 300 }, z: { pods: 3 } });
    const limit = 40_000;
    const { anchore, accepted, refused } = behindProxy(limit);
    const { controller, metrics, logs, clock } = controllerFor(stores, anchore);

    // Not thrown (a retry with backoff would be refused the same), back at the heartbeat.
    await expect(controller.reconcile('admin')).resolves.toEqual({ requeueAfterMs: 60_000 });
    expect(carrying(accepted, 'a').map((x) => x.pods)).toEqual([3]);
    expect(carrying(accepted, 'z').map((x) => x.pods)).toEqual([3]);
    expect(carrying(accepted, 'huge')).toEqual([]);
    expect(Math.min(...refused)).toBeGreaterThan(limit);
    const report = buildHealthReport(controller.status(), 1, 60);
    expect(report.accounts.admin).toMatchObject({ has_errors: true, batches: expect.arrayContaining([expect.objectContaining({ error: expect.stringContaining('namespace "huge" not sent') })]) });
    expect(report.errors).toEqual([expect.stringMatching(/^account admin inventory batch \d\/\d: namespace "huge" not sent: \d+ bytes on its own even without labels.*\(413\)/)]);
    let text = await metrics.registry.metrics();
    expect(text).toContain('anchore_operator_inventory_batch_failures_total{account="admin",reason="undeliverable"} 1');
    expect(text).toContain('anchore_operator_inventory_reports_total{account="admin",result="error"} 1');
    expect(text).not.toContain('anchore_operator_inventory_last_success_timestamp_seconds{account="admin"}');
    expect(controller.status()[0]?.lastSuccess).toBeUndefined();
    const undeliverable = (): number => logs.filter((l) => l.level === 'warn' && l.msg.includes('namespace "huge" not sent')).length;
    expect(undeliverable()).toBe(1);

    // Again, at the next full report: tried again (it may fit by now), still refused, said once.
    clock.advance(60_000);
    await controller.reconcile('admin');
    expect(undeliverable()).toBe(1);
    text = await metrics.registry.metrics();
    expect(text).toContain('anchore_operator_inventory_batch_failures_total{account="admin",reason="undeliverable"} 2');

    // A change elsewhere: only that namespace is sent, and the account still says "huge" does not reach Anchore.
    const aBefore = carrying(accepted, 'a').length;
    stores.pods.put(aPod('a', 'p-new', [aContainer('c', 'registry.example.com/a/new:1', { digest: `sha256:${hex64('a-new')}` })], { node: 'node-1' }));
    await controller.reconcile('admin');
    expect(carrying(accepted, 'a')).toHaveLength(aBefore + 1);
    expect(carrying(accepted, 'z')).toHaveLength(2);
    expect(buildHealthReport(controller.status(), 1, 60).errors).toEqual([expect.stringContaining('namespace "huge" not sent')]);
    expect(controller.status()[0]?.lastSuccess).toBeUndefined();
    expect(await metrics.registry.metrics()).toContain('anchore_operator_inventory_reports_total{account="admin",result="error"} 3');
    expect(undeliverable()).toBe(1);

    // It shrinks: a change of that namespace, delivered whole (and only it), and said.
    const others = carrying(accepted, 'a').length;
    for (let i = 20; i < 300; i++) stores.pods.remove(`huge/p-${i}`);
    await expect(controller.reconcile('admin')).resolves.toEqual({ requeueAfterMs: 60_000 });
    expect(carrying(accepted, 'huge').map((x) => [x.pods, x.containers])).toEqual([[20, 20]]);
    expect(carrying(accepted, 'a')).toHaveLength(others);
    expect(logs.some((l) => l.level === 'info' && l.msg.includes('namespace "huge" is delivered again'))).toBe(true);
    expect(buildHealthReport(controller.status(), 1, 60).errors).toEqual([]);
    expect(controller.status()[0]?.lastSuccess).toBeInstanceOf(Date);
  });

  it('when splitting namespaces is allowed (Anchore does not overwrite per namespace), then a namespace too large alone goes in parts of its pods, and Anchore ends up with all of them', async () => {
    const sim = await startSimulator({ config: { inventory_ingest_overwrite: false } });
    const client = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log, retry: { attempts: 1 } });
    try {
      const limit = 40_000;
      sim.setFaults([{ method: 'POST', path: '/v2/kubernetes-inventory', maxBodyBytes: limit }]);
      const stores = cluster({ a: { pods: 3 }, huge: { pods: 300 } });
      const { controller, metrics } = controllerFor(stores, client, { splitNamespaces: true });
      await controller.reconcile('admin');
      const posts = sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' });
      expect(posts.some((r) => r.status === 413)).toBe(true);
      const accepted = sim.inventories('admin').map((r) => r.body as unknown as KubernetesInventory);
      const parts = carrying(accepted, 'huge');
      expect(parts.length).toBeGreaterThan(1);
      expect(parts.reduce((n, p) => n + p.pods, 0)).toBe(300);
      const items = (context: string): Promise<Array<{ image_tag: string }>> =>
        call(sim.url, 'GET', `/v2/inventories?context=${encodeURIComponent(context)}`).then((r) => (r.body as { items: Array<{ image_tag: string }> }).items);
      expect(await items('c/huge')).toHaveLength(300);
      expect(await items('c/a')).toHaveLength(3);
      expect(buildHealthReport(controller.status(), 1, 60).errors).toEqual([]);
      expect(await metrics.registry.metrics()).not.toContain('reason="undeliverable"');
    } finally {
      await client.close();
      await sim.stop();
    }
  });

  it('when Anchore overwrites per namespace and a namespace is undeliverable, then what Anchore held for it stays whole (never a part that erases the rest)', async () => {
    const sim = await startSimulator();
    const client = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log, retry: { attempts: 1 } });
    try {
      const stores = cluster({ a: { pods: 3 }, huge: { pods: 100 } });
      const { controller } = controllerFor(stores, client);
      await controller.reconcile('admin');
      const items = async (context: string): Promise<number> => ((await call(sim.url, 'GET', `/v2/inventories?context=${encodeURIComponent(context)}`)).body as { items: unknown[] }).items.length;
      expect(await items('c/huge')).toBe(100);
      // The proxy limit drops below the namespace; it grows meanwhile.
      sim.setFaults([{ method: 'POST', path: '/v2/kubernetes-inventory', maxBodyBytes: 20_000 }]);
      for (let i = 100; i < 150; i++) stores.pods.put(aPod('huge', `p-${i}`, [aContainer('c', `registry.example.com/huge/app-${i}:1`, { digest: `sha256:${hex64(`huge-${i}`)}` })]));
      await controller.reconcile('admin');
      expect(await items('c/huge')).toBe(100);
      expect(await items('c/a')).toBe(3);
      expect(buildHealthReport(controller.status(), 1, 60).errors).toEqual([expect.stringContaining('namespace "huge" not sent')]);
    } finally {
      await client.close();
      await sim.stop();
    }
  });
});

describe('InventoryController sends what changed (Anchore replaces per namespace present in a report)', () => {
  const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [], accountLabel: 'anchore.io/account' });
  const pod = (ns: string, name: string, image = `registry.example.com/${ns}/${name}:1`): ReturnType<typeof aPod> =>
    aPod(ns, name, [aContainer('c', image, { digest: `sha256:${hex64(`${ns}/${name}/${image}`)}` })], { node: 'node-1' });

  function setup(o: { post?: (account: string, inv: KubernetesInventory) => Promise<void>; budgetSeconds?: number; floor?: number; anchore?: AnchoreApi } = {}) {
    const s = memoryStores();
    s.nodes.put(aNode('node-1'));
    const posts: Array<{ account: string; inv: KubernetesInventory }> = [];
    const anchore =
      o.anchore ??
      ({
        postKubernetesInventory: async (account: string, inv: KubernetesInventory): Promise<void> => {
          await o.post?.(account, inv);
          posts.push({ account, inv: structuredClone(inv) });
        },
      } as unknown as AnchoreApi);
    const clock = new ManualClock();
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const controller = new InventoryController({
      stores: s,
      scope,
      anchore,
      clusterName: 'c',
      intervalMs: 600_000,
      debounceMs: 10,
      minIntervalMs: 0,
      batchBytes: 0,
      budgetSeconds: o.budgetSeconds ?? 0,
      ...(o.floor !== undefined ? { budgetFloorBytesPerSecond: o.floor } : {}),
      log,
      metrics,
      clock,
    });
    const names = (i: number): string[] => posts[i]!.inv.namespaces.map((n) => n.name);
    return { s, posts, clock, metrics, controller, names };
  }

  it('when one namespace changes after a full report, then only that namespace is sent, complete, and the others are not sent again until the heartbeat', async () => {
    const { s, posts, clock, controller, names, metrics } = setup();
    for (const ns of ['a', 'b', 'c']) {
      s.namespaces.put(aNamespace(ns));
      for (let i = 0; i < 3; i++) s.pods.put(pod(ns, `p-${i}`));
    }
    await controller.reconcile('admin');
    expect(names(0)).toEqual(['a', 'b', 'c']);
    s.pods.put(pod('b', 'p-new'));
    s.pods.remove('b/p-0');
    await expect(controller.reconcile('admin')).resolves.toEqual({ requeueAfterMs: 600_000 });
    expect(names(1)).toEqual(['b']);
    expect(posts[1]!.inv.pods.map((p) => p.name).sort()).toEqual(['p-1', 'p-2', 'p-new']);
    expect(posts[1]!.inv.nodes.map((n) => n.name)).toEqual(['node-1']);
    // Nothing changed since: nothing is sent, until the full report is due.
    await controller.reconcile('admin');
    expect(posts).toHaveLength(2);
    clock.advance(600_000);
    await controller.reconcile('admin');
    expect(names(2)).toEqual(['a', 'b', 'c']);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/anchore_operator_inventory_bytes_total\{account="admin",kind="changed"\} \d+/);
    expect(text).toMatch(/anchore_operator_inventory_bytes_total\{account="admin",kind="full"\} \d+/);
  });

  it('when a namespace changes and changes back before the send, then nothing is sent', async () => {
    const { s, posts, controller } = setup();
    s.namespaces.put(aNamespace('a'));
    s.pods.put(pod('a', 'p-0'));
    await controller.reconcile('admin');
    s.pods.put(pod('a', 'p-1'));
    await controller.reconcile('admin');
    expect(posts).toHaveLength(2);
    const p1 = s.pods.get('a/p-1')!;
    s.pods.remove('a/p-1');
    s.pods.put(p1);
    await controller.reconcile('admin');
    expect(posts).toHaveLength(2);
  });

  it('when a changed-namespace report fails, then its namespaces are still marked changed and go with the retry', async () => {
    let fail = false;
    const { s, posts, controller, names } = setup({
      post: async () => {
        if (fail) throw new AnchoreError('unavailable', 'post_kubernetes_inventory', 'post_kubernetes_inventory: cannot reach Anchore (ECONNREFUSED)');
      },
    });
    for (const ns of ['a', 'b']) {
      s.namespaces.put(aNamespace(ns));
      s.pods.put(pod(ns, 'p-0'));
    }
    await controller.reconcile('admin');
    fail = true;
    s.pods.put(pod('a', 'p-1'));
    await expect(controller.reconcile('admin')).rejects.toThrow('ECONNREFUSED');
    fail = false;
    s.pods.put(pod('b', 'p-1'));
    await controller.reconcile('admin');
    expect(names(posts.length - 1)).toEqual(['a', 'b']);
  });

  it('when a namespace is deleted or moved to another account, then it is sent once with no pods where it was, and the account it moved to gets it whole', async () => {
    const { s, posts, controller } = setup();
    for (const ns of ['a', 'b', 'keep']) {
      s.namespaces.put(aNamespace(ns));
      s.pods.put(pod(ns, 'p-0'));
    }
    await controller.reconcile('admin');
    s.namespaces.remove('a');
    s.pods.remove('a/p-0');
    s.namespaces.put({ ...aNamespace('b', { 'anchore.io/account': 'team-b' }), uid: s.namespaces.get('b')!.uid });
    await controller.reconcile('admin');
    const last = posts.at(-1)!;
    expect(last.account).toBe('admin');
    expect(last.inv.namespaces.map((n) => n.name)).toEqual(['a', 'b']);
    expect(last.inv.pods).toEqual([]);
    await controller.reconcile('team-b');
    expect(posts.at(-1)).toMatchObject({ account: 'team-b', inv: { namespaces: [expect.objectContaining({ name: 'b' })], pods: [expect.objectContaining({ name: 'p-0' })] } });
    // Cleared once: not again.
    const n = posts.length;
    await controller.reconcile('admin');
    expect(posts).toHaveLength(n);
  });

  it('when a node changes, then the next report is a full one (node details are in every report that names the node)', async () => {
    const { s, controller, names } = setup();
    for (const ns of ['a', 'b']) {
      s.namespaces.put(aNamespace(ns));
      s.pods.put(pod(ns, 'p-0'));
    }
    controller.start();
    await controller.queue.shutdown(1000);
    const node = s.nodes.get('node-1')!;
    s.nodes.put({ ...node, resourceVersion: '2', kubeletVersion: 'v1.36.4' });
    await controller.reconcile('admin');
    expect(names(1)).toEqual(['a', 'b']);
  });

  it('with a budget, changed-namespace reports wait when they would cost more bytes per hour than the budget allows, and full reports never wait', async () => {
    // 40 pods in "big" (a full report of some KB), churn in "churn": each change resends it.
    const { s, posts, clock, controller } = setup({ budgetSeconds: 60, floor: 1 });
    s.namespaces.put(aNamespace('big'));
    for (let i = 0; i < 40; i++) s.pods.put(pod('big', `p-${i}`));
    s.namespaces.put(aNamespace('churn'));
    for (let i = 0; i < 20; i++) s.pods.put(pod('churn', `p-${i}`));
    await controller.reconcile('admin');
    const fullBytes = Buffer.byteLength(JSON.stringify(posts[0]!.inv));
    let waited = 0;
    let n = 1;
    const start = clock.now();
    // One hour of a change every 100 ms, the controller run after each (as often as the queue could).
    while (clock.now() - start < 3_600_000) {
      s.pods.put(pod('churn', `c-${n}`));
      s.pods.remove(`churn/c-${n - 1}`);
      n++;
      const before = posts.length;
      await controller.reconcile('admin');
      if (posts.length === before) waited++; // a change pending, and not sent: the budget held it
      clock.advance(100);
    }
    const bytes = posts.reduce((sum, p) => sum + Buffer.byteLength(JSON.stringify(p.inv)), 0);
    const full = posts.filter((p) => p.inv.namespaces.length === 2).length;
    // Full reports every 10 minutes still went (the first, then 6 in the hour).
    expect(full).toBeGreaterThanOrEqual(6);
    // Everything together: no more than a full report every 60 s would have cost (60 of them), with the burst.
    expect(bytes).toBeLessThanOrEqual(fullBytes * 60 * 1.1);
    // And the budget was used, not wasted: changes kept going out.
    expect(posts.length - full).toBeGreaterThan(100);
    expect(waited).toBeGreaterThan(1000);
  });

  it('against the simulator: after any sequence of changes, what Anchore holds per namespace is what runs, without waiting for a full report', async () => {
    const sim = await startSimulator();
    const client = new AnchoreHttpClient({ url: sim.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log, retry: { attempts: 1 } });
    try {
      const { s, controller, clock } = setup({ anchore: client });
      let seed = 7;
      const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
      const nss = ['n0', 'n1', 'n2', 'n3', 'n4'];
      for (const ns of nss) s.namespaces.put(aNamespace(ns));
      await controller.reconcile('admin');
      for (let step = 0; step < 60; step++) {
        const ns = nss[rnd(nss.length)]!;
        const action = rnd(10);
        if (!s.namespaces.get(ns)) s.namespaces.put(aNamespace(ns));
        else if (action < 5) s.pods.put(pod(ns, `p-${rnd(6)}`, `registry.example.com/${ns}/img-${rnd(4)}:1`));
        else if (action < 8) s.pods.remove(`${ns}/p-${rnd(6)}`);
        else if (action < 9) {
          for (const p of [...s.pods.list()].filter((x) => x.namespace === ns)) s.pods.remove(p.key);
          s.namespaces.remove(ns);
        } else s.namespaces.put({ ...s.namespaces.get(ns)!, resourceVersion: String(step), labels: { step: String(step) } });
        if (step % 3 === 0) {
          clock.advance(1000); // never a full report: the heartbeat is 10 minutes
          await controller.reconcile('admin');
          for (const name of nss) {
            const want = [...s.pods.list()]
              .filter((p) => p.namespace === name && s.namespaces.get(name))
              .map((p) => p.containers[0]!.image)
              .sort();
            const got = ((await call(sim.url, 'GET', `/v2/inventories?context=${encodeURIComponent(`c/${name}`)}`)).body as { items: Array<{ image_tag: string }> }).items
              .map((i) => i.image_tag)
              .sort();
            expect({ step, name, images: [...new Set(got)] }).toEqual({ step, name, images: [...new Set(want)] });
          }
        }
      }
    } finally {
      await client.close();
      await sim.stop();
    }
  });
});
