// Authentication (Basic, Basic `_api_key`, OAuth bearer tokens) and account scoping via x-anchore-account.
import { randomBytes } from 'node:crypto';
import { ADMIN_ACCOUNT } from './config.ts';
import { ApiError } from './errors.ts';
import type { SimConfig } from './types.ts';

/** Who a request authenticated as. */
export interface Principal {
  username: string;
  account: string;
  via: 'basic' | 'api_key' | 'bearer';
}

interface UserEntry {
  username: string;
  password: string;
  account: string;
}

interface KeyEntry {
  name: string;
  username: string;
  account: string;
}

interface TokenEntry {
  username: string;
  account: string;
  expiresAt: number;
}

/** The OAuth TokenResponse. */
export interface TokenResponse {
  access_token: string;
  expires_in: number;
  token_type: 'bearer';
  refresh_token: string;
}

const UNAUTHORIZED_HEADERS = { 'www-authenticate': 'Basic realm="Authentication required"' };

function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', {}, { headers: UNAUTHORIZED_HEADERS });
}

function oauthError(status: number, error: string, description: string): ApiError {
  return new ApiError(status, description, {}, { extra: { error, error_description: description } });
}

/** Users, keys and tokens; all lookups are single map reads. */
export class AuthRegistry {
  private readonly users = new Map<string, UserEntry>();
  private readonly keys = new Map<string, KeyEntry>();
  private readonly accounts = new Set<string>();
  private readonly revoked = new Set<string>();
  private readonly accessTokens = new Map<string, TokenEntry>();
  private readonly refreshTokens = new Map<string, TokenEntry>();
  private readonly config: SimConfig;
  private readonly now: () => number;

  constructor(config: SimConfig, now: () => number) {
    this.config = config;
    this.now = now;
    for (const a of config.accounts) {
      this.accounts.add(a.name);
      for (const u of a.users) this.users.set(u.username, { ...u, account: a.name });
      for (const k of a.api_keys ?? []) {
        this.keys.set(k.value, { name: k.name, username: k.username ?? a.users[0]?.username ?? `_api_key:${k.name}`, account: a.name });
      }
    }
  }

  /** Names of the configured accounts, in config order. */
  accountNames(): string[] {
    return [...this.accounts];
  }

  hasAccount(name: string): boolean {
    return this.accounts.has(name);
  }

