import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesInventory } from '../../src/anchore/anchore.port.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { scrape, valueOf } from '../support/prometheus.ts';

/*
 * A proxy in front of Anchore that refuses request bodies over 24 KB with 413 (nginx client_max_body_size), and an
 * operator with the default INVENTORY_BATCH_BYTES=0, through the real entry point's config and the real client.
 * Three small namespaces, one that is large only because of its labels, and one whose pods and containers alone
 * are larger than the limit. The simulator overwrites per namespace (inventory_ingest_overwrite on).
 */
describe('runtime inventory larger than Anchore accepts (real cluster)', () => {
  const LIMIT = 24_000;
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const run = uniqueName('size');
  const plain = [`${run}-a`, `${run}-b`, `${run}-c`];
  const labelled = `${run}-labels`;
  const huge = `${run}-huge`;
  const all = [...plain, labelled, huge];
  const cluster = uniqueName('it');
  const labels = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`anchore-it.example.com/l-${i}`, 'v'.repeat(60)]));

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
    sim.setFaults([{ method: 'POST', path: '/v2/kubernetes-inventory', maxBodyBytes: LIMIT }]);
    for (const ns of plain) await apply(namespaceManifest(ns, labels(40)));
    await apply(namespaceManifest(labelled, labels(300)));
    await apply(namespaceManifest(huge));
    for (const ns of [...plain, labelled]) await apply(deployment(ns, 'web', 1, [{ name: 'web', image: 'nginx:1.27' }]));
    await apply(
      deployment(
        huge,
        'many',
        12,
        Array.from({ length: 10 }, (_, i) => ({ name: `c${i}`, image: `registry.example.com/anchore-it/c${i}:1.0` })),
      ),
    );
    for (const ns of [...plain, labelled]) await waitForRunningPods(ns, 'app=web', 1);
    await waitForRunningPods(huge, 'app=many', 12);
    // Started once everything runs, so the huge namespace is never small enough in between.
    // A health report every half second (users cannot set less than 30 s): its errors are what Anchore is told.
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: cluster, NAMESPACES_INCLUDE: all.join(',') }), (cfg) => {
      cfg.integration.healthIntervalMs = 500;
    });
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'namespace', ...all, '--wait=false', '--ignore-not-found']);
  });

  const accepted = (): KubernetesInventory[] =>
    sim
      .inventories('admin')
      .map((r) => r.body as unknown as KubernetesInventory)
      .filter((b) => b.cluster_name === cluster);
  const carrying = (ns: string): KubernetesInventory[] => accepted().filter((b) => b.namespaces.some((n) => n.name === ns));
  /** Pods of namespace `ns` in the last accepted report that carries it. */
  const lastPods = (ns: string): number | undefined => {
    const inv = carrying(ns).at(-1);
    const uid = inv?.namespaces.find((n) => n.name === ns)?.uid;
    return inv?.pods.filter((p) => p.namespace_uid === uid).length;
  };
  const items = async (ns: string): Promise<number> => {
    const res = await fetch(`${sim.url}/v2/inventories?context=${encodeURIComponent(`${cluster}/${ns}`)}`, { headers: { authorization: `Basic ${Buffer.from('admin:foobar').toString('base64')}` } });
    return ((await res.json()) as { items: unknown[] }).items.length;
  };
  const lines = (): Array<{ level?: string; msg?: string }> => operator.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as { level?: string; msg?: string });
  const warnings = (text: string): number => lines().filter((l) => l.level === 'warn' && l.msg?.includes(text)).length;
  /** The errors of the latest health report Anchore received from this operator (its integration). */
  const errors = (): string[] => {
    const reports = sim
      .integrations()
      .filter((i) => (i.registration as { cluster_name?: string }).cluster_name === cluster)
      .flatMap((i) => i.healthReports.map((h) => h.body as { health_data?: { errors?: string[] } }));
    return reports.at(-1)?.health_data?.errors ?? [];
  };

  it('when the whole report is refused with 413, then it is cut on namespace boundaries and every namespace that fits arrives whole, the labelled one without labels', async () => {
    await eventually(() => errors().some((e) => e.includes(`namespace "${huge}" not sent`)), 20_000);
    const refused = sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' }).filter((r) => r.status === 413);
    expect(refused.length).toBeGreaterThan(0);
    for (const ns of plain) {
      const [inv] = carrying(ns);
      expect(inv?.namespaces.find((n) => n.name === ns)?.labels).toMatchObject(labels(40));
      expect(await items(ns)).toBe(1);
    }
    const [lab] = carrying(labelled);
    expect(lab?.namespaces).toEqual([expect.objectContaining({ name: labelled })]);
    expect(lab?.namespaces[0]?.labels).toBeUndefined();
    expect(lab?.pods).toHaveLength(1);
    expect(await items(labelled)).toBe(1);
    // The learned limit is said once for the report that taught it, not once per refused batch.
    expect(warnings('as too large (413); its inventory now goes in batches')).toBe(1);
    process.stdout.write(
      `[measure] 413 answers before everything that fits was delivered: ${refused.length}; batch limit learned: ${valueOf(await scrape(operator.op.metricsPort), 'anchore_operator_inventory_batch_limit_bytes', { account: 'admin' })} bytes\n`,
    );
  });

  it('when one namespace is larger than the limit even alone and without labels, then it is never sent in parts: nothing of it reaches Anchore, and it is reported once, in the log and the health report', async () => {
    expect(carrying(huge)).toEqual([]);
    expect(await items(huge)).toBe(0);
    expect(errors()).toEqual([expect.stringMatching(new RegExp(`namespace "${huge}" not sent: \\d+ bytes on its own even without labels`))]);
    // A change elsewhere makes a report of that namespace only: the health report still lists the undeliverable one,
    // and it is not logged again.
    const before = sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' }).length;
    await apply(deployment(plain[0]!, 'more', 1, [{ name: 'redis', image: 'redis:7.2' }]));
    await waitForRunningPods(plain[0]!, 'app=more', 1);
    await eventually(() => (lastPods(plain[0]!) === 2 ? true : undefined), 20_000).catch((err: unknown) => {
      const posts = sim
        .requests({ method: 'POST', path: '/v2/kubernetes-inventory' })
        .map((r) => [r.status, (r.body as KubernetesInventory).namespaces?.map((n) => n.name), (r.body as KubernetesInventory).pods?.length]);
      throw new Error(
        `${String(err)}; posts ${JSON.stringify(posts)}; logs ${lines()
          .filter((l) => l.level !== 'debug')
          .map((l) => l.msg)
          .join(' | ')}`,
      );
    });
    await eventually(() => sim.requests({ method: 'POST', path: '/v2/kubernetes-inventory' }).length > before && errors().length === 1, 10_000);
    expect(warnings(`namespace "${huge}" not sent`)).toBe(1);
  });

  it('when that namespace shrinks below the limit, then it is delivered whole and the operator says so', async () => {
    await kubectl(['scale', 'deployment', 'many', '-n', huge, '--replicas=2']);
    await eventually(async () => ((await items(huge)) === 10 && lastPods(huge) === 2 ? true : undefined), 30_000);
    await eventually(() => errors().length === 0, 10_000);
    expect(lines().some((l) => l.level === 'info' && l.msg?.includes(`namespace "${huge}" is delivered again`))).toBe(true);
  });
});
