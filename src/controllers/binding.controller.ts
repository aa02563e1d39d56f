import type { AnchoreApi, PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingImageResult, BindingInfo, BindingStatus, ImageResult } from '../crds/types.ts';
import { CONDITION, INSTALL_ANNOTATION, REASON } from '../crds/types.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { type CompiledBinding, DEFAULT_REEVALUATE_MS, bindingRef, checkVerdict, compileBinding } from '../model/binding-spec.ts';
import {
  type BindingStatusWriter,
  type ClusterStores,
  type EventRecorder,
  type ObjectRef,
  type PodInfo,
  type Store,
  type WorkloadRef,
  resolveWorkload,
  workloadKey,
  workloadObjectRef,
} from '../kube/cluster.port.ts';
import { StallError, WaitError, errorMessage } from '../runtime/errors.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { boundResults, conditionsFor, mergeConditions, sameStatus, summarize } from './binding-status.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import { MISSING_ACCOUNT_RECHECK_MS, type MissingAccounts } from '../model/missing-accounts.ts';
import { imageKey } from '../model/image-keys.ts';
import type { ImageUse } from '../model/running-images.ts';
import type { Scope } from '../model/scope.ts';
import { SLICE, yieldToLoop } from '../runtime/cooperative.ts';
import { formatTimestamp, parseDuration } from '../runtime/time.ts';


export interface BindingControllerOptions {
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'replicaSets' | 'jobs'>;
  bindings: Store<BindingInfo>;
  clusterBindings: Store<BindingInfo>;
  scope: Scope;
  images: ImageRegistry;
  cache: EvaluationCache;
  anchore: AnchoreApi;
  writer: BindingStatusWriter;
  events: EventRecorder;
  workers: number;
  /** How often the accounts' active policies are checked for a change. */
  policyPollMs: number;
  log: Logger;
  metrics: OperatorMetrics;
  /** This install's INSTALL_ID: the owner named on the cluster bindings it writes (status.install). */
  installId: string;
  /** Shared record of accounts Anchore says do not exist (log once, metric). */
  missingAccounts?: MissingAccounts;
}

interface Group {
  key: string;
  account: string;
  /** The namespace of the first pod seen running it (whose routing chose the account, without spec.account). */
  namespace: string;
  image: ResolvedImage;
  workloads: Map<string, ObjectRef | undefined>;
  workloadRefs: Map<string, WorkloadRef>;
}

type Compiled = CompiledBinding;

const MAX_WORKLOADS_PER_RESULT = 10;
/** More workloads than this newly failing in one evaluation: also one aggregate Event on the binding. */
const AGGREGATE_EVENTS_ABOVE = 10;
/** How often a binding stalled on PolicyNotFound reads the account's policies again (one list call). */
const POLICY_NOT_FOUND_RECHECK_MS = 15_000;

/** Thrown by policy resolution: carries the condition reason and whether retrying later may help. */
class BindingProblem extends Error {
  readonly reason: string;
  readonly kind: 'stalled' | 'retrying';
  readonly retryMs: number;
  constructor(kind: 'stalled' | 'retrying', reason: string, message: string, retryMs = 0) {
    super(message);
    this.kind = kind;
    this.reason = reason;
    this.retryMs = retryMs;
  }
}

/**
 * Reconciles AnchorePolicyBindings and ClusterAnchorePolicyBindings, level-based: from the caches, the binding's
 * selected workloads → their images → registered and analysed (pending analysis is waiting, not failure) → evaluated
 * (shared, cached evaluations) → kstatus status written only when it changed, and Events on verdict changes.
 */
