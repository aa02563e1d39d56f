import { createHash } from 'node:crypto';
import type { AccessChecker, RequestUser, ResourceAccess } from './cluster.port.ts';
import type { KubeClient } from './client.ts';

/** The verdict on one bearer token for one non-resource request. */
interface AccessDecision {
  /** false: the token is not valid (401). */
  authenticated: boolean;
  /** false with authenticated: valid token, no permission (403). */
  allowed: boolean;
  user?: string;
  reason?: string;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

/**
 * Authenticates a bearer token with a TokenReview and authorizes it with a SubjectAccessReview on a non-resource
 * path (what kube-rbac-proxy and controller-runtime's metrics filter do). Decisions are cached by a hash of the token
 * (allowed for 60 s, denied for 10 s) so each scrape does not cost two apiserver calls; the token itself is never
 * stored or logged.
 */
export class KubeAccessReviewer implements AccessChecker {
  readonly #client: KubeClient;
  readonly #cache = new Map<string, { decision: AccessDecision; until: number }>();
  readonly #maxEntries: number;

  constructor(client: KubeClient, opts: { maxEntries?: number } = {}) {
    this.#client = client;
    this.#maxEntries = opts.maxEntries ?? 1000;
  }

  async review(token: string, path: string, verb: string): Promise<AccessDecision> {
    const key = createHash('sha256').update(`${verb} ${path} ${token}`).digest('hex');
    const now = Date.now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit.decision;
    const decision = await this.#decide(token, path, verb);
    if (this.#cache.size >= this.#maxEntries) {
      for (const [k, v] of this.#cache) if (v.until <= now) this.#cache.delete(k);
      if (this.#cache.size >= this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    this.#cache.set(key, { decision, until: now + (decision.allowed ? 60_000 : 10_000) });
    return decision;
  }

  async allowed(user: RequestUser, access: ResourceAccess, timeoutMs: number): Promise<{ allowed: boolean; reason?: string }> {
    const sar = await this.#client.request<{ status?: { allowed?: boolean; reason?: string } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username ?? '',
          ...(user.uid ? { uid: user.uid } : {}),
          groups: user.groups ?? [],
          ...(user.extra ? { extra: user.extra } : {}),
          resourceAttributes: { group: access.group, resource: access.resource, verb: access.verb, ...(access.namespace ? { namespace: access.namespace } : {}) },
        },
      },
      timeoutMs,
    });
    const allowed = sar.status?.allowed === true;
    return { allowed, ...(sar.status?.reason ? { reason: sar.status.reason } : {}) };
  }

  async #decide(token: string, path: string, verb: string): Promise<AccessDecision> {
    const tr = await this.#client.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      timeoutMs: 10_000,
    });
    const st = tr.status ?? {};
    if (!st.authenticated || !st.user?.username) {
      return { authenticated: false, allowed: false, reason: st.error ? 'token rejected by the apiserver' : 'token not authenticated' };
    }
    const user = st.user;
    const sar = await this.#client.request<{ status?: { allowed?: boolean; denied?: boolean; reason?: string } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid ? { uid: user.uid } : {}),
          groups: user.groups ?? [],
          ...(user.extra ? { extra: user.extra } : {}),
          nonResourceAttributes: { path, verb },
        },
      },
      timeoutMs: 10_000,
    });
    const allowed = sar.status?.allowed === true;
    return {
      authenticated: true,
      allowed,
      user: user.username,
      ...(allowed ? {} : { reason: sar.status?.reason || `user "${user.username}" may not ${verb} ${path}` }),
    };
  }
}
