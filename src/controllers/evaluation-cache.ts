import type { AnchoreApi, PolicyCheck, PolicyRecord, Vulnerability } from '../anchore/anchore.port.ts';
import { Semaphore } from '../runtime/limits.ts';

interface Entry<T> {
  at: number;
  value?: T;
  inflight?: Promise<T>;
}

/**
 * Evaluations shared across bindings: N bindings over the same (account, policy, digest, tag) cost one Anchore call
 * per freshness window. Concurrent requests for one key share a single in-flight call; failures are not cached.
 * Anchore calls made here are bounded by their own semaphore so evaluation cannot starve registration.
 */
export class EvaluationCache {
  readonly #anchore: AnchoreApi;
  readonly #sem: Semaphore;
  readonly #now: () => number;
  readonly #checks = new Map<string, Entry<PolicyCheck>>();
  readonly #vulns = new Map<string, Entry<Vulnerability[]>>();
  readonly #policies = new Map<string, Entry<PolicyRecord[]>>();
  /** Anchore calls actually made (for tests and metrics). */
  calls = 0;

  constructor(anchore: AnchoreApi, concurrency: number, now: () => number = Date.now) {
    this.#anchore = anchore;
    this.#sem = new Semaphore(concurrency);
    this.#now = now;
  }

  check(account: string, policyId: string, digest: string, tag: string, maxAgeMs: number): Promise<PolicyCheck> {
    return this.#get(this.#checks, `${account}|${policyId}|${digest}|${tag}`, maxAgeMs, () => this.#anchore.checkImage(account, digest, tag, policyId));
  }

  /** The freshest evaluation time we hold for a key, if any (to tell a re-evaluation from the first one). */
  checkedAt(account: string, policyId: string, digest: string, tag: string): number | undefined {
    return this.#checks.get(`${account}|${policyId}|${digest}|${tag}`)?.at;
  }

  vulnerabilities(account: string, digest: string, maxAgeMs: number): Promise<Vulnerability[]> {
    return this.#get(this.#vulns, `${account}|${digest}`, maxAgeMs, () => this.#anchore.vulnerabilities(account, digest));
  }

  policies(account: string, maxAgeMs: number): Promise<PolicyRecord[]> {
    return this.#get(this.#policies, account, maxAgeMs, () => this.#anchore.listPolicies(account));
  }

  /** Drops evaluations of an account (e.g. its active policy changed). */
  invalidateAccount(account: string): void {
    for (const k of this.#checks.keys()) if (k.startsWith(`${account}|`)) this.#checks.delete(k);
  }

  /** Drops entries not refreshed for `olderThanMs`, so memory follows what still runs. */
  prune(olderThanMs: number): void {
    const cutoff = this.#now() - olderThanMs;
    for (const m of [this.#checks, this.#vulns, this.#policies] as Map<string, Entry<unknown>>[]) {
      for (const [k, e] of m) if (!e.inflight && e.at < cutoff) m.delete(k);
    }
  }

  get size(): number {
    return this.#checks.size + this.#vulns.size;
  }

  #get<T>(map: Map<string, Entry<T>>, key: string, maxAgeMs: number, load: () => Promise<T>): Promise<T> {
    const e = map.get(key);
    if (e?.inflight) return e.inflight;
    if (e && e.value !== undefined && this.#now() - e.at < maxAgeMs) return Promise.resolve(e.value);
    const p = this.#sem.run(() => {
      this.calls++;
      return load();
    });
    const entry: Entry<T> = { at: e?.at ?? 0, inflight: p };
    if (e?.value !== undefined) entry.value = e.value;
    map.set(key, entry);
    p.then(
      (value) => map.set(key, { at: this.#now(), value }),
      () => {
        // Keep a previous value (old results stay visible) but never cache the failure.
        if (entry.value !== undefined) map.set(key, { at: entry.at, value: entry.value });
        else map.delete(key);
      },
    );
    return p;
  }
}
