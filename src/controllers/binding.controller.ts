import type { BindingImageResult, BindingInfo, BindingStatus } from '../crds/types.ts';
import { CONDITION, EVENT_REASON, INSTALL_ANNOTATION, REASON, bindingKindOf } from '../crds/types.ts';
import { type BindingStatusWriter, type ClusterStores, type EventRecorder, isKubeError, type KubeError, type Store, type WorkloadRef, workloadObjectRef } from '../kube/cluster.port.ts';
import { type CompiledBinding, DEFAULT_REEVALUATE_MS, bindingRef, compileBinding } from '../model/binding-spec.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import type { MissingAccounts } from '../model/missing-accounts.ts';
import type { ImageUse } from '../model/running-images.ts';
import type { Scope } from '../model/scope.ts';
import { StallError, WaitError, errorMessage } from '../runtime/errors.ts';
import type { Clock } from '../runtime/clock.ts';
import { type Periodic, every } from '../runtime/periodic.ts';
import { parseDuration } from '../runtime/time.ts';
import { type HandleResult, WorkQueue } from '../runtime/workqueue.ts';
import { type Logger, nextReconcileId } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { evaluateImages } from './binding-evaluate.ts';
import { type PolicyDeps, resolvePolicies, resolvePolicy } from './binding-policy.ts';
import { type ImageGroup, type Selection, selectImages } from './binding-select.ts';
import { type BindingOutcome, boundStatus, sameStatus, summarizeBinding } from './binding-status.ts';

interface BindingControllerOptions {
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'replicaSets' | 'jobs'>;
  bindings: Store<BindingInfo>;
  clusterBindings: Store<BindingInfo>;
  scope: Scope;
  images: ImageRegistry;
  cache: EvaluationCache;
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
  clock?: Clock;
}

/** More workloads than this newly failing in one evaluation: also one aggregate Event on the binding. */
const AGGREGATE_EVENTS_ABOVE = 10;