export class BindingController {
  readonly queue: WorkQueue<string>;
  readonly #o: BindingControllerOptions;
  readonly #log: Logger;
  /** imageKey → bindings covering it (to re-evaluate when its analysis finishes). */
  readonly #byImage = new Map<string, Set<string>>();
  readonly #imagesOf = new Map<string, Set<string>>();
  /** Workloads failing per binding at the last evaluation (to emit a Warning only when one starts failing). */
  readonly #failingWorkloads = new Map<string, Set<string>>();
  /** Active policy per account at the last poll. */
  readonly #activePolicy = new Map<string, string>();
  /** Last successful evaluation time per binding (freshness; status keeps it only when results change). */
  readonly lastEvaluated = new Map<string, number>();
  /** Failing images per workload, per binding, from the last evaluation (complete, unlike the bounded status). */
  readonly failuresByWorkload = new Map<string, Map<string, { workload: WorkloadRef; failed: number }>>();
  /** Bindings whose next evaluation must bypass cached results (reevaluate annotation changed). */
  readonly #forceFresh = new Set<string>();
  /** Cluster bindings another install owns (logged once each). */
  readonly #foreign = new Set<string>();
  /** How long each binding's last reconcile took, for coalescing churn. */
  readonly #reconcileMs = new Map<string, number>();
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(o: BindingControllerOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'binding' });
    this.queue = new WorkQueue<string>({
      name: 'binding',
      concurrency: o.workers,
      handle: (key) => this.reconcile(key),
      backoff: { baseMs: 2000, maxMs: 5 * 60_000, jitter: 0.3 },
      onEvent: o.metrics.queueObserver('binding', this.#log, 'binding reconcile'),
    });
    for (const store of [o.bindings, o.clusterBindings]) {
      store.on({
        add: (b) => this.queue.add(b.key),
        // Our own status writes change resourceVersion but not generation: only a spec change re-evaluates.
        update: (a, b) => {
          if (a.reevaluateToken !== b.reevaluateToken) {
            this.#forceFresh.add(b.key);
            this.queue.add(b.key);
          } else if (a.generation !== b.generation || a.installAnnotation !== b.installAnnotation || a.status.install !== b.status.install) this.queue.add(b.key);
        },
        delete: (b) => {
          this.#foreign.delete(b.key);
          this.#forget(b.key);
        },
      });
    }
    const podChanged = (a: PodInfo | undefined, b: PodInfo | undefined): void => {
      if (a && b && JSON.stringify([a.labels, a.containers, a.owner]) === JSON.stringify([b.labels, b.containers, b.owner])) return;
      this.#namespaceTouched((b ?? a)?.namespace);
    };
    o.stores.pods.on({ add: (p) => podChanged(undefined, p), update: podChanged, delete: (p) => podChanged(p, undefined) });
    o.stores.namespaces.on({
      add: (n) => this.#namespaceTouched(n.name),
      update: (a, b) => {
        if (JSON.stringify(a.labels) !== JSON.stringify(b.labels)) this.#namespaceTouched(b.name);
      },
      delete: (n) => this.#namespaceTouched(n.name),
    });
    const imageChanged = (key: string): void => {
      for (const b of this.#byImage.get(key) ?? []) this.queue.addAfter(b, 100);
    };
    o.images.onAnalysisFinal(imageChanged);
    o.images.onVanished(imageChanged);
  }

  start(): void {
    for (const b of this.#o.bindings.list()) this.queue.add(b.key);
    for (const b of this.#o.clusterBindings.list()) this.queue.add(b.key);
    this.queue.start();
    this.#schedulePoll();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
  }

  /**
   * Whether this install evaluates the binding and writes its status. A namespaced binding outside this operator's
   * namespaces (NAMESPACES_INCLUDE/EXCLUDE, NAMESPACE_LABEL_SELECTOR) belongs to whoever watches that namespace. A
   * cluster binding has one owner: the install its anchore.io/install annotation names, else the one named in its
   * status.install (the first to claim it), else none yet — this install claims it with its first write.
   */
  owns(b: BindingInfo): boolean {
    if (b.namespace !== undefined) return this.#o.scope.includesNamespace(this.#o.stores.namespaces.get(b.namespace));
    const owner = b.installAnnotation ?? b.status.install;
    return owner === undefined || owner === this.#o.installId;
  }

  #get(key: string): BindingInfo | undefined {
    // Binding keys carry their kind ("apb/ns/name", "capb/name"), so the two stores never collide.
    return key.startsWith('capb/') ? this.#o.clusterBindings.get(key) : this.#o.bindings.get(key);
  }

  #namespaceTouched(ns: string | undefined): void {
    if (!ns) return;
    // Coalesce pod churn: a binding is re-selected at most once per 300 ms, and a big one (thousands of images) no more
    // often than ten times its last reconcile took, so bindings never take more than ~10 % of the event loop under
    // churn and image registration stays fast (docs/performance.md).
    for (const b of this.#o.bindings.list()) if (b.namespace === ns) this.queue.addAfter(b.key, this.#coalesceMs(b.key));
    for (const b of this.#o.clusterBindings.list()) this.queue.addAfter(b.key, this.#coalesceMs(b.key));
  }

  #coalesceMs(key: string): number {
    return Math.min(10_000, Math.max(300, 10 * (this.#reconcileMs.get(key) ?? 0)));
  }

  #forget(key: string): void {
    this.#reconcileMs.delete(key);
    this.#setImages(key, new Set());
    this.#o.images.demand(`binding:${key}`, undefined);
    this.#failingWorkloads.delete(key);
    this.lastEvaluated.delete(key);
    this.failuresByWorkload.delete(key);
    this.queue.forget(key);
  }

  #setImages(binding: string, keys: Set<string>): void {
    for (const k of this.#imagesOf.get(binding) ?? []) {
      if (keys.has(k)) continue;
      const s = this.#byImage.get(k);
      s?.delete(binding);
      if (s?.size === 0) this.#byImage.delete(k);
    }
    for (const k of keys) {
      let s = this.#byImage.get(k);
      if (!s) this.#byImage.set(k, (s = new Set()));
      s.add(binding);
    }
    if (keys.size) this.#imagesOf.set(binding, keys);
    else this.#imagesOf.delete(binding);
  }

  /** Compiles a spec; invalid input is a StallError-worthy BindingProblem with a reason an admin can act on. */
  #compile(b: BindingInfo): Compiled {
    const c = compileBinding(b, (ns) => this.#o.stores.namespaces.get(ns)?.labels);
    if (!c.ok) throw new BindingProblem('stalled', c.problem.reason, c.problem.message);
    return c.value;
  }

  async reconcile(key: string): Promise<HandleResult> {
    const started = performance.now();
    try {
      return await this.#reconcile(key);
    } finally {
      if (this.#get(key)) this.#reconcileMs.set(key, performance.now() - started);
    }
  }

  async #reconcile(key: string): Promise<HandleResult> {
    const b = this.#get(key);
    if (!b) {
      this.#forget(key);
      return;
    }
    if (!this.owns(b)) {
      if (b.kind === 'ClusterAnchorePolicyBinding' && !this.#foreign.has(key)) {
        this.#foreign.add(key);
        this.#log.info({ kind: b.kind, name: b.name, owner: b.installAnnotation ?? b.status.install, install: this.#o.installId }, `another install owns this cluster binding; leaving it alone (annotate it ${INSTALL_ANNOTATION}=${this.#o.installId} to hand it over)`);
      }
      this.#forget(key);
      return;
    }
    this.#foreign.delete(key);
    const now = new Date();
    const log = this.#log.child({ kind: b.kind, namespace: b.namespace, name: b.name, reconcileId: nextReconcileId() });
    log.debug({ generation: b.generation }, 'reconciling binding');
    if (b.spec.suspend) {
      const status: BindingStatus = {
        ...b.status,
        observedGeneration: b.generation,
        conditions: mergeConditions(b.status.conditions, conditionsFor({ kind: 'done', reason: REASON.suspended, message: 'Evaluation is suspended (spec.suspend); the results shown are from before.' }), b.generation, now),
      };
      await this.#write(b, status);
      return;
    }
    let compiled: Compiled;
    try {
      compiled = this.#compile(b);
    } catch (err) {
      if (err instanceof BindingProblem) return this.#problem(b, err, now);
      throw err;
    }

    const groups = await this.#select(b, compiled);
    this.#setImages(key, new Set([...groups.values()].map((g) => g.key)));
    // Images evaluated in an account other than the routed one must be registered there too.
    const demand: ImageUse[] = [];
    for (const g of groups.values()) demand.push({ key: g.key, account: g.account, image: g.image, workload: { kind: 'Binding', name: b.name, namespace: b.namespace ?? '' } });
    this.#o.images.demand(`binding:${key}`, demand);

    const accounts = new Set([...groups.values()].map((g) => g.account));
    const policies = new Map<string, PolicyRecord>();
    try {
      // What Anchore already holds must be known before judging: after a restart or failover an image missing from a
      // catalog not loaded yet is not an image waiting for analysis, and saying so would rewrite every binding and
      // re-announce every verdict (one shared list call per account).
      for (const account of accounts) {
        try {
          await this.#o.images.ensureAccount(account);
        } catch (err) {
          throw this.#anchoreProblem(err, account, b.spec.account ? undefined : [...groups.values()].find((g) => g.account === account)?.namespace);
        }
      }
      if (compiled.mode === 'evaluate') {
        for (const account of accounts) policies.set(account, await this.#resolvePolicy(b, account, false, b.spec.account ? undefined : [...groups.values()].find((g) => g.account === account)?.namespace));
      }
    } catch (err) {
      if (err instanceof BindingProblem) return this.#problem(b, err, now);
      throw err;
    }

    const previous = new Map((b.status.results ?? []).map((r) => [`${r.image}@${r.digest ?? ''}`, r]));
    const groupList = [...groups.values()];
    // Kept until an evaluation completes: a forced re-evaluation that meets an unavailable Anchore is retried fresh,
    // never satisfied later from the cached verdict it was meant to replace.
    const fresh = this.#forceFresh.has(key);
    const maxAgeMs = fresh ? 0 : compiled.intervalMs;
    let unavailable: string | undefined;
    /** Accounts whose policy Anchore answered 404 for during this evaluation (perhaps deleted). */
    const policyGone = new Set<string>();
    const evaluate = async (g: Group): Promise<BindingImageResult> => {
      const base: BindingImageResult = { image: g.image.tag, result: 'pending', workloads: [...g.workloads.keys()].sort().slice(0, MAX_WORKLOADS_PER_RESULT) };
      if (g.image.digest) base.digest = g.image.digest;
      const entry = this.#o.images.catalog(g.key);
      if (entry && !base.digest) base.digest = entry.digest;
      if (!entry && this.#o.images.reRegistering(g.key)) return { ...base, reason: REASON.imageNotInAnchore, message: 'Anchore no longer holds this image; registering it again' };
      if (!entry) return { ...base, reason: REASON.analysisPending, message: 'waiting for the image to be registered with Anchore' };
      if (this.#o.images.reRegistering(g.key) && entry.analysis !== 'analyzed') return { ...base, reason: REASON.imageNotInAnchore, message: `Anchore no longer held this image; registered again, analysis ${entry.analysis}` };
      if (entry.analysis === 'analysis_failed') return { ...base, result: 'error', reason: 'AnalysisFailed', message: 'Anchore failed to analyse this image' };
      if (entry.analysis !== 'analyzed') return { ...base, reason: REASON.analysisPending, message: `analysis ${entry.analysis}` };
      try {
        if (compiled.mode === 'analyze') {
          const summary = await this.#o.cache.vulnerabilities(g.account, entry.digest, maxAgeMs);
          const counts: Record<string, number> = {};
          let total = 0;
          for (const [sev, n] of Object.entries(summary.bySeverity)) {
            if (n > 0) counts[sev] = n;
            total += n;
          }
          return { ...base, result: 'pass', reason: 'Analyzed', findings: total, vulnerabilities: counts };
        }
        const policy = policies.get(g.account) as PolicyRecord;
        const check = await this.#o.cache.check(g.account, policy.policy_id, entry.digest, g.image.tag, maxAgeMs);
        const result: ImageResult = checkVerdict(check, compiled.failOn);
        const out: BindingImageResult = { ...base, result, finalAction: check.final_action, reason: check.final_action_reason || 'policy_evaluation', findings: check.number_of_findings };
        if (check.findings.length) out.topFindings = check.findings.slice(0, 5).map((f) => ({ gate: f.gate, trigger: f.trigger, action: f.action, message: f.message.slice(0, 512) }));
        return out;
      } catch (err) {
        if (err instanceof AnchoreError && err.kind === 'unavailable') {
          unavailable = err.message;
          // Old results stay visible while Anchore is away.
          return previous.get(`${base.image}@${base.digest ?? ''}`) ?? { ...base, message: 'Anchore unavailable; not evaluated yet' };
        }
        if (err instanceof AnchoreError && err.kind === 'not-found') {
          // A 404 names no culprit (the image, its analysis, the policy): the image is read again, the policy list too.
          this.#o.images.recheck(g.key);
          if (compiled.mode === 'evaluate') policyGone.add(g.account);
          return { ...base, reason: REASON.analysisPending, message: 'Anchore has no evaluation for this image; checking that it still holds the image' };
        }
        return { ...base, result: 'error', reason: 'EvaluationError', message: errorMessage(err).slice(0, 512) };
      }
    };
    // In slices, with the event loop free between them: thousands of cached results would otherwise be one long task
    // that holds up everything else (image registration above all).
    const results: BindingImageResult[] = [];
    for (let i = 0; i < groupList.length; i += SLICE) {
      if (i > 0) await yieldToLoop();
      results.push(...(await Promise.all(groupList.slice(i, i + SLICE).map(evaluate))));
    }

    if (policyGone.size) {
      try {
        for (const account of policyGone) await this.#resolvePolicy(b, account, true);
      } catch (err) {
        if (err instanceof BindingProblem) return this.#problem(b, err, now);
        throw err;
      }
    }

    const workloads = new Set<string>();
    for (const g of groups.values()) for (const w of g.workloads.keys()) workloads.add(w);
    const summary = summarize(results, workloads.size);
    const bounded = boundResults(results);
    const policy = [...policies.values()][0];
    const s = summary;
    const counts = `${s.images} image(s) in ${s.workloads} workload(s): ${s.passed} passed, ${s.failed} failed, ${s.warned} warned, ${s.pending} pending, ${s.errors} errors`;
    let outcome: Parameters<typeof conditionsFor>[0];
    let requeueMs = compiled.intervalMs;
    if (unavailable) {
      outcome = { kind: 'retrying', reason: REASON.anchoreUnavailable, message: `Anchore is unavailable; showing the last known results. ${unavailable}` };
      requeueMs = 10_000;
    } else if (s.pending > 0) {
      const gone = results.filter((r) => r.reason === REASON.imageNotInAnchore).length;
      outcome = gone
        ? { kind: 'progressing', reason: REASON.imageNotInAnchore, message: `Anchore no longer holds ${gone} image(s); registering them again. ${counts}` }
        : { kind: 'progressing', reason: REASON.analysisPending, message: `Waiting for Anchore to analyse ${s.pending} image(s). ${counts}` };
      requeueMs = 15_000;
    } else {
      const reason = s.images === 0 ? REASON.noImages : compiled.mode === 'analyze' ? REASON.analyzed : REASON.evaluated;
      outcome = {
        kind: 'done',
        reason,
        message: s.images === 0 ? 'No running image matches this binding.' : counts,
        ...(compiled.mode === 'evaluate'
          ? {
              compliant:
                s.images === 0
                  ? { ok: undefined, reason: REASON.noImages, message: 'This binding selects no running image (check its selectors and images filter): nothing passes or fails' }
                  : s.failed > 0
                  ? { ok: false, reason: REASON.policyFailed, message: `${s.failed} image(s) fail policy ${policy?.name ?? ''}`.trim() }
                  : s.errors > 0
                    ? { ok: false, reason: REASON.evaluationErrors, message: `${s.errors} image(s) could not be evaluated` }
                    : { ok: true, reason: REASON.policyPassed, message: `All ${s.images} image(s) pass` },
            }
          : {}),
      };
    }
    const status: BindingStatus = {
      observedGeneration: b.generation,
      conditions: mergeConditions(b.status.conditions, conditionsFor(outcome), b.generation, now),
      summary,
      lastEvaluationTime: formatTimestamp(now),
      results: bounded.results,
    };
    if (bounded.truncated) status.truncated = true;
    if (policy) status.policy = { id: policy.policy_id, name: policy.name, active: !b.spec.policyId };
    if (accounts.size === 1) status.account = [...accounts][0] as string;
    else if (b.spec.account) status.account = b.spec.account;
    const written = await this.#write(b, status);
    log.debug({ ...summary, written, requeueMs }, 'binding evaluated');
    if (!unavailable) this.#forceFresh.delete(key);
    if (!unavailable && s.pending === 0) this.lastEvaluated.set(key, now.getTime());
    const failures = new Map<string, { workload: WorkloadRef; failed: number }>();
    results.forEach((r, i) => {
      if (r.result !== 'fail') return;
      for (const [wk, w] of groupList[i]?.workloadRefs ?? []) {
        const f = failures.get(wk) ?? { workload: w, failed: 0 };
        f.failed++;
        failures.set(wk, f);
      }
    });
    this.failuresByWorkload.set(key, failures);
    this.#emitEvents(b, status, groupList, results);
    return { requeueAfterMs: requeueMs };
  }

  async #select(b: BindingInfo, c: Compiled): Promise<Map<string, Group>> {
    const { stores, scope } = this.#o;
    const groups = new Map<string, Group>();
    let n = 0;
    for (const pod of [...stores.pods.list()]) {
      if (++n % SLICE === 0) await yieldToLoop();
      if (b.namespace !== undefined && pod.namespace !== b.namespace) continue;
      const ns = stores.namespaces.get(pod.namespace);
      if (!scope.includesNamespace(ns) || !c.selects(pod)) continue;
      const account = b.spec.account ?? scope.accountFor(ns, pod.namespace);
      const workload = resolveWorkload(pod, stores);
      const wk = workloadKey(workload);
      for (const container of pod.containers) {
        const r = scope.resolveRunning(container);
        if (r.kind !== 'image' || !c.covers(r.image)) continue;
        const key = imageKey(account, r.image);
        // One group per tag of a digest: Anchore maps policies per tag, so each running tag is checked.
        const gk = r.image.digest ? `${key}\u0000${r.image.tag}` : key;
        let g = groups.get(gk);
        if (!g) groups.set(gk, (g = { key, account, namespace: pod.namespace, image: r.image, workloads: new Map(), workloadRefs: new Map() }));
        if (!g.workloads.has(wk)) {
          g.workloads.set(wk, workloadObjectRef(workload));
          g.workloadRefs.set(wk, workload);
        }
      }
    }
    return groups;
  }

  /**
   * The policy the binding evaluates against in an account. Read fresh (not from the 60 s cache) when forced, when
   * a check just answered 404, and while the binding is stalled on PolicyNotFound: a deleted policy is reported at
   * once and a restored one picked up within POLICY_NOT_FOUND_RECHECK_MS.
   */
  async #resolvePolicy(b: BindingInfo, account: string, fresh = false, routedFrom?: string): Promise<PolicyRecord> {
    let list: PolicyRecord[];
    const ready = b.status.conditions?.find((c) => c.type === CONDITION.ready);
    const stalled = ready?.reason === REASON.policyNotFound && b.status.observedGeneration === b.generation;
    // Stalled bindings share a list up to 5 s old: fifty of them re-checking cost one call, not fifty.
    const maxAgeMs = fresh || this.#forceFresh.has(b.key) ? 0 : stalled ? 5_000 : 60_000;
    try {
      list = await this.#o.cache.policies(account, maxAgeMs);
    } catch (err) {
      throw this.#anchoreProblem(err, account, routedFrom);
    }
    if (b.spec.policyId) {
      const p = list.find((x) => x.policy_id === b.spec.policyId);
      if (!p) throw new BindingProblem('stalled', REASON.policyNotFound, `Anchore account "${account}" has no policy with id "${b.spec.policyId}"; rechecked every ${POLICY_NOT_FOUND_RECHECK_MS / 1000} s`, POLICY_NOT_FOUND_RECHECK_MS);
      return p;
    }
    const active = list.find((x) => x.active);
    if (!active) throw new BindingProblem('stalled', REASON.policyNotFound, `Anchore account "${account}" has no active policy; set spec.policyId or activate one (rechecked every ${POLICY_NOT_FOUND_RECHECK_MS / 1000} s)`, POLICY_NOT_FOUND_RECHECK_MS);
    this.#activePolicy.set(account, active.policy_id);
    return active;
  }

  /** `routedFrom`: a namespace whose routing chose the account (no spec.account), named in the message. */
  #anchoreProblem(err: unknown, account: string, routedFrom?: string): BindingProblem {
    if (err instanceof AnchoreError) {
      if (err.kind === 'unavailable') return new BindingProblem('retrying', REASON.anchoreUnavailable, `Anchore is unavailable: ${err.message}`, 10_000);
      if (err.kind === 'account-not-found' || err.kind === 'not-found') {
        if (err.kind === 'account-not-found') this.#o.missingAccounts?.missing(account, err.message);
        const why = routedFrom === undefined ? '' : this.#routeText(routedFrom);
        if (why) this.#warnNamespace(routedFrom as string, account, why);
        return new BindingProblem('stalled', REASON.accountNotFound, `Anchore account "${account}" does not exist${why ? ` (${why})` : ''}: ${err.message}; rechecked every ${MISSING_ACCOUNT_RECHECK_MS / 60_000} min and at once when the namespace's labels change`, MISSING_ACCOUNT_RECHECK_MS);
      }
      if (err.kind === 'auth') {
        return new BindingProblem('stalled', REASON.authFailed, `Anchore refused the operator for account "${account}": ${err.message}`, 5 * 60_000);
      }
    }
    return new BindingProblem('retrying', REASON.anchoreUnavailable, errorMessage(err), 10_000);
  }

  #routeText(namespace: string): string {
    const r = this.#o.scope.accountRoute(this.#o.stores.namespaces.get(namespace), namespace);
    if (r.via === 'label') return `namespace ${namespace} names it in its label ${r.label}`;
    if (r.via === 'route') return `ACCOUNT_ROUTES sends namespace ${namespace} there`;
    return '';
  }

  /** A namespace whose own label names a missing account hears it too (a mistyped label is fixed there). */
  #warnNamespace(namespace: string, account: string, why: string): void {
    const ns = this.#o.stores.namespaces.get(namespace);
    if (!ns || !why.includes('label')) return;
    this.#o.events.event({ apiVersion: 'v1', kind: 'Namespace', name: namespace, ...(ns.uid ? { uid: ns.uid } : {}) }, 'Warning', 'AnchoreAccountNotFound', 'Route', `Anchore account "${account}" does not exist (${why}): its images are not evaluated, and its inventory goes to the default account until it exists or the label is fixed`);
  }

  async #problem(b: BindingInfo, p: BindingProblem, now: Date): Promise<HandleResult> {
    const status: BindingStatus = {
      ...b.status,
      observedGeneration: b.generation,
      conditions: mergeConditions(b.status.conditions, conditionsFor({ kind: p.kind, reason: p.reason, message: p.message }), b.generation, now),
    };
    await this.#write(b, status);
    const was = b.status.conditions?.find((c) => c.type === 'Ready');
    if (was?.reason !== p.reason) {
      this.#o.events.event(bindingRef(b), 'Warning', p.reason, 'Evaluate', p.message);
      this.#log.warn({ kind: b.kind, namespace: b.namespace, name: b.name, reason: p.reason, stalled: p.kind === 'stalled' }, `binding cannot be evaluated: ${p.message}`);
    }
    if (p.kind === 'retrying') throw new WaitError(p.reason, p.message, p.retryMs);
    // Stalled: nothing to do until the spec changes — except things Anchore-side (a policy created, an account
    // added, credentials fixed), which a slow re-check picks up.
    if (p.retryMs > 0) throw new WaitError(p.reason, p.message, p.retryMs);
    throw new StallError(p.reason, p.message);
  }

  /** Writes status when it changed; true when it wrote. A cluster binding's status names its owner (this install). */
  async #write(b: BindingInfo, status: BindingStatus): Promise<boolean> {
    const claim = b.kind === 'ClusterAnchorePolicyBinding' && b.status.install !== this.#o.installId;
    if (b.kind === 'ClusterAnchorePolicyBinding') status.install = this.#o.installId;
    if (sameStatus(b.status, status)) return false;
    try {
      // Claiming: only if nobody wrote since we read it (two installs claiming at once: one wins, the other yields).
      await this.#o.writer.patchStatus(b, status, claim ? { ifResourceVersion: b.resourceVersion } : {});
      this.#o.metrics.reconcileTotal.inc({ controller: 'binding-status', result: 'written' });
      return true;
    } catch (err) {
      const code = (err as { status?: number }).status;
      if (code === 404) return false; // deleted meanwhile
      if (code === 409 && claim) throw new WaitError('ClaimConflict', `cluster binding ${b.name} changed while this install claimed it; reading it again`, 500);
      throw err;
    }
  }

  #emitEvents(b: BindingInfo, status: BindingStatus, groupList: readonly Group[], results: readonly BindingImageResult[]): void {
    const before = b.status.conditions?.find((c) => c.type === 'Compliant');
    const after = status.conditions?.find((c) => c.type === 'Compliant');
    const binding = bindingRef(b);
    if (after && (before?.status !== after.status || before?.reason !== after.reason)) {
      this.#o.events.event(binding, after.status === 'True' ? 'Normal' : 'Warning', after.reason, 'Evaluate', after.message);
    }
    // Every failing workload, from the complete groups (the status keeps only a bounded list per image).
    const byWorkload = new Map<string, { ref: ObjectRef | undefined; images: string[] }>();
    results.forEach((r, i) => {
      if (r.result !== 'fail') return;
      for (const [wk, ref] of groupList[i]?.workloads ?? []) {
        const f = byWorkload.get(wk);
        if (f) f.images.push(r.image);
        else byWorkload.set(wk, { ref, images: [r.image] });
      }
    });
    // After a restart the complete set is not known: the status names some, and the recorder knows which Events
    // already stand (it read them on start), so none is announced again.
    const prev = this.#failingWorkloads.get(b.key) ?? previouslyFailing(b.status);
    const policy = status.policy?.name ?? '';
    const from = `binding ${b.namespace ? `${b.namespace}/` : ''}${b.name}`;
    const newly: string[] = [];
    for (const [wk, f] of byWorkload) {
      if (prev.has(wk) || !f.ref) continue;
      newly.push(wk);
      // Sorted: the same failure reads the same after a restart (so a standing Event is recognised).
      f.images.sort();
      // Paced and coalesced by the recorder, never dropped for being many (src/kube/writer.ts).
      this.#o.events.event(f.ref, 'Warning', 'AnchorePolicyFailed', 'Evaluate', `${f.images.length} image(s) fail Anchore policy ${policy} (${from}): ${f.images.slice(0, 3).join(', ')}${f.images.length > 3 ? ', …' : ''}`, binding);
    }
    if (newly.length > AGGREGATE_EVENTS_ABOVE) {
      // Many at once: one Event on the binding says how many, and which first.
      newly.sort();
      this.#o.events.event(binding, 'Warning', 'WorkloadsFailingPolicy', 'Evaluate', `${newly.length} workload(s) newly fail Anchore policy ${policy}, each told by an AnchorePolicyFailed Event: ${newly.slice(0, 5).join(', ')}, …`);
    }
    this.#failingWorkloads.set(b.key, new Set(byWorkload.keys()));
  }

  /** Housekeeping loop: polls active policies (when enabled) and prunes evaluations nothing can still use. */
  #schedulePoll(): void {
    if (this.#stopped) return;
    this.#pollTimer = setTimeout(() => void this.#poll().finally(() => this.#schedulePoll()), this.#o.policyPollMs > 0 ? this.#o.policyPollMs : 60_000);
    this.#pollTimer.unref();
  }

  async #poll(): Promise<void> {
    let maxInterval = DEFAULT_REEVALUATE_MS;
    for (const b of [...this.#o.bindings.list(), ...this.#o.clusterBindings.list()]) {
      const ms = b.spec.reevaluateInterval ? parseDuration(b.spec.reevaluateInterval) : undefined;
      if (ms && ms > maxInterval) maxInterval = ms;
    }
    this.#o.cache.prune(2 * maxInterval);
    if (this.#o.policyPollMs <= 0) return;
    for (const [account, was] of [...this.#activePolicy]) {
      try {
        const list = await this.#o.cache.policies(account, 0);
        const now = list.find((p) => p.active)?.policy_id;
        if (now === was) continue;
        this.#log.info({ account, from: was, to: now }, 'active policy changed; re-evaluating bindings that follow it');
        if (now) this.#activePolicy.set(account, now);
        else this.#activePolicy.delete(account);
        this.#o.cache.invalidateAccount(account);
        for (const b of [...this.#o.bindings.list(), ...this.#o.clusterBindings.list()]) {
          if (!b.spec.policyId) this.queue.add(b.key);
        }
      } catch (err) {
        this.#log.debug({ account, err: errorMessage(err) }, 'active policy poll failed');
      }
    }
  }
}

function previouslyFailing(status: BindingStatus): Set<string> {
  const s = new Set<string>();
  for (const r of status.results ?? []) if (r.result === 'fail') for (const w of r.workloads ?? []) s.add(w);
  return s;
}
