import { describe, expect, it } from '@jest/globals';
import { parseRetryAfter } from './transport.ts';

// The transport's behaviour over the wire (retries, limits, TLS, OAuth, error kinds) is tested through
// AnchoreHttpClient against the simulator in anchore.http.test.ts; here only its pure helpers.
describe('parseRetryAfter', () => {
  it('when Retry-After is seconds or a date, then it parses to seconds', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThanOrEqual(9);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('when it is missing, repeated or a date in the past, then it is undefined, the first value, or zero', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter(['3', '9'])).toBe(3);
    expect(parseRetryAfter(' 5 ')).toBe(5);
    expect(parseRetryAfter(new Date(Date.now() - 60_000).toUTCString())).toBe(0);
  });
});
