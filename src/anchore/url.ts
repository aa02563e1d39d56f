/**
 * An ANCHORE_URL the operator cannot use. The message is the whole explanation: config.ts reports it as a ConfigError
 * (the entry point prints it and exits 2), and the client throws it for a URL that never went through the config.
 */
export class AnchoreUrlError extends Error {
  override readonly name = 'AnchoreUrlError';
}

/**
 * The one check of ANCHORE_URL, for the config and the client alike. Returns the base URL every `/v2/...` path is
 * appended to: a trailing slash and `/v2` are stripped, so both `https://a:8228` and `https://a:8228/v2/` work. A `/v1`
 * URL is refused with the V2 URL to use instead: it would otherwise fail later as a confusing "not reachable".
 */
export function parseAnchoreUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AnchoreUrlError(`ANCHORE_URL "${raw}" is not an http(s) URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AnchoreUrlError(`ANCHORE_URL "${raw}" is not an http(s) URL`);
  if (u.username || u.password) throw new AnchoreUrlError('ANCHORE_URL must not contain credentials; use ANCHORE_USERNAME/ANCHORE_PASSWORD');
  if (u.search || u.hash) throw new AnchoreUrlError(`ANCHORE_URL "${raw}" must not carry a query or fragment`);
  const path = u.pathname.replace(/\/+$/, '');
  if (/\/v1$/i.test(path)) {
    const base = `${u.origin}${path.slice(0, -3)}`;
    throw new AnchoreUrlError(`ANCHORE_URL "${raw}" ends in /v1, but the operator uses Anchore's V2 API: give the base URL (${base}) or ${base}/v2`);
  }
  return `${u.protocol}//${u.host}${path.endsWith('/v2') ? path.slice(0, -3) : path}`;
}
