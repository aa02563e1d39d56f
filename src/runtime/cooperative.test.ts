import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SLICE, jsonInSlices } from './cooperative.ts';

describe('jsonInSlices', () => {
  it('when an inventory-like document is serialised, then the bytes equal JSON.stringify', async () => {
    const doc = {
      cluster_name: 'prod "eu"',
      timestamp: '2026-01-01T00:00:00Z',
      skipped: undefined,
      namespaces: [{ uid: 'u1', name: 'shop', labels: { a: 'ü\n' } }],
      nodes: [],
      pods: Array.from({ length: SLICE * 2 + 7 }, (_, i) => ({ uid: `p${i}`, name: `pod-${i}`, labels: {}, node_uid: i % 2 ? undefined : 'n1' })),
      containers: [undefined, null, 'x'],
    };
    expect((await jsonInSlices(doc)).toString()).toBe(JSON.stringify(doc));
  });

  it('for any JSON object, then the bytes equal JSON.stringify', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (doc) => {
        expect((await jsonInSlices(doc)).toString()).toBe(JSON.stringify(doc));
      }),
      { numRuns: 300 },
    );
  });

  it('when the document is large, then other callbacks run while it is serialised', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await jsonInSlices({ pods: Array.from({ length: SLICE * 40 }, (_, i) => ({ uid: `p${i}`, name: `pod-${i}` })) });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });
});
