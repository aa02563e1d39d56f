import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../../test/anchore-sim/index.ts';
import { type TestProxy, startTestProxy } from '../../test/support/proxy.ts';
import { selfSigned } from '../../test/support/tls.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AnchoreHttpClient, type AnchoreHttpConfig } from './anchore.http.ts';
import { AnchoreError } from './errors.ts';
import { ProxyConfigError, noProxyMatch, proxyFor } from './proxy.ts';

describe('NO_PROXY matching', () => {
  it.each([
    // [NO_PROXY, host, port, matching entry]
    ['*', 'anchore.example.com', 443, '*'],
    ['other.example, *', 'anchore.example.com', 443, '*'],
    ['example.com', 'example.com', 443, 'example.com'],
    ['example.com', 'anchore.example.com', 443, 'example.com'],
    ['.example.com', 'example.com', 443, '.example.com'],
    ['.example.com', 'anchore.eu.example.com', 443, '.example.com'],
    ['*.example.com', 'anchore.example.com', 443, '*.example.com'],
    ['EXAMPLE.com.', 'Anchore.Example.COM.', 443, 'EXAMPLE.com.'],
    ['svc.cluster.local,.svc', 'anchore-api.anchore.svc', 8228, '.svc'],
    ['anchore:8228', 'anchore', 8228, 'anchore:8228'],
    ['127.0.0.1', '127.0.0.1', 8228, '127.0.0.1'],
    ['10.0.0.0/8', '10.1.2.3', 443, '10.0.0.0/8'],
    ['::1', '[::1]', 443, '::1'],
    ['[::1]:8228', '::1', 8228, '[::1]:8228'],
    ['fd00::/8', 'fd12::5', 443, 'fd00::/8'],
    ['0:0:0:0:0:0:0:1', '::1', 443, '0:0:0:0:0:0:0:1'],
    ['a.example  b.example\tanchore.example', 'anchore.example', 443, 'anchore.example'],
  ])('when NO_PROXY is %p, then %s:%d is exempt (entry %p)', (noProxy, host, port, entry) => {
    expect(noProxyMatch(noProxy, host, port)).toBe(entry);
  });

  it.each([
    ['', 'anchore.example.com', 443],
    ['example.com', 'notexample.com', 443],
    ['anchore.example.com', 'example.com', 443],
    ['anchore:8228', 'anchore', 443],
    ['*:80', 'anchore', 443],
    ['0.0.1', '127.0.0.1', 443],
    ['10.0.0.0/8', '11.0.0.1', 443],
    ['10.0.0.0/8', 'ten.example', 443],
    ['127.0.0.1', '127.0.0.10', 443],
    ['::1', '::2', 443],
  ])('when NO_PROXY is %p, then %s:%d still goes through the proxy', (noProxy, host, port) => {
    expect(noProxyMatch(noProxy, host, port)).toBeUndefined();
  });
});

