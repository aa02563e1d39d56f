import { describe, expect, it } from '@jest/globals';
import { runBench } from '../support/bench.ts';

/*
 * Keeps the benchmark harness working: `npm run bench -- --small` (a few hundred pods) end to end, with the churn
 * spread over two namespaces. No timing is asserted — this machine is shared — only that every scenario produced its
 * figures (nothing in notMeasured), that every churn pod is accounted for, that each latency has the harness's delay
 * beside it and the bytes to Anchore were measured, and the correctness invariants that do not depend on speed: one
 * add per digest, none on restart, no status writes in steady state, every churned image in the inventory.
 */
describe('benchmark harness (small)', () => {
  it('when the small suite runs, then every scenario reports figures and the invariants hold', async () => {
    const { code, result } = await runBench<Record<string, Record<string, unknown>>>(['--small', '--churn-namespaces', '2']);
    expect(code).toBe(0);
    const r = result as Record<string, any>;
    expect(Object.keys(r)).toEqual(expect.arrayContaining(['setup', 'coldStart', 'policyEvaluation', 'steadyState', 'restart', 'churn', 'addsPerDigest', 'bytesToAnchore', 'notMeasured']));
    expect(r['notMeasured']).toEqual([]);
    expect(r['coldStart']).toMatchObject({ uniqueImages: 60, allRegisteredSeconds: expect.any(Number), inventorySentSeconds: expect.any(Number) });
    expect(r['policyEvaluation']).toMatchObject({ images: 60, summary: { images: 60, pending: 0, errors: 0 } });
    expect(r['steadyState']).toMatchObject({ bindingStatusWrites: 0, bindingResourceVersionMoved: false, bindingStatusFieldsChanged: [] });
    expect(r['steadyState'].rssMiB.max).toBeGreaterThan(0);
    expect(r['restart']).toMatchObject({ anchoreAddCalls: 0 });

    const churn = r['churn'];
    expect(churn).toMatchObject({ churnNamespaces: 2, createFailures: 0, inventoryMissing: 0, registration: { ms: { n: expect.any(Number) } } });
    // Every created pod is accounted for: measured, never Running, seen only by a re-list, or never registered.
    expect(churn.registration.ms.n + churn.neverRunning.count + churn.runningSeenOnlyByRelist + churn.notRegistered).toBe(churn.podsCreated);
    expect(churn.registration.ms.n).toBeGreaterThan(0);
    // The harness's delay over the same samples as each latency.
    expect(churn.registration.harnessDelayMs.n).toBe(churn.registration.ms.n);
    expect(churn.inventory.harnessDelayMs.n).toBe(churn.inventory.ms.n);
    expect(churn.createLateMs.n).toBe(churn.podsScheduled);
    expect(churn.benchWatch).toMatchObject({ errorEvents: 0 });

    const churnBytes = r['bytesToAnchore'].churn;
    expect(churnBytes.operator).toMatchObject({ reports: expect.any(Number), unsized: 0 });
    expect(churnBytes.operator.reports).toBeGreaterThan(0);
    expect(churnBytes.operator.bytesPerReport).toBeGreaterThan(0);
    expect(churnBytes.operator.bytesPerHour).toBeGreaterThan(0);
    expect(r['bytesToAnchore'].steady.operator).toMatchObject({ unsized: 0 });
    expect(r['addsPerDigest']).toMatchObject({ max: 1, digestsAddedMoreThanOnce: 0 });
  }, 600_000);
});
