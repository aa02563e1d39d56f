/**
 * The admission decision: which bindings cover the object under review, the verdict of each image they cover, and
 * what each binding's enforcement makes of it (audit, warn, deny).
 *
 * Verdicts come from what the bindings already know — the shared evaluation cache, else the binding's own status —
 * so a hit costs no Anchore call. A miss costs at most one call per image (concurrent requests for one image share
 * it), raced against a deadline below the webhook timeout. An image that cannot be judged follows the binding's
 * failurePolicy. Dry runs have no side effects: no Events, no registrations.
 */
import type { AnchoreApi, PolicyCheck } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { AdmissionConfig } from '../config.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import { addImageRequest } from '../model/add-image.ts';
import { imageKey } from '../model/image-keys.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import type { Scope } from '../model/scope.ts';
import { type AdmissionFailurePolicy, BREAKGLASS_ANNOTATION, type BindingInfo, EVENT_REASON } from '../crds/types.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { compileGlobs } from '../discovery/glob.ts';
import type { EventRecorder, NamespaceInfo, ObjectRef, Store } from '../kube/cluster.port.ts';
import { type CompiledBinding, bindingRef, checkVerdict, compileBinding } from '../model/binding-spec.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { type AdmissionRequest, type AdmissionResponse, REVIEWED_KINDS, type ReviewedWorkload, newContainers, workloadOf } from './review.ts';

type ImageVerdict = 'pass' | 'warn' | 'fail' | 'unjudged';
type UnjudgedReason = 'not_in_anchore' | 'not_analyzed' | 'anchore_unavailable' | 'deadline';
/** The unjudged reasons the alert rules watch (deploy/monitoring/prometheus-rules.yaml). */
const ALERTED_UNJUDGED: readonly UnjudgedReason[] = ['anchore_unavailable', 'deadline'];
const FAILURE_POLICIES: readonly AdmissionFailurePolicy[] = ['open', 'closed'];

interface Judgement {
  verdict: ImageVerdict;
  /** hit: answered from what the operator holds; miss: Anchore was asked; none: nothing could be asked. */
  lookup: 'hit' | 'miss' | 'none';
  /** For unjudged images. */
  reason?: UnjudgedReason;
  /** What a person reads: final action and the first findings, or why it could not be judged. */
  detail: string;
  policy?: string;
}

interface AdmissionValidatorOptions {
  bindings: Store<BindingInfo>;
  clusterBindings: Store<BindingInfo>;
  namespaces: Store<NamespaceInfo>;
  scope: Scope;
  /** Whether this install owns the binding (the binding controller's rule: namespace scope, cluster-binding owner). */
  owns(b: BindingInfo): boolean;
  images: Pick<ImageRegistry, 'digestForTag' | 'catalog' | 'noteRegistered'>;
  cache: EvaluationCache;
  anchore: Pick<AnchoreApi, 'addImage' | 'getImage'>;
  events: EventRecorder;
  config: Pick<AdmissionConfig, 'deadlineMs' | 'exemptNamespaces' | 'registerUnknown'>;
  /** The operator's own namespace: always exempt (it must be able to restart itself). */
  ownNamespace?: string;
  clusterName: string;
  log: Logger;
  metrics: OperatorMetrics;
  now?: () => number;
}

interface Covered {
  binding: BindingInfo;
  compiled: CompiledBinding;
  account: string;
  image: ResolvedImage;
}

const POLICY_LIST_MAX_AGE_MS = 5 * 60_000;
/** An unknown image is registered at most once per this window per process. */
const REGISTER_AGAIN_MS = 10 * 60_000;
const MAX_MESSAGE = 4000;