describe('which proxy the Anchore URL gets', () => {
  it('when only HTTPS_PROXY is set, then an https Anchore uses it and a plain-http one does not (no fallback between schemes)', () => {
    const env = { HTTPS_PROXY: 'http://proxy.corp:3128' };
    expect(proxyFor('https://anchore:8228', env)).toMatchObject({ kind: 'proxy', variable: 'HTTPS_PROXY', display: 'http://proxy.corp:3128' });
    expect(proxyFor('http://anchore:8228', env)).toEqual({ kind: 'none' });
    expect(proxyFor('http://anchore:8228', { HTTP_PROXY: 'http://proxy.corp:3128' })).toMatchObject({ kind: 'proxy', variable: 'HTTP_PROXY' });
  });

  it('when the lower-case and upper-case forms are both set, then the lower-case one wins; blank values count as unset', () => {
    expect(proxyFor('https://anchore', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' })).toMatchObject({ variable: 'https_proxy', display: 'http://lower:1' });
    expect(proxyFor('https://anchore', { https_proxy: '  ', HTTPS_PROXY: 'http://upper:2' })).toMatchObject({ variable: 'HTTPS_PROXY', display: 'http://upper:2' });
    expect(proxyFor('https://anchore', { HTTPS_PROXY: 'http://p:1', no_proxy: 'other', NO_PROXY: 'anchore' })).toMatchObject({ kind: 'proxy' });
    expect(proxyFor('https://anchore', { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'anchore' })).toEqual({ kind: 'bypass', variable: 'HTTPS_PROXY', entry: 'anchore' });
  });

  it('when the proxy URL has no scheme, then it is http://; its credentials are kept for the proxy but never shown', () => {
    const c = proxyFor('https://anchore', { HTTPS_PROXY: 'alice:s3cret@proxy.corp:3128' });
    expect(c.kind === 'proxy' && { href: c.url.href, display: c.display }).toEqual({ href: 'http://alice:s3cret@proxy.corp:3128/', display: 'http://proxy.corp:3128' });
  });

  it('when the proxy URL cannot be used, then a ProxyConfigError names the variable but never its value', () => {
    for (const value of ['socks5://alice:s3cret@proxy:1080', 'http://alice:s3cret@[bad']) {
      let err: unknown;
      try {
        proxyFor('https://anchore', { HTTPS_PROXY: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyConfigError);
      expect((err as Error).message).toMatch(/^HTTPS_PROXY /);
      expect((err as Error).message).not.toContain('s3cret');
    }
  });
});

describe('AnchoreHttpClient through a proxy', () => {
  const clients: AnchoreHttpClient[] = [];
  let tlsSim: AnchoreSimulator;
  let plainSim: AnchoreSimulator;
  let caFile: string;
  let proxy: TestProxy;
  let authProxy: TestProxy;
  const PASSWORD = 'pr0xy-S3cret!';

  beforeAll(async () => {
    const cert = selfSigned(mkdtempSync(join(tmpdir(), 'proxy-tls-')), '127.0.0.1');
    caFile = cert.certFile;
    tlsSim = await startSimulator({ tls: { cert: cert.pem, key: readFileSync(cert.keyFile, 'utf8') } });
    plainSim = await startSimulator();
    proxy = await startTestProxy();
    authProxy = await startTestProxy({ auth: { username: 'op', password: PASSWORD } });
  });
  afterEach(() => {
    tlsSim.reset();
    plainSim.reset();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([tlsSim.stop(), plainSim.stop(), proxy.stop(), authProxy.stop()]);
  });

  /** A client of the https simulator, verified with its CA, and every log line it writes (at trace level). */
  function client(over: Partial<AnchoreHttpConfig> = {}, sim = tlsSim): { c: AnchoreHttpClient; lines: string[] } {
    const lines: string[] = [];
    const c = new AnchoreHttpClient({
      url: sim.url,
      auth: { type: 'basic', username: 'admin', password: 'foobar' },
      ...(sim === tlsSim ? { caFile } : {}),
      log: createLogger({ level: 'trace', pretty: false }, { write: (s: string) => void lines.push(s) }),
      retry: { attempts: 2, backoff: { baseMs: 10, maxMs: 20, jitter: 0 } },
      proxyEnv: {},
      ...over,
    });
    clients.push(c);
    return { c, lines };
  }
  const simPort = (sim: AnchoreSimulator): string => new URL(sim.url).port;

  it('when HTTPS_PROXY names a proxy, then every call to an https Anchore goes through a CONNECT tunnel to Anchore, still verified against ANCHORE_CA_FILE; the proxy is logged once', async () => {
    const before = proxy.tunnels;
    const { c, lines } = client({ proxyEnv: { HTTPS_PROXY: proxy.url } });
    await expect(c.version()).resolves.toMatchObject({ api: '2' });
    await expect(c.listImages('admin')).resolves.toEqual([]);
    expect(proxy.tunnels - before).toBeGreaterThan(0);
    expect(new Set(proxy.targets.slice(-1))).toEqual(new Set([`127.0.0.1:${simPort(tlsSim)}`]));
    expect(tlsSim.requests({ path: '/v2/images' })).toHaveLength(1);
    const said = lines.map((l) => JSON.parse(l) as { msg: string; proxy?: string; variable?: string }).filter((l) => l.msg === 'Anchore calls go through a proxy');
    expect(said).toEqual([expect.objectContaining({ proxy: proxy.url, variable: 'HTTPS_PROXY', proxyAuth: false })]);
  });

  it('when the CA is not given, then the call through the tunnel fails TLS verification: the proxy carries the TLS session, it does not end it', async () => {
    const { c } = client({ proxyEnv: { HTTPS_PROXY: proxy.url }, caFile: undefined });
    const before = proxy.tunnels;
    const err = await c.listImages('admin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnchoreError);
    expect((err as AnchoreError).kind).toBe('tls');
    expect(proxy.tunnels - before).toBeGreaterThan(0);
  });

  it('when NO_PROXY names the Anchore host, then calls go directly: no tunnel, and the log says which entry exempted it', async () => {
    const before = proxy.tunnels + proxy.forwarded;
    const { c, lines } = client({ proxyEnv: { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' } });
    await expect(c.listImages('admin')).resolves.toEqual([]);
    expect(proxy.tunnels + proxy.forwarded - before).toBe(0);
    expect(lines.map((l) => JSON.parse(l) as { msg: string; noProxyEntry?: string }).find((l) => /NO_PROXY exempts/.test(l.msg))).toMatchObject({ noProxyEntry: '127.0.0.1' });
  });

  it('when the proxy wants Proxy-Authorization, then user:password from the proxy URL get through, and the password is in no log line, even at trace level', async () => {
    const before = authProxy.tunnels;
    const { c, lines } = client({ proxyEnv: { https_proxy: `http://op:${encodeURIComponent(PASSWORD)}@127.0.0.1:${authProxy.port}` } });
    await expect(c.listImages('admin')).resolves.toEqual([]);
    await expect(c.version()).resolves.toMatchObject({ api: '2' });
    expect(authProxy.tunnels - before).toBeGreaterThan(0);
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    expect(all).toContain(`"proxy":"http://127.0.0.1:${authProxy.port}"`);
    expect(all).toContain('"proxyAuth":true');
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), Buffer.from(`op:${PASSWORD}`).toString('base64')]) expect(all).not.toContain(secret);
  });

  it('when the proxy refuses the credentials (407), then the call fails saying so, naming no password in the error or the log', async () => {
    const refusedBefore = authProxy.refused;
    const wrong = 'wr0ng-Passw0rd';
    const { c, lines } = client({ proxyEnv: { HTTPS_PROXY: `http://op:${wrong}@127.0.0.1:${authProxy.port}` } });
    const err = await c.listImages('admin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnchoreError);
    expect((err as AnchoreError).kind).toBe('unavailable');
    expect((err as AnchoreError).message).toMatch(/list_images: cannot reach Anchore \(the proxy answered 407 Proxy Authentication Required/);
    expect(authProxy.refused).toBeGreaterThan(refusedBefore);
    expect(`${(err as Error).message}\n${lines.join('\n')}`).not.toContain(wrong);
  });

  it('when HTTP_PROXY is set and Anchore is plain http, then requests are forwarded by the proxy (no tunnel)', async () => {
    const before = proxy.forwarded;
    const { c } = client({ proxyEnv: { HTTP_PROXY: proxy.url } }, plainSim);
    await expect(c.listImages('admin')).resolves.toEqual([]);
    expect(proxy.forwarded - before).toBe(1);
    expect(proxy.targets.at(-1)).toBe(`${plainSim.url}/v2/images?image_status=active`);
  });

  it('when no proxyEnv is given, then the client reads the process environment (what the operator does)', async () => {
    const saved = { https_proxy: process.env['https_proxy'], HTTPS_PROXY: process.env['HTTPS_PROXY'], no_proxy: process.env['no_proxy'], NO_PROXY: process.env['NO_PROXY'] };
    const restore = (): void => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
    try {
      for (const k of Object.keys(saved)) delete process.env[k];
      process.env['HTTPS_PROXY'] = proxy.url;
      const before = proxy.tunnels;
      const { c } = client({ proxyEnv: undefined });
      await expect(c.listImages('admin')).resolves.toEqual([]);
      expect(proxy.tunnels - before).toBeGreaterThan(0);
      process.env['NO_PROXY'] = '127.0.0.1';
      const direct = proxy.tunnels;
      const { c: c2 } = client({ proxyEnv: undefined });
      await expect(c2.listImages('admin')).resolves.toEqual([]);
      expect(proxy.tunnels).toBe(direct);
    } finally {
      restore();
    }
  });

  it('when the proxy variable cannot be used, then building the client fails naming the variable, not its value', () => {
    expect(() => client({ proxyEnv: { HTTPS_PROXY: 'socks5://op:sekr1t@127.0.0.1:1080' } })).toThrow(/^HTTPS_PROXY uses socks5:\/\/; the Anchore client supports http:\/\/ and https:\/\/ proxies$/);
  });
});
