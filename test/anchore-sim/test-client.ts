import { createHash } from 'node:crypto';
// A tiny HTTP client for the simulator's own tests: real requests over the network (undici), no mocks.
import { request } from 'undici';
import type { Dispatcher } from 'undici';

/** Credentials for a request: Basic user/password, an API key, a bearer token, or none. */
export type Auth = { user: string; password: string } | { apiKey: string } | { bearer: string } | undefined;

/** Options of {@link call}. */
export interface CallOptions {
  auth?: Auth;
  json?: unknown;
  form?: Record<string, string>;
  /** A raw body (sent as is, with contentType if given). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  account?: string;
  dispatcher?: Dispatcher;
}

/** What {@link call} returns. */
export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  body: any;
}

/** The default admin credentials of the simulator config. */
export const ADMIN: Auth = { user: 'admin', password: 'foobar' };
/** The default team-a credentials. */
export const TEAM_A: Auth = { user: 'team-a-user', password: 'team-a-pass' };

function authHeader(auth: Auth): string | undefined {
  if (auth === undefined) return undefined;
  if ('bearer' in auth) return `Bearer ${auth.bearer}`;
  const [u, p] = 'apiKey' in auth ? ['_api_key', auth.apiKey] : [auth.user, auth.password];
  return `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
}

/** Sends one request to the simulator. */
export async function call(baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  const auth = authHeader(opts.auth === undefined && !('auth' in opts) ? ADMIN : opts.auth);
  if (auth !== undefined) headers.authorization = auth;
  if (opts.account !== undefined) headers['x-anchore-account'] = opts.account;
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = opts.contentType ?? 'application/json';
  } else if (opts.form !== undefined) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = opts.contentType ?? 'application/x-www-form-urlencoded';
  } else if (opts.raw !== undefined) {
    body = opts.raw;
    if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  }
  const res = await request(`${baseUrl}${path}`, { method, headers, body, ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher }) });
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, body: parsed };
}

/** A deterministic lowercase UUID for a name, as Kubernetes UIDs look (the spec types inventory uids as UUIDs). */
export function uidOf(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A valid digest made of one repeated hex character (e.g. digestOf('a')). */
export function digestOf(ch: string): string {
  return `sha256:${ch.repeat(64)}`;
}

/** An ImageAnalysisRequest adding by digest. */
export function digestSource(repo: string, digest: string, tag: string): Record<string, unknown> {
  return { source: { digest: { pull_string: `${repo}@${digest}`, tag } } };
}

/** An ImageAnalysisRequest adding by tag. */
export function tagSource(pullString: string): Record<string, unknown> {
  return { source: { tag: { pull_string: pullString } } };
}

/** Polls `fn` until it returns a defined value or the deadline passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
