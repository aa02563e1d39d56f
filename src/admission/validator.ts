/**
 * The admission decision, in steps: select (the bindings that cover the object) → trust (a controller creating an
 * object for an admitted owner inherits its admission; breakglass for the subjects a cluster admin allows) → resolve
 * (each container's image, a tag to every digest it may stand for) → judge (each image under each binding) → decide
 * (deny, warn, admit) → announce (Events, registrations of unknown images).
 *
 * Verdicts come from what the bindings already know — the shared evaluation cache, else the binding's own status —
 * so a hit costs no Anchore call. A miss costs at most one call per image (concurrent requests share it), with at most
 * one retry, all within a deadline below the webhook timeout. An image that cannot be judged follows the binding's
 * failurePolicy. Dry runs have no side effects: no Events, no registrations.
 */
import type { AnchoreApi, PolicyCheck } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { AdmissionConfig } from '../config.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { AnchoreImages } from '../model/anchore-images.ts';
import type { ImageCatalog } from '../model/image-catalog.ts';
import { imageKey } from '../model/image-keys.ts';
import type { Scope } from '../model/scope.ts';
import { type AdmissionFailurePolicy, BREAKGLASS_ANNOTATION, type BindingInfo, EVENT_REASON } from '../crds/types.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { compileGlobs } from '../discovery/glob.ts';
import type { AccessChecker, ContainerKind, EventRecorder, NamespaceInfo, ObjectRef, Store } from '../kube/cluster.port.ts';
import { type CompiledBinding, bindingRef, checkVerdict, compileBinding } from '../model/binding-spec.ts';
import type { Clock } from '../runtime/clock.ts';
import { raceDeadline } from '../runtime/deadline.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { AdmissionRegistrar, REGISTRATION_OUTCOMES, type Unknown } from './registrar.ts';
import { type AdmissionRequest, type AdmissionResponse, REVIEWED_KINDS, type ReviewedWorkload, newContainers, workloadOf } from './review.ts';
import { BREAKGLASS_ACCESS, decideBreakglass, inheritsAdmission } from './trust.ts';

type ImageVerdict = 'pass' | 'warn' | 'fail' | 'unjudged';
type UnjudgedReason = 'not_in_anchore' | 'not_analyzed' | 'anchore_unavailable' | 'deadline' | 'invalid_reference';
/** The unjudged reasons the alert rules watch (deploy/monitoring/prometheus-rules.yaml). */
const ALERTED_UNJUDGED: readonly UnjudgedReason[] = ['anchore_unavailable', 'deadline'];
const FAILURE_POLICIES: readonly AdmissionFailurePolicy[] = ['open', 'closed'];
/** Worst first: the verdict of an image that may be several digests is the worst of theirs. */
const SEVERITY: Record<ImageVerdict, number> = { fail: 3, unjudged: 2, warn: 1, pass: 0 };
/** Anchore calls on a miss: the first attempt and at most one retry, both inside the deadline. */
const MISS_ATTEMPTS = 2;
/** A tag that may stand for more digests than this is not judged (each would cost a lookup). */
const MAX_TAG_CANDIDATES = 16;

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
  /** The shared image model (what runs, what Anchore holds), kept current on every replica. */
  catalog: ImageCatalog;
  /** Anchore's image lists and tag lookups (fills the catalog). */
  anchoreImages: Pick<AnchoreImages, 'ensureAccount' | 'lookupTag'>;
  cache: EvaluationCache;
  anchore: Pick<AnchoreApi, 'addImage' | 'getImage'>;
  /** SubjectAccessReviews: who may break glass. */
  access: AccessChecker;
  events: EventRecorder;
  config: Pick<AdmissionConfig, 'deadlineMs' | 'exemptNamespaces' | 'registerUnknown' | 'registerLimits' | 'registerRepositories' | 'trustedControllers'>;
  /** The operator's own namespace: always exempt (it must be able to restart itself). */
  ownNamespace?: string;
  clusterName: string;
  clock: Clock;
  log: Logger;
  metrics: OperatorMetrics;
}

