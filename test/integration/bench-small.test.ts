import { describe, expect, it } from '@jest/globals';
import { runBench } from '../support/bench.ts';

/*
 * Keeps the benchmark harness working: `npm run bench -- --small` (a few hundred pods) end to end. No timing is
 * asserted — this machine is shared — only that every scenario produced its figures and the correctness invariants
 * that do not depend on speed: one add per digest, none on restart, no status writes in steady state, every churned
 * image in the inventory.
 */
describe('benchmark harness (small)', () => {
  it('when the small suite runs, then every scenario reports figures and the invariants hold', async () => {
    const { code, result } = await runBench<Record<string, Record<string, unknown>>>(['--small']);
    expect(code).toBe(0);
    const r = result as Record<string, Record<string, unknown>>;
    expect(Object.keys(r)).toEqual(expect.arrayContaining(['setup', 'coldStart', 'policyEvaluation', 'steadyState', 'restart', 'churn', 'addsPerDigest']));
    expect(r['coldStart']).toMatchObject({ uniqueImages: 60, allRegisteredSeconds: expect.any(Number), inventorySentSeconds: expect.any(Number) });
    expect(r['policyEvaluation']).toMatchObject({ images: 60, summary: { images: 60, pending: 0, errors: 0 } });
    expect(r['steadyState']).toMatchObject({ bindingStatusWrites: 0, bindingResourceVersionMoved: false });
    expect((r['steadyState']!['rssMiB'] as { max: number }).max).toBeGreaterThan(0);
    expect(r['restart']).toMatchObject({ anchoreAddCalls: 0 });
    expect(r['churn']).toMatchObject({ inventoryMissing: 0, registrationMs: { n: expect.any(Number) } });
    expect((r['churn']!['registrationMs'] as { n: number }).n).toBe(r['churn']!['podsCreated']);
    expect(r['addsPerDigest']).toMatchObject({ max: 1, digestsAddedMoreThanOnce: 0 });
  }, 600_000);
});
