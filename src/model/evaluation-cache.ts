import type { AnchoreApi, CallLimits, PolicyCheck, PolicyRecord } from '../anchore/anchore.port.ts';
import { Semaphore } from '../runtime/limits.ts';
import { digestKey } from './image-keys.ts';
import { type CveFilter, type VulnerabilitySummary, summariseVulnerabilities } from './vulnerability-summary.ts';

/** Findings kept per evaluation: the status shows the top ones; the count says how many there were. */
const KEPT_FINDINGS = 5;

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
  readonly #vulns = new Map<string, Entry<VulnerabilitySummary>>();
  readonly #cveFilter: CveFilter | undefined;
  readonly #policies = new Map<string, Entry<PolicyRecord[]>>();
  /** Anchore calls actually made (for tests and metrics). */
  calls = 0;

  constructor(anchore: AnchoreApi, concurrency: number, now: () => number = Date.now, opts: { cveFilter?: CveFilter } = {}) {
    this.#anchore = anchore;
    this.#cveFilter = opts.cveFilter;
    this.#sem = new Semaphore(concurrency);
    this.#now = now;
  }

  /** `limits`: for a caller with a deadline (admission); a call already in flight is shared whatever its limits. */
  check(account: string, policyId: string, digest: string, tag: string, maxAgeMs: number, limits?: CallLimits): Promise<PolicyCheck> {
    // Only what a binding shows is kept: the top findings (messages cut to 512 characters) and the count.
    return this.#get(this.#checks, checkKey(account, policyId, digest, tag), maxAgeMs, async () => {
      const c = await this.#anchore.checkImage(account, digest, tag, policyId, limits);
      return { ...c, findings: c.findings.slice(0, KEPT_FINDINGS).map((f) => ({ ...f, message: f.message.slice(0, 512) })) };
    });
  }

  /** A held evaluation no older than `maxAgeMs`, without calling Anchore (admission answers from it). */
  peekCheck(account: string, policyId: string, digest: string, tag: string, maxAgeMs: number): PolicyCheck | undefined {
    return this.#fresh(this.#checks.get(checkKey(account, policyId, digest, tag)), maxAgeMs);
  }

  /** The account's policy list if one was read in the last `maxAgeMs`, without calling Anchore. */
  peekPolicies(account: string, maxAgeMs: number): PolicyRecord[] | undefined {
    return this.#fresh(this.#policies.get(account), maxAgeMs);
  }

  /** Vulnerability counts of an image (and filtered per-CVE entries when enabled), never the full list. */
  vulnerabilities(account: string, digest: string, maxAgeMs: number): Promise<VulnerabilitySummary> {
    return this.#get(this.#vulns, digestKey(account, digest), maxAgeMs, async () => summariseVulnerabilities(await this.#anchore.vulnerabilities(account, digest), this.#now(), this.#cveFilter));
  }

  policies(account: string, maxAgeMs: number, limits?: CallLimits): Promise<PolicyRecord[]> {
    return this.#get(this.#policies, account, maxAgeMs, () => this.#anchore.listPolicies(account, limits));
  }

  /** Drops evaluations of an account (e.g. its active policy changed). */
  invalidateAccount(account: string): void {
    for (const k of this.#checks.keys()) if (k.startsWith(`${account}|`)) this.#checks.delete(k);
  }

  /**
   * Drops everything held about images Anchore no longer holds (deleted there, or a restored database): their policy
   * evaluations and vulnerability summaries, so no verdict of theirs is served again, to a binding or to admission. A
   * call for them already on its way is shared with whoever awaits it but not kept.
   */
  forgetImage(account: string, digests: readonly string[]): void {
    const gone = new Set(digests);
    for (const d of gone) this.#vulns.delete(digestKey(account, d));
    for (const k of this.#checks.keys()) if (k.startsWith(`${account}|`) && gone.has(digestOfCheckKey(k))) this.#checks.delete(k);
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

  /** An entry's value if it was read less than `maxAgeMs` ago. */
  #fresh<T>(e: Entry<T> | undefined, maxAgeMs: number): T | undefined {
    return e?.value !== undefined && this.#now() - e.at < maxAgeMs ? e.value : undefined;
  }

  #get<T>(map: Map<string, Entry<T>>, key: string, maxAgeMs: number, load: () => Promise<T>): Promise<T> {
    const e = map.get(key);
    if (e?.inflight) return e.inflight;
    const fresh = this.#fresh(e, maxAgeMs);
    if (fresh !== undefined) return Promise.resolve(fresh);
    const p = this.#sem.run(() => {
      this.calls++;
      return load();
    });
    const entry: Entry<T> = { at: e?.at ?? 0, inflight: p };
    if (e?.value !== undefined) entry.value = e.value;
    map.set(key, entry);
    p.then(
      (value) => {
        // Dropped while on its way (invalidateAccount, forgetImage): the answer is not kept.
        if (map.get(key) === entry) map.set(key, { at: this.#now(), value });
      },
      () => {
        if (map.get(key) !== entry) return;
        // Keep a previous value (old results stay visible) but never cache the failure.
        if (entry.value !== undefined) map.set(key, { at: entry.at, value: entry.value });
        else map.delete(key);
      },
    );
    return p;
  }
}

/** One policy evaluation: an image (digest, under a tag — Anchore maps policies per tag) against a policy in an account. */
function checkKey(account: string, policyId: string, digest: string, tag: string): string {
  return `${account}|${policyId}|${digest}|${tag}`;
}

/** The digest of a checkKey: read from the end, since neither a digest nor a tag holds a "|" (a policy id might). */
function digestOfCheckKey(key: string): string {
  const t = key.lastIndexOf('|');
  return key.slice(key.lastIndexOf('|', t - 1) + 1, t);
}
