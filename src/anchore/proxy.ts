/**
 * Which proxy, if any, carries the calls to Anchore: the standard HTTPS_PROXY / HTTP_PROXY / NO_PROXY variables (and
 * their lower-case forms), read once when the client is built. Only the Anchore client uses them: the Kubernetes API
 * is always reached directly.
 */
import { BlockList, isIP } from 'node:net';

/** The environment the proxy variables are read from (process.env in production). */
export type ProxyEnv = Readonly<Record<string, string | undefined>>;

export type ProxyChoice =
  /** No proxy variable applies to this URL's scheme. */
  | { kind: 'none' }
  /** A proxy variable is set, but NO_PROXY names this host (`entry` is the matching entry, as written). */
  | { kind: 'bypass'; variable: string; entry: string }
  /** Calls go through `url` (it may carry credentials: log `display`, never `url`). */
  | { kind: 'proxy'; variable: string; url: URL; display: string };

export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';
}

/** The first of these variables that is set and not blank: lower case first, as curl and most tools read them. */
function firstSet(env: ProxyEnv, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/**
 * The proxy for calls to `target` (Anchore's base URL): `https_proxy`/`HTTPS_PROXY` for an https URL,
 * `http_proxy`/`HTTP_PROXY` for an http one (no fallback from one scheme to the other, as curl, Go and Python do), unless
 * `no_proxy`/`NO_PROXY` names the host. A proxy URL without a scheme is read as http:// (`proxy:3128`). Throws a
 * ProxyConfigError, naming the variable but never its value, when the proxy URL cannot be used.
 */
export function proxyFor(target: string, env: ProxyEnv): ProxyChoice {
  const u = new URL(target);
  const names = u.protocol === 'https:' ? ['https_proxy', 'HTTPS_PROXY'] : ['http_proxy', 'HTTP_PROXY'];
  const set = firstSet(env, names);
  if (!set) return { kind: 'none' };
  const host = normaliseHost(u.hostname);
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']);
  const entry = noProxy ? noProxyMatch(noProxy.value, host, port) : undefined;
  if (entry !== undefined) return { kind: 'bypass', variable: set.name, entry };
  const url = parseProxyUrl(set.name, set.value);
  return { kind: 'proxy', variable: set.name, url, display: displayProxy(url) };
}

function parseProxyUrl(variable: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw new ProxyConfigError(`${variable} is not a URL (expected http://host:port, optionally with user:password@)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyConfigError(`${variable} uses ${url.protocol.slice(0, -1)}://; the Anchore client supports http:// and https:// proxies`);
  }
  if (!url.hostname) throw new ProxyConfigError(`${variable} names no host`);
  return url;
}

/** scheme://host:port of a proxy URL: what may be logged (no user, no password, no path). */
export function displayProxy(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** Lower case, IPv6 brackets and a trailing dot removed: the form hosts are compared in. */
function normaliseHost(h: string): string {
  let host = h.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host.length > 1 && host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

/**
 * The NO_PROXY entry that exempts `host`:`port`, or undefined. Entries are separated by commas or white space:
 * - `*` exempts every host;
 * - `example.com`, `.example.com` and `*.example.com` exempt example.com and every name below it (curl, undici, Python);
 * - an IP address exempts exactly that address, and a CIDR block (`10.0.0.0/8`, `fd00::/8`) every address in it —
 *   both only when ANCHORE_URL names the address itself (names are not resolved);
 * - any of these with `:port` (`[::1]:8228` for IPv6) exempts only that port.
 */
export function noProxyMatch(noProxy: string, host: string, port: number): string | undefined {
  const target = normaliseHost(host);
  const targetIp = isIP(target);
  for (const raw of noProxy.split(/[\s,]+/)) {
    if (!raw) continue;
    let entry = raw;
    let entryPort = 0;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1] as string;
      entryPort = Number(bracketed[2] ?? 0);
    } else {
      const withPort = /^([^:]+):(\d+)$/.exec(entry);
      if (withPort) {
        entry = withPort[1] as string;
        entryPort = Number(withPort[2]);
      }
    }
    if (entryPort && entryPort !== port) continue;
    if (entry === '*') return raw;
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const family = isIP(cidr[1] as string);
      const bits = Number(cidr[2]);
      if (!family || !targetIp || family !== targetIp || bits > (family === 4 ? 32 : 128)) continue;
      const block = new BlockList();
      block.addSubnet(cidr[1] as string, bits, family === 4 ? 'ipv4' : 'ipv6');
      if (block.check(target, family === 4 ? 'ipv4' : 'ipv6')) return raw;
      continue;
    }
    const name = normaliseHost(entry.replace(/^\*?\./, ''));
    if (!name) continue;
    const nameIp = isIP(name);
    if (nameIp || targetIp) {
      if (nameIp && nameIp === targetIp && sameAddress(name, target, nameIp)) return raw;
      continue;
    }
    if (target === name || target.endsWith(`.${name}`)) return raw;
  }
  return undefined;
}

/** Two IP addresses of one family are the same (`::1` and `0:0:0:0:0:0:0:1` are). */
function sameAddress(a: string, b: string, family: number): boolean {
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addAddress(a, type);
  return list.check(b, type);
}