/** One container image of the reviewed object, as the spec writes it and as the operator resolves it. */
interface SpecImage {
  /** The reference as written in the spec (what a person recognises). */
  spec: string;
  /** undefined: the reference cannot be parsed (judged as unjudged, never skipped). */
  image?: ResolvedImage;
  invalid?: string;
}

interface Covered {
  binding: BindingInfo;
  compiled: CompiledBinding;
  account: string;
  image: SpecImage;
}

const POLICY_LIST_MAX_AGE_MS = 5 * 60_000;
const MAX_MESSAGE = 4000;
const MAX_WARNING = 512;

export class AdmissionValidator {
  readonly #o: AdmissionValidatorOptions;
  readonly #exempt: (ns: string) => boolean;
  readonly #trusted: ReadonlySet<string>;
  readonly #registrar: AdmissionRegistrar;
  readonly #log: Logger;
  /** Accounts admission judged in: their policy and image lists are kept fresh, so a miss costs one call, not two. */
  readonly #accounts = new Set<string>();
  /**
   * Each binding's compiled spec, per cached object: the informer replaces the object on every change, so an entry
   * lives exactly as long as the version it was compiled from (no glob or selector compiling per request).
   */
  readonly #compiled = new WeakMap<BindingInfo, ReturnType<typeof compileBinding>>();
  #timer: unknown;

