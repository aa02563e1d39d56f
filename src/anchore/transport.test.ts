import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { parseRetryAfter, readDeclared, requestTarget, urlBase } from './transport.ts';

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

/** What undici's top-level request(url, { dispatcher }) sends for the URL the client used to build for every call. */
function viaUrl(baseUrl: string, path: string, query: Record<string, string | boolean | undefined>): { origin: string; path: string } {
  const url = new URL(baseUrl + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  return { origin: url.origin, path: url.search ? `${url.pathname}${url.search}` : url.pathname };
}

describe('requestTarget', () => {
  const bases = ['http://127.0.0.1:8228', 'https://anchore.example.com', 'https://anchore.example.com:443', 'http://a:1/anchore', 'https://a/x%20y/api', 'http://[::1]:8228/p'];
  it("when the client's own paths and queries are given, then origin and path are what new URL() gave", () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const paths = ['/v2/version', '/version', '/v2/images', `/v2/images/${digest}`, `/v2/images/${digest}/check`, `/v2/images/${digest}/vuln/all`, '/v2/kubernetes-inventory'];
    paths.push(`/v2/policies/${encodeURIComponent('pol/icy id?#%ü')}`, `/v2/system/integrations/${encodeURIComponent('8e3c-uuid')}/health-report`, '/v2/oauth/token');
    const queries: Array<Record<string, string | boolean | undefined>> = [
      {},
      { image_status: 'active', full_tag: undefined },
      { image_status: 'active', full_tag: 'docker.io/acme/app:1.0' },
      { tag: 'docker.io/library/nginx:1.27', policy_id: undefined, detail: true, interactive: true },
      { auto_subscribe: false, force: undefined },
      { detail: false },
    ];
    for (const b of bases) for (const p of paths) for (const q of queries) expect(requestTarget(urlBase(b), p, q)).toEqual(viaUrl(b, p, q));
  });
  it('when any path and query are given, dot segments, spaces, ? and # included, then origin and path are what new URL() gave', () => {
    const segment = fc.oneof(fc.string(), fc.constantFrom('.', '..', '%2e', '%2E%2e', '.%2e', 'a b', 'a?b', 'a#b', 'ü', '%', '%zz', '\\'));
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        fc.array(segment, { maxLength: 5 }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.boolean(), fc.constant(undefined)), { maxKeys: 4 }),
        (b, segments, query) => {
          const path = `/${segments.join('/')}`;
          expect(requestTarget(urlBase(b), path, query)).toEqual(viaUrl(b, path, query));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

/** How the client read a body of known length before readDeclared: an async iterator over the stream. */
async function viaIterator(body: Readable, declared: number, tooLong: () => Error): Promise<string> {
  const buf = Buffer.allocUnsafe(declared);
  let off = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (off + chunk.length > declared) throw tooLong();
    chunk.copy(buf, off);
    off += chunk.length;
  }
  return buf.toString('utf8', 0, off);
}

describe('readDeclared', () => {
  type Script = (s: Readable) => void;
  const outcome = async (read: typeof viaIterator, script: Script, declared: number): Promise<{ text?: string; err?: string }> => {
    const s = new Readable({ read() {} });
    script(s);
    const tooLong = (): Error => {
      s.destroy();
      return new Error('too long');
    };
    try {
      return { text: await read(s, declared, tooLong) };
    } catch (e) {
      const err = e as Error & { code?: string };
      return { err: `${err.code ?? ''} ${err.message}` };
    }
  };
  const later = (f: () => void): void => void setTimeout(f, 5);
  const scripts: Record<string, [Script, number]> = {
    'one chunk': [(s) => (s.push(Buffer.from('{"a":1}')), s.push(null)), 7],
    'chunks arriving later, a multi-byte character split between them': [
      (s) => {
        const b = Buffer.from('{"ü":"€"}');
        later(() => (s.push(b.subarray(0, 4)), later(() => (s.push(b.subarray(4)), s.push(null)))));
      },
      Buffer.byteLength('{"ü":"€"}'),
    ],
    'fewer bytes than declared': [(s) => (s.push(Buffer.from('abc')), s.push(null)), 10],
    'more bytes than declared': [(s) => (s.push(Buffer.from('abcdef')), s.push(null)), 4],
    'an error after a chunk': [(s) => (s.push(Buffer.from('ab')), later(() => s.destroy(new Error('socket hang up')))), 10],
    'an error before reading began': [(s) => s.destroy(Object.assign(new Error('timed out'), { name: 'TimeoutError' })), 10],
    'a close without end': [(s) => (s.push(Buffer.from('ab')), later(() => s.destroy())), 10],
    'a close before reading began': [(s) => s.destroy(), 10],
  };
  for (const [name, [script, declared]] of Object.entries(scripts)) {
    it(`when the body has ${name}, then the text or the error is what an async iterator gave`, async () => {
      // A stream destroyed in the script may not have closed yet: both readers see it in the same state.
      const expected = await outcome(viaIterator, script, declared);
      expect(await outcome(readDeclared, script, declared)).toEqual(expected);
    });
  }
});
