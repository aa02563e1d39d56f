import { describe, expect, it } from '@jest/globals';
import { runBench } from '../support/bench.ts';

/*
 * Keeps the admission benchmark working: `npm run bench -- --admission --small` (10 requests/s for 3 s per scenario)
 * end to end. No timing is asserted — this machine is shared — only what does not depend on speed: every review
 * answered, a hit never calls Anchore, a miss calls it exactly once per request, a tag Anchore was not known to hold
 * costs one tag lookup and one /check per request (the operator's image list is not read again), and the figures are
 * all there.
 */
describe('admission benchmark harness (small)', () => {
  it('when the small admission benchmark runs, then hits cost no Anchore call, each miss one, each tag miss a lookup and a /check, and every figure is reported', async () => {
    const { code, result } = await runBench<Record<string, any>>(['--admission', '--small']);
    expect(code).toBe(0);
    type Scenario = {
      requests: number;
      latencyMs: { n: number; errors: number; p99: number };
      lookups: { hit: number; miss: number };
      checkCalls: { forRequestImages: number };
      imageListCalls: { lookupsForRequestTags: number; otherLookups: number; wholeListReads: number };
      anchoreCallsPerRequest: { lookups: number; checks: number };
      answers: { allowed: number; denied: number };
    };
    const r = result as Record<string, any>;
    expect(Object.keys(r)).toEqual(
      expect.arrayContaining(['setup', 'binding', 'anchoreRoundTrip', 'anchoreLookupRoundTrip', 'hit', 'miss', 'tagMiss', 'tagMissSet', 'goals', 'apiserverDryRunCreate']),
    );
    const hit = r['hit'] as Scenario;
    const miss = r['miss'] as Scenario;
    const tagMiss = r['tagMiss'] as Scenario;
    expect(hit.requests).toBe(30);
    expect(hit.latencyMs).toMatchObject({ n: 30, errors: 0, p99: expect.any(Number) });
    expect(hit.lookups).toEqual({ hit: 30, miss: 0 });
    expect(hit.checkCalls.forRequestImages).toBe(0);
    expect(miss.latencyMs).toMatchObject({ n: 30, errors: 0, p99: expect.any(Number) });
    expect(miss.lookups).toEqual({ hit: 0, miss: 30 });
    expect(miss.checkCalls.forRequestImages).toBe(30);
    // One miss image in ten fails the policy under a deny binding.
    expect(miss.answers).toEqual({ allowed: 27, denied: 3, errors: 0 });
    for (const s of [hit, miss]) expect(s.imageListCalls).toEqual({ lookupsForRequestTags: 0, otherLookups: 0, wholeListReads: 0 });
    // A new tag: one GET /v2/images?full_tag= and one /check per request, and the account's list not read again.
    expect(tagMiss.latencyMs).toMatchObject({ n: 30, errors: 0, p99: expect.any(Number) });
    expect(tagMiss.lookups).toEqual({ hit: 0, miss: 30 });
    expect(tagMiss.imageListCalls).toEqual({ lookupsForRequestTags: 30, otherLookups: 0, wholeListReads: 0 });
    expect(tagMiss.checkCalls.forRequestImages).toBe(30);
    expect(tagMiss.anchoreCallsPerRequest).toEqual({ lookups: 1, checks: 1 });
    expect(tagMiss.answers).toEqual({ allowed: 27, denied: 3, errors: 0 });
    expect(r['tagMissSet']).toEqual({ imagesAdded: 35, operatorListReadsBeforeAdding: expect.any(Number), operatorListReadsSinceAdding: 0 });
    expect(r['anchoreRoundTrip'].latencyMs).toMatchObject({ n: 20, errors: 0 });
    expect(r['anchoreLookupRoundTrip'].latencyMs).toMatchObject({ n: 20, errors: 0 });
    expect(r['goals']).toMatchObject({ hit: { met: expect.any(Boolean) }, miss: { met: expect.any(Boolean) }, tagMiss: { met: expect.any(Boolean) } });
    expect(r['apiserverDryRunCreate'].lookups).toEqual({ hit: 3, miss: 3 });
  }, 600_000);
});