  /**
   * Authenticates from the Authorization header.
   * @throws ApiError 401 for missing, malformed, wrong, expired or revoked credentials.
   */
  authenticate(authorization: string | undefined): Principal {
    if (authorization === undefined) throw unauthorized();
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw unauthorized();
      const username = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      if (username === '_api_key') {
        const key = this.keys.get(password);
        if (key === undefined || this.revoked.has(key.username)) throw unauthorized();
        return { username: key.username, account: key.account, via: 'api_key' };
      }
      const user = this.users.get(username);
      if (user === undefined || user.password !== password || this.revoked.has(username)) throw unauthorized();
      return { username, account: user.account, via: 'basic' };
    }
    if (scheme === 'bearer') {
      const token = this.accessTokens.get(value);
      if (token === undefined || token.expiresAt <= this.now() || this.revoked.has(token.username)) throw unauthorized();
      return { username: token.username, account: token.account, via: 'bearer' };
    }
    throw unauthorized();
  }

  /** The user name Basic credentials claim, whether or not they are valid (for the request log). */
  claimedUser(authorization: string | undefined): string | undefined {
    if (authorization === undefined || !authorization.toLowerCase().startsWith('basic ')) {
      if (authorization?.toLowerCase().startsWith('bearer ')) return this.accessTokens.get(authorization.slice(7).trim())?.username;
      return undefined;
    }
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const username = decoded.slice(0, colon);
    return username === '_api_key' ? this.keys.get(decoded.slice(colon + 1))?.username : username;
  }

  /** The account a principal defaults to, and whether it is the admin account. */
  isAdmin(p: Principal): boolean {
    return p.account === ADMIN_ACCOUNT;
  }

  /**
   * The account a request acts in. Admin-account users may act as any existing account; others only as their own.
   * @throws ApiError 404 "User account not found" (admins, unknown account) or 403 (others).
   */
  resolveAccount(p: Principal, requested: string | undefined, action: string): string {
    if (requested === undefined || requested === '' || requested === p.account) return p.account;
    if (this.isAdmin(p)) {
      if (this.accounts.has(requested)) return requested;
      throw new ApiError(404, `User account not found: ${requested}`, { account: requested });
    }
    throw new ApiError(403, `Not authorized. Requires permissions: domain=${requested} action=${action} target=`, {});
  }

  /**
   * POST /v2/oauth/token for a parsed form.
   * @throws ApiError 400 for a malformed request, 403 for bad credentials or an invalid refresh token.
   */
  grant(form: Record<string, string>): TokenResponse {
    const grantType = form.grant_type === undefined || form.grant_type === '' ? 'password' : form.grant_type;
    if (grantType === 'password') {
      const username = form.username;
      const password = form.password;
      if (username === undefined || username === '' || password === undefined) {
        throw oauthError(400, 'invalid_request', 'username and password are required for the password grant');
      }
      const user = this.users.get(username);
      if (user === undefined || user.password !== password || this.revoked.has(username)) {
        throw oauthError(403, 'invalid_grant', 'Invalid username or password');
      }
      return this.issue(user.username, user.account, undefined);
    }
    if (grantType === 'refresh_token') {
      const refresh = form.refresh_token;
      if (refresh === undefined || refresh === '') throw oauthError(400, 'invalid_request', 'refresh_token is required for the refresh_token grant');
      const entry = this.refreshTokens.get(refresh);
      if (entry === undefined || entry.expiresAt <= this.now() || this.revoked.has(entry.username)) {
        throw oauthError(403, 'invalid_grant', 'Invalid refresh token');
      }
      return this.issue(entry.username, entry.account, refresh);
    }
    throw oauthError(400, 'unsupported_grant_type', `Unsupported grant_type: ${grantType}`);
  }

  /** POST /v2/oauth/revoke: forgets a token; unknown tokens are fine (RFC 7009). */
  revokeToken(token: string): void {
    this.accessTokens.delete(token);
    this.refreshTokens.delete(token);
  }

  private issue(username: string, account: string, existingRefresh: string | undefined): TokenResponse {
    const now = this.now();
    const access = `sim-at-${randomBytes(18).toString('base64url')}`;
    this.accessTokens.set(access, { username, account, expiresAt: now + this.config.token_ttl_seconds * 1000 });
    let refresh = existingRefresh;
    if (refresh === undefined) {
      refresh = `sim-rt-${randomBytes(18).toString('base64url')}`;
      this.refreshTokens.set(refresh, { username, account, expiresAt: now + this.config.refresh_token_ttl_seconds * 1000 });
    }
    return { access_token: access, expires_in: this.config.token_ttl_seconds, token_type: 'bearer', refresh_token: refresh };
  }

  /** Makes every issued access token (and, optionally, refresh token) expired from now on. */
  expireTokens(includeRefresh: boolean): void {
    for (const t of this.accessTokens.values()) t.expiresAt = 0;
    if (includeRefresh) for (const t of this.refreshTokens.values()) t.expiresAt = 0;
  }

  /**
   * Changes a user's password, as an Anchore admin rotating it: from now on Basic auth and the OAuth password grant
   * take only the new one. Tokens already issued stay valid until they expire. @throws Error for an unknown user.
   */
  setPassword(username: string, password: string): void {
    const user = this.users.get(username);
    if (user === undefined) throw new Error(`setPassword: no user "${username}"`);
    user.password = password;
  }

  /** From now on, password, API-key and token auth as this user answers 401. */
  revoke(username: string): void {
    this.revoked.add(username);
  }

  /** Forgets tokens and revocations. */
  reset(): void {
    this.accessTokens.clear();
    this.refreshTokens.clear();
    this.revoked.clear();
  }
}