export class AdmissionValidator {
  readonly #o: AdmissionValidatorOptions;
  readonly #exempt: (ns: string) => boolean;
  readonly #now: () => number;
  readonly #registered = new Map<string, number>();
  readonly #log: Logger;
  /** Accounts admission judged in: their policy lists are kept fresh, so a miss costs one call, not two. */
  readonly #accounts = new Set<string>();
  /**
   * Each binding's compiled spec, per cached object: the informer replaces the object on every change, so an entry
   * lives exactly as long as the version it was compiled from (no glob or selector compiling per request).
   */
  readonly #compiled = new WeakMap<BindingInfo, ReturnType<typeof compileBinding>>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(o: AdmissionValidatorOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#log = o.log.child({ component: 'admission' });
    const g = compileGlobs(o.config.exemptNamespaces);
    if (!g.ok) throw new Error(`admission exempt namespaces: ${g.reason}`);
    this.#exempt = (ns) => ns === o.ownNamespace || g.value(ns);
  }

  /**
   * Keeps the policy lists of the accounts in use fresh (every minute, one call each): on a replica that is not the
   * leader nothing else reads them, and the active policy decides which evaluation a verdict comes from.
   */
  start(accounts: readonly string[]): void {
    // The counters the alert rules watch exist from the start (at 0), so rate() sees the first error after a restart.
    this.#o.metrics.admissionRequests.inc({ kind: 'other', verdict: 'error' }, 0);
    for (const failure_policy of FAILURE_POLICIES) for (const reason of ALERTED_UNJUDGED) this.#o.metrics.admissionUnjudged.inc({ failure_policy, reason }, 0);
    for (const a of accounts) this.#accounts.add(a);
    const refresh = (): void => {
      for (const a of this.#accounts) this.#o.cache.policies(a, 50_000).catch((err: unknown) => this.#log.debug({ account: a, err: errorMessage(err) }, 'policy list refresh failed'));
    };
    refresh();
    this.#timer = setInterval(refresh, 60_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Answers one admission request. Throws only on a bug; the server then answers 500 (the webhook failurePolicy applies). */
  async review(req: AdmissionRequest): Promise<AdmissionResponse> {
    const started = performance.now();
    const kind = req.kind.kind;
    const done = (verdict: string, lookup: 'hit' | 'miss' | 'none', res: Omit<AdmissionResponse, 'uid'>): AdmissionResponse => {
      this.#o.metrics.admissionRequests.inc({ kind: REVIEWED_KINDS.includes(kind) ? kind : 'other', verdict });
      this.#o.metrics.admissionDuration.observe({ lookup }, (performance.now() - started) / 1000);
      return { uid: req.uid, ...res };
    };
    const allow = (verdict: string): AdmissionResponse => done(verdict, 'none', { allowed: true });
    if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return allow('allowed');
    // Pods change their containers only through the ephemeralcontainers subresource; status and the rest are not ours.
    if (req.subResource && !(kind === 'Pod' && req.subResource === 'ephemeralcontainers')) return allow('allowed');
    const namespace = req.namespace ?? '';
    if (!namespace || this.#exempt(namespace)) return allow('exempt');
    const w = workloadOf(kind, req.object, namespace);
    if (!w) return allow('allowed');
    const containers = req.operation === 'UPDATE' ? newContainers(w, workloadOf(kind, req.oldObject, namespace)) : w.containers;
    if (containers.length === 0) return allow('allowed');
    const ns = this.#o.namespaces.get(namespace);
    if (!this.#o.scope.includesNamespace(ns)) return allow('allowed');

    const bindings = this.#bindingsFor(w);
    if (bindings.length === 0) return allow('allowed');
    const dryRun = req.dryRun === true;

    const breakglass = w.annotations[BREAKGLASS_ANNOTATION];
    if (breakglass !== undefined) {
      this.#o.metrics.admissionBreakglass.inc({ namespace });
      const why = breakglass.trim() || '(no reason given)';
      this.#log.warn({ namespace, kind, name: w.name, user: req.userInfo?.username, reason: why, dryRun }, 'admission breakglass used: images not checked');
      if (!dryRun) {
        this.#o.events.event(
          subjectRef(w),
          'Warning',
          EVENT_REASON.admissionBreakglass,
          'Admit',
          `${kind} ${namespace}/${w.name} admitted without an Anchore policy check by the ${BREAKGLASS_ANNOTATION} annotation (user ${req.userInfo?.username ?? 'unknown'}): ${why}`.slice(0, 1024),
        );
      }
      return done('breakglass', 'none', { allowed: true, warnings: [`anchore-operator: ${BREAKGLASS_ANNOTATION} is set (${why}); images were not checked and this use is audited`] });
    }

    // Every (binding, image) pair the bindings cover.
    const covered: Covered[] = [];
    const images = containers.map((c) => this.#o.scope.resolveImage({ name: c.name, kind: c.kind, image: c.image }));
    for (const { binding, compiled } of bindings) {
      const account = binding.spec.account ?? this.#o.scope.accountFor(ns, namespace);
      if (this.#accounts.size < 1000) this.#accounts.add(account);
      const seen = new Set<string>();
      for (const r of images) {
        if (r.kind !== 'image' || !compiled.covers(r.image)) continue;
        const id = `${r.image.tag}@${r.image.digest ?? ''}`;
        if (seen.has(id)) continue;
        seen.add(id);
        covered.push({ binding, compiled, account, image: r.image });
      }
    }
    if (covered.length === 0) return allow('allowed');

    const deadline = this.#now() + this.#o.config.deadlineMs;
    const judgements = await Promise.all(covered.map((c) => this.#judge(c, deadline)));

    const denials: string[] = [];
    const warnings: string[] = [];
    let anyMiss = false;
    const toRegister = new Map<string, Covered>();
    covered.forEach((c, i) => {
      const j = judgements[i] as Judgement;
      if (j.lookup === 'miss') anyMiss = true;
      if (j.lookup !== 'none') this.#o.metrics.admissionLookups.inc({ result: j.lookup });
      const b = c.binding;
      const from = b.namespace === undefined ? `${b.kind} ${b.name}` : `${b.kind} ${b.namespace}/${b.name}`;
      let failing: string | undefined;
      if (j.verdict === 'fail') {
        failing = `image ${c.image.tag} fails Anchore policy ${j.policy ?? '(active)'} in account ${c.account}: ${j.detail}`;
      } else if (j.verdict === 'unjudged') {
        this.#o.metrics.admissionUnjudged.inc({ failure_policy: c.compiled.failurePolicy, reason: j.reason ?? 'not_in_anchore' });
        if (j.reason === 'not_in_anchore' || j.reason === 'not_analyzed') toRegister.set(imageKey(c.account, c.image) + c.image.tag, c);
        if (c.compiled.failurePolicy === 'closed') failing = `image ${c.image.tag} cannot be judged (${j.detail}) and failurePolicy is closed`;
        else warnings.push(`anchore-operator: image ${c.image.tag} was not checked against Anchore policy (${j.detail}); admitted because ${from} has failurePolicy open`);
      } else if (j.verdict === 'warn' && c.compiled.enforcement !== 'audit') {
        warnings.push(`anchore-operator: image ${c.image.tag} has final action warn under Anchore policy ${j.policy ?? '(active)'} (${from}): ${j.detail}`);
      }
      if (!failing) return;
      this.#o.metrics.admissionViolations.inc({ enforcement: c.compiled.enforcement });
      const line = `${failing} (${from}, enforcement ${c.compiled.enforcement})`;
      if (c.compiled.enforcement === 'deny') denials.push(line);
      else if (c.compiled.enforcement === 'warn') warnings.push(`anchore-operator: ${line}`);
      if (!dryRun) {
        const reason = c.compiled.enforcement === 'deny' ? EVENT_REASON.admissionDenied : c.compiled.enforcement === 'warn' ? EVENT_REASON.admissionWarned : EVENT_REASON.admissionAudit;
        const outcome = c.compiled.enforcement === 'deny' ? 'rejected' : 'admitted';
        this.#o.events.event(bindingRef(b), 'Warning', reason, 'Admit', `${kind} ${namespace}/${w.name} ${outcome}: ${failing}`.slice(0, 1024), subjectRef(w));
      }
    });
    if (!dryRun && this.#o.config.registerUnknown && toRegister.size) {
      // After the answer, off the latency path: the add is what makes the next attempt judgeable.
      setImmediate(() => {
        for (const c of toRegister.values()) void this.#register(c);
      });
    }
    const lookup = anyMiss ? 'miss' : 'hit';
    const uniqueWarnings = [...new Set(warnings)].map((x) => x.slice(0, 512));
    if (denials.length) {
      const message = `anchore-operator denied ${kind} ${namespace}/${w.name}: ${[...new Set(denials)].join('; ')}`;
      return done('denied', lookup, {
        allowed: false,
        status: { code: 403, reason: 'Forbidden', message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message },
        ...(uniqueWarnings.length ? { warnings: uniqueWarnings } : {}),
      });
    }
    return done(uniqueWarnings.length ? 'warned' : 'allowed', lookup, { allowed: true, ...(uniqueWarnings.length ? { warnings: uniqueWarnings } : {}) });
  }

  /** Bindings of this install that select the workload's pods: the namespace's own and the cluster-wide ones. */
  #bindingsFor(w: ReviewedWorkload): Array<{ binding: BindingInfo; compiled: CompiledBinding }> {
    const out: Array<{ binding: BindingInfo; compiled: CompiledBinding }> = [];
    const labels = (ns: string) => this.#o.namespaces.get(ns)?.labels;
    for (const store of [this.#o.bindings, this.#o.clusterBindings]) {
      for (const b of store.list()) {
        if (b.spec.suspend || (b.namespace !== undefined && b.namespace !== w.namespace) || !this.#o.owns(b)) continue;
        // A binding whose spec does not compile is Stalled with its reason; it cannot judge anything.
        let c = this.#compiled.get(b);
        if (!c) this.#compiled.set(b, (c = compileBinding(b, labels)));
        if (!c.ok || !c.value.selects({ namespace: w.namespace, labels: w.podLabels })) continue;
        out.push({ binding: b, compiled: c.value });
      }
    }
    return out;
  }

  async #judge(c: Covered, deadline: number): Promise<Judgement> {
    const { binding: b, compiled, account, image } = c;
    const digest = image.digest ?? this.#o.images.digestForTag(account, image.tag);
    if (!digest) {
      return { verdict: 'unjudged', lookup: 'none', reason: 'not_in_anchore', detail: 'no digest is known for this tag: no pod runs it and Anchore does not list it' };
    }
    if (compiled.mode === 'analyze') return this.#judgeAnalysis(c, digest, deadline);

    // The policy: the binding's, else the account's active one (from a recent list or the binding's own status).
    let policyId = b.spec.policyId;
    let policyName: string | undefined;
    if (!policyId) {
      const list = this.#o.cache.peekPolicies(account, POLICY_LIST_MAX_AGE_MS);
      const active = list?.find((p) => p.active);
      if (active) {
        policyId = active.policy_id;
        policyName = active.name;
      } else if (!list && b.status.policy?.active && b.status.account === account) {
        policyId = b.status.policy.id;
        policyName = b.status.policy.name;
      }
    } else {
      policyName = this.#o.cache.peekPolicies(account, Infinity)?.find((p) => p.policy_id === policyId)?.name ?? (b.status.policy?.id === policyId ? b.status.policy.name : undefined);
    }
    const policy = policyName ?? policyId;
    if (policyId) {
      const hit = this.#o.cache.peekCheck(account, policyId, digest, image.tag, compiled.intervalMs);
      if (hit) return { ...fromCheck(hit, compiled.failOn), lookup: 'hit', ...(policy ? { policy } : {}) };
      const fromStatus = this.#fromStatus(b, compiled, policyId, digest, image.tag);
      if (fromStatus) return { ...fromStatus, lookup: 'hit', ...(policy ? { policy } : {}) };
    }
    // A miss: one Anchore call (shared with any concurrent request for the same image), within the deadline.
    const r = await raceDeadline(
      policyId
        ? this.#o.cache.check(account, policyId, digest, image.tag, compiled.intervalMs)
        : this.#o.cache.policies(account, POLICY_LIST_MAX_AGE_MS).then((list) => {
            const active = list.find((p) => p.active);
            if (!active) throw new AnchoreError('not-found', 'listPolicies', `account ${account} has no active policy`, { status: 404 });
            policyName = active.name;
            return this.#o.cache.check(account, active.policy_id, digest, image.tag, compiled.intervalMs);
          }),
      deadline - this.#now(),
    );
    const named = policyName ?? policyId;
    if (r.ok) return { ...fromCheck(r.value, compiled.failOn), lookup: 'miss', ...(named ? { policy: named } : {}) };
    return { ...unjudged(r), lookup: 'miss', ...(named ? { policy: named } : {}) };
  }

  async #judgeAnalysis(c: Covered, digest: string, deadline: number): Promise<Judgement> {
    const entry = this.#o.images.catalog(imageKey(c.account, { digest, tag: c.image.tag }));
    if (entry?.analysis === 'analyzed') return { verdict: 'pass', lookup: 'hit', detail: 'analysed' };
    const s = c.binding.status.results?.find((x) => x.digest === digest && x.result === 'pass');
    if (s && c.binding.status.observedGeneration === c.binding.generation) return { verdict: 'pass', lookup: 'hit', detail: 'analysed' };
    const r = await raceDeadline(this.#o.anchore.getImage(c.account, digest), deadline - this.#now());
    if (!r.ok) return { ...unjudged(r), lookup: 'miss' };
    if (r.value.analysis_status === 'analyzed') return { verdict: 'pass', lookup: 'miss', detail: 'analysed' };
    if (r.value.analysis_status === 'analysis_failed') return { verdict: 'fail', lookup: 'miss', detail: 'Anchore failed to analyse the image' };
    return { verdict: 'unjudged', lookup: 'miss', reason: 'not_analyzed', detail: `Anchore has not analysed it yet (${r.value.analysis_status})` };
  }

  /** The binding's own last verdict on this image, if it is for this policy and spec, and fresh. */
  #fromStatus(b: BindingInfo, compiled: CompiledBinding, policyId: string, digest: string, tag: string): Omit<Judgement, 'lookup'> | undefined {
    const st = b.status;
    if (st.observedGeneration !== b.generation || st.policy?.id !== policyId || !st.lastEvaluationTime) return undefined;
    if (this.#now() - Date.parse(st.lastEvaluationTime) > compiled.intervalMs) return undefined;
    const r = st.results?.find((x) => x.digest === digest && x.image === tag);
    if (!r || (r.result !== 'pass' && r.result !== 'fail' && r.result !== 'warn')) return undefined;
    return { verdict: r.result, detail: `final action ${r.finalAction ?? r.result}, ${r.findings ?? 0} finding(s)${findingsSuffix(r.topFindings ?? [])}` };
  }

  async #register(c: Covered): Promise<void> {
    const id = imageKey(c.account, c.image);
    const last = this.#registered.get(id);
    if (last !== undefined && this.#now() - last < REGISTER_AGAIN_MS) return;
    if (this.#o.images.catalog(id)) return;
    this.#registered.set(id, this.#now());
    if (this.#registered.size > 10_000) for (const [k, t] of this.#registered) if (this.#now() - t >= REGISTER_AGAIN_MS) this.#registered.delete(k);
    try {
      const res = await this.#o.anchore.addImage(c.account, addImageRequest(c.image, this.#o.clusterName, { requestor: 'admission' }));
      this.#o.images.noteRegistered(c.account, res);
      this.#log.info({ account: c.account, image: c.image.tag, digest: res.image_digest }, 'admission registered an image Anchore did not hold');
    } catch (err) {
      this.#registered.delete(id);
      this.#log.warn({ account: c.account, image: c.image.tag, err: errorMessage(err) }, 'admission could not register an image with Anchore');
    }
  }
}

function fromCheck(c: PolicyCheck, failOn: 'stop' | 'warn'): Omit<Judgement, 'lookup'> {
  const verdict: ImageVerdict = checkVerdict(c, failOn);
  return { verdict, detail: `final action ${c.final_action} (${c.final_action_reason || 'policy_evaluation'}), ${c.number_of_findings} finding(s)${findingsSuffix(c.findings)}` };
}

/** The first three findings, as a person reads them after the verdict ("; gate/trigger: message; …"). */
function findingsSuffix(findings: ReadonlyArray<{ gate: string; trigger: string; message: string }>): string {
  return findings.length
    ? `; ${findings
        .slice(0, 3)
        .map((f) => `${f.gate}/${f.trigger}: ${f.message}`)
        .join('; ')}`
    : '';
}

type Raced<T> = { ok: true; value: T } | { ok: false; timeout: true } | { ok: false; timeout: false; error: unknown };

/** The promise's outcome, or a timeout after `ms`; the promise itself runs on (its answer fills the cache). */
function raceDeadline<T>(p: Promise<T>, ms: number): Promise<Raced<T>> {
  p.catch(() => {});
  if (ms <= 0) return Promise.resolve({ ok: false, timeout: true });
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ ok: false, timeout: true }), ms);
    p.then(
      (value) => {
        clearTimeout(t);
        resolve({ ok: true, value });
      },
      (error: unknown) => {
        clearTimeout(t);
        resolve({ ok: false, timeout: false, error });
      },
    );
  });
}

function unjudged(r: { ok: false; timeout: boolean; error?: unknown }): Omit<Judgement, 'lookup'> {
  if (r.timeout) return { verdict: 'unjudged', reason: 'deadline', detail: 'Anchore did not answer within the admission deadline' };
  const err = r.error;
  if (err instanceof AnchoreError && (err.kind === 'not-found' || err.kind === 'account-not-found')) {
    return { verdict: 'unjudged', reason: 'not_analyzed', detail: `Anchore holds no evaluation of it (not added or not analysed yet): ${err.message}`.slice(0, 300) };
  }
  return { verdict: 'unjudged', reason: 'anchore_unavailable', detail: `Anchore could not be asked: ${errorMessage(err)}`.slice(0, 300) };
}

/** What an Event about the reviewed object names: itself once named, else its controller, else its namespace. */
function subjectRef(w: ReviewedWorkload): ObjectRef {
  if (!w.name.endsWith('*')) return { apiVersion: w.apiVersion, kind: w.kind, name: w.name, namespace: w.namespace };
  if (w.owner) return { ...w.owner, namespace: w.namespace };
  return { apiVersion: 'v1', kind: 'Namespace', name: w.namespace };
}