  constructor(o: AdmissionValidatorOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'admission' });
    const g = compileGlobs(o.config.exemptNamespaces);
    if (!g.ok) throw new Error(`admission exempt namespaces: ${g.reason}`);
    this.#exempt = (ns) => ns === o.ownNamespace || g.value(ns);
    this.#trusted = new Set(o.config.trustedControllers);
    this.#registrar = new AdmissionRegistrar({
      anchore: o.anchore,
      catalog: o.catalog,
      limits: o.config.registerLimits,
      repositories: o.config.registerRepositories,
      clusterName: o.clusterName,
      clock: o.clock,
      log: this.#log,
      metrics: o.metrics,
    });
  }

  /**
   * Keeps the policy lists of the accounts in use fresh (every minute, one call each) and their image lists loaded:
   * on a replica that is not the leader nothing else reads them.
   */
  start(accounts: readonly string[]): void {
    // The counters the alert rules watch exist from the start (at 0), so rate() sees the first error after a restart.
    this.#o.metrics.admissionRequests.inc({ kind: 'other', verdict: 'error' }, 0);
    for (const failure_policy of FAILURE_POLICIES) for (const reason of ALERTED_UNJUDGED) this.#o.metrics.admissionUnjudged.inc({ failure_policy, reason }, 0);
    for (const outcome of REGISTRATION_OUTCOMES) this.#o.metrics.admissionRegistrations.inc({ outcome }, 0);
    for (const a of accounts) this.#useAccount(a);
    const refresh = (): void => {
      for (const a of this.#accounts) this.#o.cache.policies(a, 50_000).catch((err: unknown) => this.#log.debug({ account: a, err: errorMessage(err) }, 'policy list refresh failed'));
      this.#timer = this.#o.clock.setTimeout(refresh, 60_000);
    };
    refresh();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
  }

  #useAccount(account: string): void {
    if (this.#accounts.has(account) || this.#accounts.size >= 1000) return;
    this.#accounts.add(account);
    this.#o.anchoreImages.ensureAccount(account).catch((err: unknown) => {
      // Tag lookups on a miss still work; the next review in the account tries the list again.
      this.#accounts.delete(account);
      this.#log.debug({ account, err: errorMessage(err) }, 'could not read the images Anchore holds');
    });
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

    // select
    const bindings = this.#bindingsFor(w);
    if (bindings.length === 0) return allow('allowed');
    const dryRun = req.dryRun === true;
    const deadline = this.#o.clock.now() + this.#o.config.deadlineMs;

    // trust
    if (inheritsAdmission(req, w, this.#trusted)) return allow('inherited');
    const breakglass = w.annotations[BREAKGLASS_ANNOTATION];
    /** Why the annotation does not count: the request is then judged like any other, and the answer says so. */
    let refusedBreakglass: string | undefined;
    if (breakglass !== undefined) {
      const d = await decideBreakglass(this.#o.access, req.userInfo, namespace, breakglass, deadline - this.#o.clock.now());
      const user = req.userInfo?.username ?? 'unknown';
      if (!d.ok) {
        this.#log.warn({ namespace, kind, name: w.name, user, dryRun, why: d.message }, 'admission breakglass refused; judging the images');
        refusedBreakglass = d.message;
      }
    }
    if (breakglass !== undefined && refusedBreakglass === undefined) {
      const d = { reason: breakglass.trim() };
      const user = req.userInfo?.username ?? 'unknown';
      this.#o.metrics.admissionBreakglass.inc({ namespace });
      this.#log.warn({ namespace, kind, name: w.name, user, reason: d.reason, dryRun }, 'admission breakglass used: images not checked');
      if (!dryRun) {
        this.#o.events.event(
          subjectRef(w),
          'Warning',
          EVENT_REASON.admissionBreakglass,
          'Admit',
          `${kind} ${namespace}/${w.name} admitted without an Anchore policy check by the ${BREAKGLASS_ANNOTATION} annotation (user ${user}): ${d.reason}`.slice(0, 1024),
        );
      }
      return done('breakglass', 'none', {
        allowed: true,
        warnings: [`anchore-operator: ${BREAKGLASS_ANNOTATION} is set (${d.reason}); images were not checked and this use is audited`.slice(0, MAX_WARNING)],
      });
    }

    // resolve: every (binding, image) pair the bindings cover. An image that cannot be parsed is covered by every
    // binding that selects the pods (no image filter can be said not to match it): it is unjudged, never skipped.
    const images = this.#resolve(containers);
    const covered: Covered[] = [];
    for (const { binding, compiled } of bindings) {
      const account = binding.spec.account ?? this.#o.scope.accountFor(ns, namespace);
      this.#useAccount(account);
      const seen = new Set<string>();
      for (const img of images) {
        if (img.image && !compiled.covers(img.image)) continue;
        if (seen.has(img.spec)) continue;
        seen.add(img.spec);
        covered.push({ binding, compiled, account, image: img });
      }
    }
    if (covered.length === 0) {
      if (refusedBreakglass === undefined) return allow('allowed');
      return done('warned', 'none', { allowed: true, warnings: [`anchore-operator: the ${BREAKGLASS_ANNOTATION} annotation was ignored (${refusedBreakglass})`.slice(0, MAX_WARNING)] });
    }

    // judge
    const judgements = await Promise.all(covered.map((c) => this.#judge(c, deadline)));

    // decide
    const denials: string[] = [];
    const warnings: string[] = [];
    const violations: Array<{ c: Covered; failing: string }> = [];
    const unknown: Unknown[] = [];
    let anyMiss = false;
    let policyFailure = false;
    covered.forEach((c, i) => {
      const j = judgements[i] as Judgement;
      if (j.lookup === 'miss') anyMiss = true;
      if (j.lookup !== 'none') this.#o.metrics.admissionLookups.inc({ result: j.lookup });
      const from = describeBinding(c.binding);
      let failing: string | undefined;
      if (j.verdict === 'fail') {
        failing = `image ${c.image.spec} fails Anchore policy ${j.policy ?? '(active)'} in account ${c.account}: ${j.detail}`;
        policyFailure ||= c.compiled.enforcement === 'deny';
      } else if (j.verdict === 'unjudged') {
        this.#o.metrics.admissionUnjudged.inc({ failure_policy: c.compiled.failurePolicy, reason: j.reason ?? 'not_in_anchore' });
        if (c.image.image && (j.reason === 'not_in_anchore' || j.reason === 'not_analyzed')) unknown.push({ account: c.account, image: c.image.image });
        if (c.compiled.failurePolicy === 'closed') failing = `image ${c.image.spec} cannot be judged (${j.detail}) and failurePolicy is closed`;
        else warnings.push(warning(from, `image ${c.image.spec} was not checked against Anchore policy (${j.detail}); admitted because failurePolicy is open`));
      } else if (j.verdict === 'warn' && c.compiled.enforcement !== 'audit') {
        warnings.push(warning(from, `image ${c.image.spec} has final action warn under Anchore policy ${j.policy ?? '(active)'}: ${j.detail}`));
      }
      if (!failing) return;
      this.#o.metrics.admissionViolations.inc({ enforcement: c.compiled.enforcement });
      if (c.compiled.enforcement === 'deny') denials.push(`${failing} (${from}, enforcement deny)`);
      else if (c.compiled.enforcement === 'warn') warnings.push(warning(`${from} (enforcement warn)`, failing));
      violations.push({ c, failing });
    });
    const denied = denials.length > 0;

    // announce: registrations are decided now (the answer says what happened) and sent after it.
    const sent = !dryRun && this.#o.config.registerUnknown ? this.#registrar.offer(namespace, unknown, denied && policyFailure) : new Set<string>();
    if (!dryRun) {
      const denier = violations.find((v) => v.c.compiled.enforcement === 'deny')?.c.binding;
      for (const { c, failing } of violations) {
        const e = c.compiled.enforcement;
        const reason = e === 'deny' ? EVENT_REASON.admissionDenied : e === 'warn' ? EVENT_REASON.admissionWarned : EVENT_REASON.admissionAudit;
        // The outcome of the request, not of this binding alone: an audit binding must not say "admitted" when another binding rejected it.
        const outcome = !denier ? 'admitted' : e === 'deny' ? 'rejected' : `rejected (by ${describeBinding(denier)})`;
        this.#o.events.event(bindingRef(c.binding), 'Warning', reason, 'Admit', `${kind} ${namespace}/${w.name} ${outcome}: ${failing}`.slice(0, 1024), subjectRef(w));
      }
    }
    const lookup = anyMiss ? 'miss' : 'hit';
    if (refusedBreakglass !== undefined && !denied)
      warnings.unshift(`anchore-operator: the ${BREAKGLASS_ANNOTATION} annotation was ignored (${refusedBreakglass}); the images were checked`.slice(0, MAX_WARNING));
    const uniqueWarnings = [...new Set(warnings)];
    if (denied) {
      const next = nextSteps(namespace, policyFailure, unknown, sent);
      const refused = refusedBreakglass === undefined ? '' : `breakglass refused: ${refusedBreakglass}; so the images were checked: `;
      const body = `anchore-operator denied ${kind} ${namespace}/${w.name}: ${refused}${[...new Set(denials)].join('; ')}`;
      const message = `${body.length > MAX_MESSAGE ? `${body.slice(0, MAX_MESSAGE)}…` : body}. ${next}`;
      return done('denied', lookup, { allowed: false, status: { code: 403, reason: 'Forbidden', message }, ...(uniqueWarnings.length ? { warnings: uniqueWarnings } : {}) });
    }
    return done(uniqueWarnings.length ? 'warned' : 'allowed', lookup, { allowed: true, ...(uniqueWarnings.length ? { warnings: uniqueWarnings } : {}) });
  }

  #resolve(containers: ReadonlyArray<{ name: string; kind: ContainerKind; image: string }>): SpecImage[] {
    const out: SpecImage[] = [];
    const seen = new Set<string>();
    for (const c of containers) {
      if (seen.has(c.image)) continue;
      seen.add(c.image);
      const r = this.#o.scope.resolveImage({ name: c.name, kind: c.kind, image: c.image });
      if (r.kind === 'image') out.push({ spec: displayName(c.image, r.image), image: r.image });
      else if (r.kind === 'invalid') out.push({ spec: JSON.stringify(c.image.slice(0, 200)), invalid: r.reason });
      // excluded (IMAGES_EXCLUDE) and dropped (MISSING_TAG_POLICY=drop): the admin chose not to follow these images.
    }
    return out;
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

  /**
   * One image under one binding. A digest in the spec is judged on that digest. A tag is judged on every digest it may
   * stand for (catalog.tagCandidates: kubelet pulls of tag-only specs, Anchore's record of the tag; Anchore is asked
   * on a miss), and the worst verdict counts: a digest some tenant pinned beside the tag can add a candidate but never
   * hide a failing one.
   */
  async #judge(c: Covered, deadline: number): Promise<Judgement> {
    const image = c.image.image;
    if (!image) return { verdict: 'unjudged', lookup: 'none', reason: 'invalid_reference', detail: `the image reference cannot be parsed: ${c.image.invalid ?? 'invalid'}` };
    if (image.digest && image.pinned) return this.#judgeDigest(c, image.digest, deadline);
    let candidates = this.#o.catalog.tagCandidates(c.account, image.tag);
    let lookup: Judgement['lookup'] = 'hit';
    if (candidates.length === 0) {
      lookup = 'miss';
      const r = await raceDeadline(this.#o.anchoreImages.lookupTag(c.account, image.tag, this.#limits(deadline)), deadline - this.#o.clock.now());
      if (!r.ok) return { ...unjudged(r), lookup };
      candidates = r.value;
    }
    if (candidates.length === 0) return { verdict: 'unjudged', lookup, reason: 'not_in_anchore', detail: 'Anchore holds no image under this tag and no pod runs it' };
    if (candidates.length > MAX_TAG_CANDIDATES) {
      return { verdict: 'unjudged', lookup, reason: 'not_analyzed', detail: `the tag stands for ${candidates.length} digests (more than ${MAX_TAG_CANDIDATES}); pin a digest` };
    }
    const all = await Promise.all(candidates.map((d) => this.#judgeDigest(c, d, deadline)));
    let worst = all[0] as Judgement;
    for (const j of all) if (SEVERITY[j.verdict] > SEVERITY[worst.verdict]) worst = j;
    const worstIndex = all.indexOf(worst);
    const miss = lookup === 'miss' || all.some((j) => j.lookup === 'miss');
    const several = candidates.length > 1 ? ` (the tag may stand for ${candidates.length} digests; ${short(candidates[worstIndex] as string)}: ${worst.verdict})` : '';
    return { ...worst, lookup: miss ? 'miss' : worst.lookup, detail: `${worst.detail}${several}` };
  }

  #limits(deadline: number): { attempts: number; deadlineAt: number } {
    return { attempts: MISS_ATTEMPTS, deadlineAt: deadline };
  }

  async #judgeDigest(c: Covered, digest: string, deadline: number): Promise<Judgement> {
    const { binding: b, compiled, account } = c;
    const tag = (c.image.image as ResolvedImage).tag;
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
      const hit = this.#o.cache.peekCheck(account, policyId, digest, tag, compiled.intervalMs);
      if (hit) return { ...fromCheck(hit, compiled.failOn), lookup: 'hit', ...(policy ? { policy } : {}) };
      const fromStatus = this.#fromStatus(b, compiled, policyId, digest, tag);
      if (fromStatus) return { ...fromStatus, lookup: 'hit', ...(policy ? { policy } : {}) };
    }
    // A miss: one Anchore call (shared with any concurrent request for the same image), within the deadline.
    const limits = this.#limits(deadline);
    const r = await raceDeadline(
      policyId
        ? this.#o.cache.check(account, policyId, digest, tag, compiled.intervalMs, limits)
        : this.#o.cache.policies(account, POLICY_LIST_MAX_AGE_MS, limits).then((list) => {
            const active = list.find((p) => p.active);
            if (!active) throw new AnchoreError('not-found', 'listPolicies', `account ${account} has no active policy`, { status: 404 });
            policyName = active.name;
            return this.#o.cache.check(account, active.policy_id, digest, tag, compiled.intervalMs, limits);
          }),
      deadline - this.#o.clock.now(),
    );
    const named = policyName ?? policyId;
    if (r.ok) return { ...fromCheck(r.value, compiled.failOn), lookup: 'miss', ...(named ? { policy: named } : {}) };
    return { ...unjudged(r), lookup: 'miss', ...(named ? { policy: named } : {}) };
  }

  async #judgeAnalysis(c: Covered, digest: string, deadline: number): Promise<Judgement> {
    const tag = (c.image.image as ResolvedImage).tag;
    const entry = this.#o.catalog.lookup(imageKey(c.account, { digest, tag }));
    if (entry?.analysis === 'analyzed') return { verdict: 'pass', lookup: 'hit', detail: 'analysed' };
    const s = c.binding.status.results?.find((x) => x.digest === digest && x.result === 'pass');
    if (s && c.binding.status.observedGeneration === c.binding.generation) return { verdict: 'pass', lookup: 'hit', detail: 'analysed' };
    const r = await raceDeadline(this.#o.anchore.getImage(c.account, digest, this.#limits(deadline)), deadline - this.#o.clock.now());
    if (!r.ok) return { ...unjudged(r), lookup: 'miss' };
    if (r.value.analysis_status === 'analyzed') return { verdict: 'pass', lookup: 'miss', detail: 'analysed' };
    if (r.value.analysis_status === 'analysis_failed') return { verdict: 'fail', lookup: 'miss', detail: 'Anchore failed to analyse the image' };
    return { verdict: 'unjudged', lookup: 'miss', reason: 'not_analyzed', detail: `Anchore has not analysed it yet (${r.value.analysis_status})` };
  }

  /** The binding's own last verdict on this image, if it is for this policy and spec, and fresh. */
  #fromStatus(b: BindingInfo, compiled: CompiledBinding, policyId: string, digest: string, tag: string): Omit<Judgement, 'lookup'> | undefined {
    const st = b.status;
    if (st.observedGeneration !== b.generation || st.policy?.id !== policyId || !st.lastEvaluationTime) return undefined;
    if (this.#o.clock.now() - Date.parse(st.lastEvaluationTime) > compiled.intervalMs) return undefined;
    const r = st.results?.find((x) => x.digest === digest && x.image === tag);
    if (!r || (r.result !== 'pass' && r.result !== 'fail' && r.result !== 'warn')) return undefined;
    return { verdict: r.result, detail: `final action ${r.finalAction ?? r.result}, ${r.findings ?? 0} finding(s)${findingsSuffix(r.topFindings ?? [])}` };
  }
}