/** The name under which a binding declares the images it needs to the image registry. */
const demandSource = (bindingKey: string): string => `binding:${bindingKey}`;

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
  /** Active policy per account at the last poll. */
  readonly #activePolicy = new Map<string, string>();
  /** Last successful evaluation time per binding (freshness; status keeps it only when results change). */
  readonly lastEvaluated = new Map<string, number>();
  /** Failing images per workload, per binding, from the last evaluation (complete, unlike the bounded status). */
  readonly failuresByWorkload = new Map<string, Map<string, { workload: WorkloadRef; images: string[] }>>();
  /** Bindings whose next evaluation must bypass cached results (reevaluate annotation changed). */
  readonly #forceFresh = new Set<string>();
  /** Cluster bindings another install owns (logged once each). */
  readonly #foreign = new Set<string>();
  /** Bindings whose last status write the apiserver refused as invalid (422), with its cause: told once per cause. */
  readonly #rejected = new Map<string, string>();
  /** How long each binding's last reconcile took, for coalescing churn. */
  readonly #reconcileMs = new Map<string, number>();
  readonly #policyDeps: PolicyDeps;
  #pollLoop: Periodic | undefined;

  constructor(o: BindingControllerOptions) {
    this.#o = o;
    this.#log = o.log.child({ controller: 'binding' });
    this.#policyDeps = { ...o, onActivePolicy: (account, id) => this.#activePolicy.set(account, id) };
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
    // Stores deliver an update only when the projection changed (changed() in kube/cluster.port.ts).
    o.stores.pods.on({ add: (p) => this.#namespaceTouched(p.namespace), update: (_a, p) => this.#namespaceTouched(p.namespace), delete: (p) => this.#namespaceTouched(p.namespace) });
    o.stores.namespaces.on({ add: (n) => this.#namespaceTouched(n.name), update: (_a, n) => this.#namespaceTouched(n.name), delete: (n) => this.#namespaceTouched(n.name) });
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
    // Housekeeping: polls active policies (when enabled) and prunes evaluations nothing can still use.
    this.#pollLoop = every(this.#o.policyPollMs > 0 ? this.#o.policyPollMs : 60_000, () => this.#poll(), { immediate: false, ...(this.#o.clock ? { clock: this.#o.clock } : {}) });
  }

  stop(): void {
    this.#pollLoop?.stop();
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
    // Binding keys carry their kind (bindingKey), so the two stores never collide.
    return bindingKindOf(key) === 'ClusterAnchorePolicyBinding' ? this.#o.clusterBindings.get(key) : this.#o.bindings.get(key);
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
    this.#rejected.delete(key);
    this.#setImages(key, new Set());
    this.#o.images.demand(demandSource(key), undefined);
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

  async reconcile(key: string): Promise<HandleResult> {
    const started = performance.now();
    try {
      return await this.#reconcile(key);
    } finally {
      if (this.#get(key)) this.#reconcileMs.set(key, performance.now() - started);
    }
  }

  /**
   * One reconcile, in a fixed shape (as Flux's reconcilers): ownership, then the steps select → policy → evaluate,
   * each of which may end it with a WaitError or StallError; then one summarize-and-patch of status, whatever the
   * outcome; then Events, metrics state and the requeue.
   */
  async #reconcile(key: string): Promise<HandleResult> {
    const b = this.#get(key);
    if (!b) {
      this.#forget(key);
      return;
    }
    if (!this.owns(b)) {
      if (b.kind === 'ClusterAnchorePolicyBinding' && !this.#foreign.has(key)) {
        this.#foreign.add(key);
        this.#log.info(
          { kind: b.kind, name: b.name, owner: b.installAnnotation ?? b.status.install, install: this.#o.installId },
          `another install owns this cluster binding; leaving it alone (annotate it ${INSTALL_ANNOTATION}=${this.#o.installId} to hand it over)`,
        );
      }
      this.#forget(key);
      return;
    }
    this.#foreign.delete(key);
    const now = new Date();
    const log = this.#log.child({ kind: b.kind, namespace: b.namespace, name: b.name, reconcileId: nextReconcileId() });
    log.debug({ generation: b.generation }, 'reconciling binding');

    let outcome: BindingOutcome;
    let selection: Selection | undefined;
    try {
      ({ outcome, selection } = await this.#steps(b));
    } catch (err) {
      if (!(err instanceof WaitError || err instanceof StallError)) throw err;
      outcome = { kind: 'problem', error: err };
    }

    const lastSuccess = this.lastEvaluated.get(key);
    const { status, requeueMs } = summarizeBinding(b, outcome, now, lastSuccess === undefined ? undefined : new Date(lastSuccess));
    const written = await this.#write(b, status, log);

    if (outcome.kind === 'problem') {
      // The verdicts of a policy Anchore no longer has are gone from status: so are their workload failures.
      if (outcome.error.reason === REASON.policyNotFound || outcome.error.reason === REASON.accountNotFound) this.failuresByWorkload.delete(key);
      return this.#problem(b, outcome.error);
    }
    if (outcome.kind === 'suspended' || !selection) return;
    // Anchore went away during evaluation: told once, when the binding turns AnchoreUnavailable (not on each retry).
    if (outcome.unavailable) this.#announce(b, REASON.anchoreUnavailable, status.conditions?.find((c) => c.type === CONDITION.ready)?.message ?? outcome.unavailable, false);
    log.debug({ ...status.summary, written, requeueMs }, 'binding evaluated');
    if (!outcome.unavailable) this.#forceFresh.delete(key);
    if (!outcome.unavailable && status.summary?.pending === 0) this.lastEvaluated.set(key, now.getTime());
    const failing = failingWorkloads(selection.groups, outcome.results);
    // After a restart the complete set is not known: the status names some, and the recorder knows which Events
    // already stand (it read them on start), so none is announced again.
    const failingBefore = this.failuresByWorkload.get(key) ?? previouslyFailing(b.status);
    this.failuresByWorkload.set(key, failing);
    this.#emitEvents(b, status, failing, failingBefore);
    return { requeueAfterMs: requeueMs };
  }

  /** The ordered steps. Each throws WaitError/StallError when the binding cannot be evaluated now. */
  async #steps(b: BindingInfo): Promise<{ outcome: BindingOutcome; selection?: Selection }> {
    if (b.spec.suspend) return { outcome: { kind: 'suspended' } };
    const compiled = this.#compile(b);
    const selection = await selectImages(this.#o, b, compiled);
    this.#follow(b, selection);
    const fresh = this.#forceFresh.has(b.key);
    const policies = await resolvePolicies(this.#policyDeps, b, compiled, selection, fresh);
    // Kept until an evaluation completes: a forced re-evaluation that meets an unavailable Anchore is retried fresh,
    // never satisfied later from the cached verdict it was meant to replace.
    const evaluation = await evaluateImages(this.#o, b, compiled, selection.groups, policies, fresh ? 0 : compiled.intervalMs);
    // A 404 during evaluation may mean the policy was deleted: read the list again, fresh (may stall the binding).
    for (const account of evaluation.policyGone) await resolvePolicy(this.#policyDeps, b, account, true);
    return {
      selection,
      outcome: {
        kind: 'evaluated',
        compiled,
        results: evaluation.results,
        workloads: selection.workloads,
        accounts: selection.accounts,
        policies,
        ...(evaluation.unavailable ? { unavailable: evaluation.unavailable } : {}),
      },
    };
  }

  /** Compiles a spec; invalid input stalls the binding with a reason an admin can act on. */
  #compile(b: BindingInfo): CompiledBinding {
    const c = compileBinding(b, (ns) => this.#o.stores.namespaces.get(ns)?.labels);
    if (!c.ok) throw new StallError(c.problem.reason, c.problem.message);
    return c.value;
  }

  /**
   * Follows the selected images: re-evaluates when their analysis finishes, and declares them to the image loop
   * (images evaluated in an account other than the routed one must be registered there too).
   */
  #follow(b: BindingInfo, sel: Selection): void {
    this.#setImages(b.key, new Set(sel.groups.map((g) => g.key)));
    const demand: ImageUse[] = sel.groups.map((g) => ({ key: g.key, account: g.account, image: g.image, workload: { kind: 'Binding', name: b.name, namespace: b.namespace ?? '' } }));
    this.#o.images.demand(demandSource(b.key), demand);
  }

  /** After the status says why: an Event and a log line when the reason is new, and the error for the work queue. */
  #problem(b: BindingInfo, err: WaitError | StallError): never {
    this.#announce(b, err.reason, err.message, err instanceof StallError);
    // Stalled: nothing to do until the spec changes — except things Anchore-side (a policy created, an account
    // added, credentials fixed), which the error's slow recheck picks up.
    throw err;
  }

  /**
   * A Warning Event and a log line when the binding's Ready reason becomes `reason` (read from the status it had
   * before this reconcile): once per transition, never on each retry.
   */
  #announce(b: BindingInfo, reason: string, message: string, stalled: boolean): void {
    const was = b.status.conditions?.find((c) => c.type === CONDITION.ready);
    if (was?.reason === reason) return;
    this.#o.events.event(bindingRef(b), 'Warning', reason, 'Evaluate', message);
    this.#log.warn({ kind: b.kind, namespace: b.namespace, name: b.name, reason, stalled }, `binding cannot be evaluated: ${message}`);
  }

  /**
   * Writes status when it changed; true when it wrote. Every write is bounded to the CRD's status schema first
   * (boundStatus), so the apiserver can always take it. A cluster binding's status names its owner (this install).
   */
  async #write(b: BindingInfo, desired: BindingStatus, log: Logger): Promise<boolean> {
    const claim = b.kind === 'ClusterAnchorePolicyBinding' && b.status.install !== this.#o.installId;
    if (b.kind === 'ClusterAnchorePolicyBinding') desired.install = this.#o.installId;
    const { status, cuts } = boundStatus(desired);
    if (sameStatus(b.status, status)) return false;
    if (cuts.length) log.debug({ cuts: cuts.slice(0, 10), count: cuts.length }, 'status bounded to the CRD schema');
    try {
      // Claiming: only if nobody wrote since we read it (two installs claiming at once: one wins, the other yields).
      await this.#o.writer.patchStatus(b, status, claim ? { ifResourceVersion: b.resourceVersion } : {});
      this.#o.metrics.reconcileTotal.inc({ controller: 'binding-status', result: 'written' });
      this.#rejected.delete(b.key);
      return true;
    } catch (err) {
      if (isKubeError(err, 'not-found')) return false; // deleted meanwhile
      if (isKubeError(err, 'conflict') && claim) throw new WaitError(REASON.claimConflict, `cluster binding ${b.name} changed while this install claimed it; reading it again`, 500);
      if (isKubeError(err, 'invalid')) this.#statusRejected(b, err);
      // The work queue's backoff (2 s doubling to 5 min) paces the retries.
      throw err;
    }
  }

  /**
   * The apiserver refused a status as invalid (422) although it was bounded to the schema (a CRD changed by hand,
   * say): the binding keeps showing its old status, or none, so say it — one Warning Event on the binding and one log
   * line with the apiserver's cause, again only when the cause changes — and let the work queue back off.
   */
  #statusRejected(b: BindingInfo, err: KubeError): void {
    // The apiserver's own words, without the request line the client puts before them.
    const cause = errorMessage(err).replace(/^[A-Z]+ \S+: 422 \w+: /, '');
    if (this.#rejected.get(b.key) === cause) return;
    this.#rejected.set(b.key, cause);
    this.#o.events.event(bindingRef(b), 'Warning', EVENT_REASON.statusRejected, 'WriteStatus', `The apiserver refused this binding's status (422); retrying with backoff: ${cause}`);
    this.#log.warn({ kind: b.kind, namespace: b.namespace, name: b.name, reason: err.reason, cause }, 'the apiserver refused the binding status as invalid; retrying with backoff');
  }

  /** Events for a changed Compliant condition, and for each workload failing now that was not (`failingBefore`). */
  #emitEvents(b: BindingInfo, status: BindingStatus, failing: ReadonlyMap<string, { workload: WorkloadRef; images: string[] }>, failingBefore: { has(workload: string): boolean }): void {
    const before = b.status.conditions?.find((c) => c.type === CONDITION.compliant);
    const after = status.conditions?.find((c) => c.type === CONDITION.compliant);
    const binding = bindingRef(b);
    if (after && (before?.status !== after.status || before?.reason !== after.reason)) {
      this.#o.events.event(binding, after.status === 'True' ? 'Normal' : 'Warning', after.reason, 'Evaluate', after.message);
    }
    const policy = status.policy?.name ?? '';
    const from = `binding ${b.namespace ? `${b.namespace}/` : ''}${b.name}`;
    const newly: string[] = [];
    for (const [wk, f] of failing) {
      const ref = failingBefore.has(wk) ? undefined : workloadObjectRef(f.workload);
      if (!ref) continue;
      newly.push(wk);
      // Sorted: the same failure reads the same after a restart (so a standing Event is recognised).
      f.images.sort();
      // Paced and coalesced by the recorder, never dropped for being many (src/kube/writer.ts).
      this.#o.events.event(
        ref,
        'Warning',
        EVENT_REASON.policyFailed,
        'Evaluate',
        `${f.images.length} image(s) fail Anchore policy ${policy} (${from}): ${f.images.slice(0, 3).join(', ')}${f.images.length > 3 ? ', …' : ''}`,
        binding,
      );
    }
    if (newly.length > AGGREGATE_EVENTS_ABOVE) {
      // Many at once: one Event on the binding says how many, and which first.
      newly.sort();
      this.#o.events.event(
        binding,
        'Warning',
        EVENT_REASON.workloadsFailing,
        'Evaluate',
        `${newly.length} workload(s) newly fail Anchore policy ${policy}, each told by an AnchorePolicyFailed Event: ${newly.slice(0, 5).join(', ')}, …`,
      );
    }
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

/**
 * Every failing workload with its failing images, from the complete groups (the status keeps only a bounded list per
 * image): the Events and the findings metrics both read it.
 */
function failingWorkloads(groups: readonly ImageGroup[], results: readonly BindingImageResult[]): Map<string, { workload: WorkloadRef; images: string[] }> {
  const failing = new Map<string, { workload: WorkloadRef; images: string[] }>();
  results.forEach((r, i) => {
    if (r.result !== 'fail') return;
    for (const [wk, workload] of groups[i]?.workloads ?? []) {
      const f = failing.get(wk);
      if (f) f.images.push(r.image);
      else failing.set(wk, { workload, images: [r.image] });
    }
  });
  return failing;
}

function previouslyFailing(status: BindingStatus): Set<string> {
  const s = new Set<string>();
  for (const r of status.results ?? []) if (r.result === 'fail') for (const w of r.workloads ?? []) s.add(w);
  return s;
}
