import { describe, expect, it } from '@jest/globals';
import type { AnchoreApi, PolicyCheck } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import { EvaluationCache } from './evaluation-cache.ts';

/** A port stub that only answers checkImage: this test is about caching, not HTTP (the client has its own tests). */
function fakeAnchore(opts: { delayMs?: number; fail?: () => boolean } = {}): { api: AnchoreApi; calls: number; maxInFlight: number } {
  const state = { calls: 0, maxInFlight: 0, inFlight: 0 };
  const api = {
    checkImage: async (_a: string, digest: string, tag: string): Promise<PolicyCheck> => {
      state.calls++;
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 5));
      state.inFlight--;
      if (opts.fail?.()) throw new AnchoreError('unavailable', 'check', 'down');
      return { policy_id: 'p', image_digest: digest, evaluated_tag: tag, status: 'pass', final_action: 'go', final_action_reason: 'policy_evaluation', number_of_findings: 0, findings: [] };
    },
  } as unknown as AnchoreApi;
  return {
    api,
    get calls() {
      return state.calls;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
  };
}

describe('EvaluationCache', () => {
  it('when many bindings ask for the same evaluation at once, then Anchore is called once', async () => {
    const f = fakeAnchore();
    const c = new EvaluationCache(f.api, 4);
    await Promise.all(Array.from({ length: 20 }, () => c.check('a', 'p', 'sha256:1', 't', 60_000)));
    expect(f.calls).toBe(1);
    await c.check('a', 'p', 'sha256:1', 't', 60_000);
    expect(f.calls).toBe(1);
  });

  it('when the entry is older than the caller allows, then it is evaluated again', async () => {
    let now = 0;
    const f = fakeAnchore();
    const c = new EvaluationCache(f.api, 4, () => now);
    await c.check('a', 'p', 'sha256:1', 't', 60_000);
    now = 30_000;
    await c.check('a', 'p', 'sha256:1', 't', 60_000);
    expect(f.calls).toBe(1);
    await c.check('a', 'p', 'sha256:1', 't', 10_000);
    expect(f.calls).toBe(2);
  });

  it('when many different images are evaluated, then at most `concurrency` calls are in flight', async () => {
    const f = fakeAnchore({ delayMs: 10 });
    const c = new EvaluationCache(f.api, 3);
    await Promise.all(Array.from({ length: 30 }, (_, i) => c.check('a', 'p', `sha256:${i}`, 't', 60_000)));
    expect(f.calls).toBe(30);
    expect(f.maxInFlight).toBe(3);
  });

  it('when a call fails, then the failure is not cached and an earlier value survives', async () => {
    let failing = false;
    let now = 0;
    const f = fakeAnchore({ fail: () => failing });
    const c = new EvaluationCache(f.api, 2, () => now);
    await c.check('a', 'p', 'sha256:1', 't', 1000);
    failing = true;
    now = 5000;
    await expect(c.check('a', 'p', 'sha256:1', 't', 1000)).rejects.toThrow('down');
    // The earlier value survives, still dated from its own read (t=0), not from the failed one.
    expect(c.peekCheck('a', 'p', 'sha256:1', 't', 5001)).toMatchObject({ status: 'pass' });
    expect(c.peekCheck('a', 'p', 'sha256:1', 't', 5000)).toBeUndefined();
    failing = false;
    await expect(c.check('a', 'p', 'sha256:1', 't', 1000)).resolves.toMatchObject({ status: 'pass' });
    expect(f.calls).toBe(3);
  });

  it('when an account is invalidated or entries age out, then they are dropped', async () => {
    let now = 0;
    const c = new EvaluationCache(fakeAnchore().api, 2, () => now);
    await c.check('a', 'p', 'sha256:1', 't', 1000);
    await c.check('b', 'p', 'sha256:1', 't', 1000);
    c.invalidateAccount('a');
    expect(c.size).toBe(1);
    now = 10_000;
    c.prune(5000);
    expect(c.size).toBe(0);
  });

  it('when an image is gone from Anchore, then its evaluations and vulnerability summary are dropped, and nothing else', async () => {
    const f = fakeAnchore();
    const api = { ...f.api, vulnerabilities: () => Promise.resolve([]) } as unknown as AnchoreApi;
    const c = new EvaluationCache(api, 2);
    const gone = `sha256:${'a'.repeat(64)}`;
    const kept = `sha256:${'b'.repeat(64)}`;
    for (const [account, policy, digest, tag] of [
      ['a', 'p', gone, 'docker.io/x/y:1'],
      ['a', 'p|odd', gone, 'docker.io/x/y:2'],
      ['a', 'p', kept, 'docker.io/x/y:1'],
      ['b', 'p', gone, 'docker.io/x/y:1'],
    ] as const) {
      await c.check(account, policy, digest, tag, 60_000);
    }
    await c.vulnerabilities('a', gone, 60_000);
    await c.vulnerabilities('a', kept, 60_000);
    c.forgetImage('a', [gone]);
    expect(c.peekCheck('a', 'p', gone, 'docker.io/x/y:1', 60_000)).toBeUndefined();
    expect(c.peekCheck('a', 'p|odd', gone, 'docker.io/x/y:2', 60_000)).toBeUndefined();
    expect(c.peekCheck('a', 'p', kept, 'docker.io/x/y:1', 60_000)).toBeDefined();
    expect(c.peekCheck('b', 'p', gone, 'docker.io/x/y:1', 60_000)).toBeDefined();
    // Checks: a/kept, b/gone; vulnerabilities: a/kept.
    expect(c.size).toBe(3);
  });

  it('when an image is forgotten while its evaluation is on its way, then the caller gets the answer but it is not kept', async () => {
    const f = fakeAnchore({ delayMs: 20 });
    const c = new EvaluationCache(f.api, 2);
    const p = c.check('a', 'p', 'sha256:1', 't', 60_000);
    c.forgetImage('a', ['sha256:1']);
    await expect(p).resolves.toMatchObject({ status: 'pass' });
    expect(c.peekCheck('a', 'p', 'sha256:1', 't', 60_000)).toBeUndefined();
    await c.check('a', 'p', 'sha256:1', 't', 60_000);
    expect(f.calls).toBe(2);
  });
});