function describeBinding(b: BindingInfo): string {
  return b.namespace === undefined ? `${b.kind} ${b.name}` : `${b.kind} ${b.namespace}/${b.name}`;
}

/** A warning kubectl prints: who says it first, so a cut (at 512 characters) never loses the binding's name. */
function warning(from: string, text: string): string {
  const w = `anchore-operator: ${from}: ${text}`;
  return w.length > MAX_WARNING ? `${w.slice(0, MAX_WARNING - 1)}…` : w;
}

/**
 * How a person recognises the image: the normalised reference as the spec wrote it — a tag, a digest, or both —
 * never the pseudo-tag MISSING_TAG_POLICY gives a digest-only image for Anchore.
 */
function displayName(spec: string, r: ResolvedImage): string {
  if (!r.pinned || !r.digest) return r.tag;
  const last = spec.slice(spec.lastIndexOf('/') + 1);
  const hasTag = last.slice(0, last.indexOf('@') < 0 ? undefined : last.indexOf('@')).includes(':');
  return hasTag ? `${r.tag}@${r.digest}` : `${r.repository}@${r.digest}`;
}

function short(digest: string): string {
  return digest.slice(0, 19);
}

/** What the person whose request was denied can do next. */
function nextSteps(namespace: string, policyFailure: boolean, unknown: readonly Unknown[], sent: ReadonlySet<string>): string {
  const steps: string[] = [];
  if (policyFailure) steps.push('use an image that passes the policy (or fix its findings and rebuild)');
  if (unknown.length) {
    const all = unknown.every((u) => sent.has(imageKey(u.account, u.image)));
    steps.push(
      all
        ? 'the images Anchore did not know were sent to it for analysis: apply again once they are analysed (usually minutes)'
        : 'ask your platform team to add the images Anchore does not know (admission did not send them all: see anchore_operator_admission_registrations_total)',
    );
  }
  steps.push(
    `to deploy anyway, someone allowed to break glass ("use" on breakglass.${BREAKGLASS_ACCESS.group} in namespace ${namespace}) can set the ${BREAKGLASS_ANNOTATION} annotation with a reason`,
  );
  return `Next: ${steps.join('; or ')}`;
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
