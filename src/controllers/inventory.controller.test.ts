import { afterEach, describe, expect, it } from '@jest/globals';
import type { AnchoreApi, KubernetesInventory } from '../anchore/anchore.port.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { aContainer, aNamespace, aPod, hex64, memoryStores } from '../testing/factories.ts';
import { InventoryController } from './inventory.controller.ts';
import { Scope } from './scope.ts';

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
      stores: s, scope, anchore, clusterName: 'c', intervalMs: 60_000, debounceMs: 50, minIntervalMs: 200, batchBytes: 0,
      log, metrics: new OperatorMetrics(undefined, { defaultMetrics: false }),
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
