import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { KubeAccessReviewer } from './access-review.ts';
import type { KubeClient } from './client.ts';

/**
 * The apiserver as far as access reviews go: a TokenReview authenticates "prometheus", a SubjectAccessReview answers
 * `allowed` (flipped by the test, as removing or adding a RoleBinding would). Counts the calls.
 */
function apiserver(): { client: KubeClient; calls: { tokenReviews: number; accessReviews: number }; setAllowed(v: boolean): void } {
  let allowed = true;
  const calls = { tokenReviews: 0, accessReviews: 0 };
  const client = {
    request: async (_method: string, path: string): Promise<unknown> => {
      if (path.endsWith('/tokenreviews')) {
        calls.tokenReviews++;
        return { status: { authenticated: true, user: { username: 'system:serviceaccount:monitoring:prometheus' } } };
      }
      calls.accessReviews++;
      return { status: { allowed } };
    },
  } as unknown as KubeClient;
  return { client, calls, setAllowed: (v) => (allowed = v) };
}

describe('KubeAccessReviewer caching (docs/metrics.md, Secure metrics)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: new Date('2026-12-07T12:00:00Z'), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('when the RoleBinding that allowed a scraper is removed, then its token is still allowed for up to 60 s, and denied after', async () => {
    const api = apiserver();
    const reviewer = new KubeAccessReviewer(api.client);
    expect(await reviewer.review('token-1', '/metrics', 'get')).toMatchObject({ authenticated: true, allowed: true });
    api.setAllowed(false);
    jest.advanceTimersByTime(59_000);
    expect((await reviewer.review('token-1', '/metrics', 'get')).allowed).toBe(true);
    expect(api.calls).toEqual({ tokenReviews: 1, accessReviews: 1 });
    jest.advanceTimersByTime(1_001);
    expect(await reviewer.review('token-1', '/metrics', 'get')).toMatchObject({ authenticated: true, allowed: false });
    expect(api.calls).toEqual({ tokenReviews: 2, accessReviews: 2 });
  });

  it('when a denied scraper is then granted access, then it is let in within 10 s', async () => {
    const api = apiserver();
    api.setAllowed(false);
    const reviewer = new KubeAccessReviewer(api.client);
    expect((await reviewer.review('token-1', '/metrics', 'get')).allowed).toBe(false);
    api.setAllowed(true);
    jest.advanceTimersByTime(9_000);
    expect((await reviewer.review('token-1', '/metrics', 'get')).allowed).toBe(false);
    jest.advanceTimersByTime(1_001);
    expect((await reviewer.review('token-1', '/metrics', 'get')).allowed).toBe(true);
  });

  it('when breakglass permission is checked, then every check asks the apiserver (never cached)', async () => {
    const api = apiserver();
    const reviewer = new KubeAccessReviewer(api.client);
    const user = { username: 'alice', groups: ['oncall'] };
    const access = { group: 'anchore.io', resource: 'breakglass', verb: 'use', namespace: 'shop' };
    expect((await reviewer.allowed(user, access, 1000)).allowed).toBe(true);
    api.setAllowed(false);
    expect((await reviewer.allowed(user, access, 1000)).allowed).toBe(false);
    expect(api.calls).toEqual({ tokenReviews: 0, accessReviews: 2 });
  });
});
