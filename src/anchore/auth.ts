import { readFileSync, statSync } from 'node:fs';
import type { AnchoreError } from './errors.ts';

/**
 * How the operator authenticates to Anchore. `secretFile`: the file the password or key was read from (a mounted
 * Secret); it is read again when it changes, so a rotated Secret is used without a restart.
 */
export type AnchoreAuth =
  | { type: 'basic'; username: string; password: string; secretFile?: string }
  /** API keys use Basic auth with the literal username `_api_key` (Anchore docs). */
  | { type: 'apikey'; key: string; secretFile?: string }
  /** OAuth2 password grant against POST /v2/oauth/token; tokens are refreshed before expiry and once on 401. */
  | { type: 'oauth'; username: string; password: string; clientId?: string; secretFile?: string };

/** How often a secret file is checked for a change (a stat; it is read only when the stat moved). */
const SECRET_CHECK_MS = 5_000;

/**
 * A secret read from a file that Kubernetes may replace at any time (the kubelet swaps the Secret volume's `..data`
 * symlink). `value()` stats the file at most every 5 s and reads it again when it changed; `reload()` reads it now
 * (after Anchore answered 401). A file that cannot be read keeps the last value (the swap is not atomic for readers).
 */
export class SecretFile {
  readonly path: string;
  #value: string;
  #stamp: string;
  #checkedAt: number;
  readonly #now: () => number;

  constructor(path: string, initial: string, now: () => number = Date.now) {
    this.path = path;
    this.#value = initial;
    this.#now = now;
    this.#stamp = this.#stat() ?? '';
    this.#checkedAt = now();
  }

  value(): string {
    if (this.#now() - this.#checkedAt >= SECRET_CHECK_MS) this.#refresh(false);
    return this.#value;
  }

  /** Reads the file now; true when the secret changed. */
  reload(): boolean {
    return this.#refresh(true);
  }

  #stat(): string | undefined {
    try {
      const st = statSync(this.path);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }

  #refresh(force: boolean): boolean {
    this.#checkedAt = this.#now();
    const stamp = this.#stat();
    if (stamp === undefined || (!force && stamp === this.#stamp)) return false;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8').replace(/[\r\n]+$/, '');
    } catch {
      return false;
    }
    this.#stamp = stamp;
    if (!text || text === this.#value) return false;
    this.#value = text;
    return true;
  }
}

/** The username Anchore sees for these credentials (for integration registration and logs). */
export function authUsername(auth: AnchoreAuth): string {
  return auth.type === 'apikey' ? '_api_key' : auth.username;
}

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

export interface TokenResponse {
  access_token: string;
  expires_in?: number;
  refresh_token?: string;
}

/** Fetches a token with the given form fields; throws AnchoreError. */
type TokenFetcher = (form: Record<string, string>) => Promise<TokenResponse>;

/**
 * Keeps one OAuth access token fresh. Concurrent callers share a single in-flight token request, so a burst of
 * requests after expiry costs one token call, not one each.
 */
export class OAuthTokenManager {
  readonly #auth: Extract<AnchoreAuth, { type: 'oauth' }>;
  readonly #fetch: TokenFetcher;
  readonly #now: () => number;
  #access: string | undefined;
  #refresh: string | undefined;
  #expiresAt = 0;
  #inflight: Promise<string> | undefined;

  readonly #password: () => string;

  constructor(auth: Extract<AnchoreAuth, { type: 'oauth' }>, fetchToken: TokenFetcher, now: () => number = Date.now, password: () => string = () => auth.password) {
    this.#auth = auth;
    this.#fetch = fetchToken;
    this.#now = now;
    this.#password = password;
  }

  /** The password changed (a rotated Secret): the tokens it earned are dropped, the next call logs in again. */
  reset(): void {
    this.#access = undefined;
    this.#refresh = undefined;
    this.#expiresAt = 0;
  }

  /** A valid access token, refreshing when less than 10% of its life (at most 60 s) remains. */
  async token(): Promise<string> {
    if (this.#access && this.#now() < this.#expiresAt) return this.#access;
    return this.#renew();
  }

  /** Called after a 401: the token was revoked or expired early. */
  invalidate(rejected: string): void {
    if (this.#access === rejected) {
      this.#access = undefined;
      this.#expiresAt = 0;
    }
  }

  #renew(): Promise<string> {
    this.#inflight ??= this.#obtain().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #obtain(): Promise<string> {
    const clientId = this.#auth.clientId ?? 'anonymous';
    let res: TokenResponse | undefined;
    if (this.#refresh) {
      try {
        res = await this.#fetch({ grant_type: 'refresh_token', refresh_token: this.#refresh, client_id: clientId });
      } catch (err) {
        // A refused refresh token (expired, revoked) falls back to the password grant; an outage does not.
        if ((err as AnchoreError).kind === 'unavailable') throw err;
        this.#refresh = undefined;
      }
    }
    res ??= await this.#fetch({
      grant_type: 'password',
      username: this.#auth.username,
      password: this.#password(),
      client_id: clientId,
    });
    const ttlMs = Math.max(1, res.expires_in ?? 3600) * 1000;
    this.#access = res.access_token;
    this.#refresh = res.refresh_token ?? this.#refresh;
    this.#expiresAt = this.#now() + ttlMs - Math.min(60_000, ttlMs * 0.1);
    return this.#access;
  }
}
