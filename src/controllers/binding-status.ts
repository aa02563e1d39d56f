import type { PolicyRecord } from '../anchore/anchore.port.ts';
import { BINDING_STATUS_SCHEMA } from '../crds/schema.ts';
import type { BindingImageResult, BindingInfo, BindingStatus, BindingSummary, Condition } from '../crds/types.ts';
import { CONDITION, REASON } from '../crds/types.ts';
import type { CompiledBinding } from '../model/binding-spec.ts';
import { StallError, type WaitError } from '../runtime/errors.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { selectorToString } from '../discovery/label-selector.ts';
import { ANCHORE_RETRY_MS } from './binding-policy.ts';

/** How soon a binding with images waiting for analysis (or re-registration) is looked at again. */
export const PENDING_RECHECK_MS = 15_000;

/** The parts of an OpenAPI v3 schema (src/crds/schema.ts) that bound a status. */
interface SchemaNode {
  type?: string;
  maxLength?: number;
  maxItems?: number;
  maxProperties?: number;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
}

const STATUS_SCHEMA = BINDING_STATUS_SCHEMA as SchemaNode;
const RESULT_SCHEMA = STATUS_SCHEMA.properties?.['results']?.items ?? {};

/** How a binding reconcile ended, for the one status write at its end. */
export type BindingOutcome =
  | { kind: 'suspended' }
  /** A step could not go on: WaitError (retrying) or StallError (needs a change), with the reason Ready shows. */
  | { kind: 'problem'; error: WaitError | StallError }
  | {
      kind: 'evaluated';
      compiled: Pick<CompiledBinding, 'mode' | 'intervalMs'>;
      results: BindingImageResult[];
      /** Distinct workloads running the selected images. */
      workloads: number;
      accounts: ReadonlySet<string>;
      policies: ReadonlyMap<string, PolicyRecord>;
      /** Anchore was unavailable for some image. */
      unavailable?: string;
    };

/** What a binding selects, as an admin would write it: "podSelector app=web, images include docker.io/*". */
export function describeSelection(b: BindingInfo): string {
  const spec = b.spec;
  const parts: string[] = [];
  if (spec.namespaces?.length) parts.push(`namespaces ${spec.namespaces.join(',')}`);
  const ns = spec.namespaceSelector ? selectorToString(spec.namespaceSelector) : '';
  if (ns) parts.push(`namespaceSelector ${ns}`);
  const pods = spec.podSelector ? selectorToString(spec.podSelector) : '';
  parts.push(pods ? `podSelector ${pods}` : b.kind === 'AnchorePolicyBinding' ? `every pod in namespace ${b.namespace ?? ''}` : 'every pod');
  if (spec.images?.include?.length) parts.push(`images include ${spec.images.include.join(',')}`);
  if (spec.images?.exclude?.length) parts.push(`images exclude ${spec.images.exclude.join(',')}`);
  return parts.join(', ');
}

/**
 * Stalled reasons that mean Anchore holds no policy for the binding (the policy, or the account holding it, is gone):
 * the status then names no policy and shows no verdicts of one (policy, summary, results, truncated and
 * lastEvaluationTime are cleared); they come back with the next evaluation.
 */
const POLICY_GONE: ReadonlySet<string> = new Set([REASON.policyNotFound, REASON.accountNotFound]);

/** How a Compliant condition kept through an Anchore outage begins (the time is the last successful evaluation). */
const LAST_KNOWN = /^From the last successful evaluation at \S+ \(Anchore is unavailable now\): /;

/**
 * The Compliant condition while Anchore is unavailable: the last known verdict (the previous Compliant, if it was for
 * this generation), its message saying since when. `lastSuccess`: the last successful evaluation this process saw;
 * else the status's lastEvaluationTime. A message that already says so is kept as it is (no churn across retries).
 */
function lastKnownVerdict(b: BindingInfo, lastSuccess: Date | undefined): DesiredCondition[] {
  const c = b.status.conditions?.find((x) => x.type === CONDITION.compliant);
  if (!c || c.status === 'Unknown' || (c.observedGeneration ?? b.status.observedGeneration) !== b.generation) return [];
  if (LAST_KNOWN.test(c.message)) return [{ type: c.type, status: c.status, reason: c.reason, message: c.message }];
  const at = lastSuccess ? formatTimestamp(lastSuccess) : (b.status.lastEvaluationTime ?? c.lastTransitionTime);
  return [{ type: c.type, status: c.status, reason: c.reason, message: `From the last successful evaluation at ${at} (Anchore is unavailable now): ${c.message}` }];
}

/**
 * The summarize step: the whole status a reconcile ends with, from its outcome (kstatus conditions, summary, bounded
 * results), and when to look again. A problem or a suspension keeps the last results; only the conditions say why —
 * except a policy Anchore no longer has (POLICY_GONE), whose verdicts are dropped with it. While Anchore is
 * unavailable, Compliant keeps the last known verdict. `lastSuccess`: when this process last evaluated the binding
 * completely (named in that Compliant message).
 */
export function summarizeBinding(b: BindingInfo, outcome: BindingOutcome, now: Date, lastSuccess?: Date): { status: BindingStatus; requeueMs?: number } {
  const withConditions = (desired: DesiredCondition[]): BindingStatus => ({
    ...b.status,
    observedGeneration: b.generation,
    conditions: mergeConditions(b.status.conditions, desired, b.generation, now),
  });
  if (outcome.kind === 'suspended') {
    return { status: withConditions(conditionsFor({ kind: 'done', reason: REASON.suspended, message: 'Evaluation is suspended (spec.suspend); the results shown are from before.' })) };
  }
  if (outcome.kind === 'problem') {
    const e = outcome.error;
    const desired = conditionsFor({ kind: e instanceof StallError ? 'stalled' : 'retrying', reason: e.reason, message: e.message });
    if (e.reason === REASON.anchoreUnavailable) desired.push(...lastKnownVerdict(b, lastSuccess));
    const status = withConditions(desired);
    if (POLICY_GONE.has(e.reason)) {
      delete status.policy;
      delete status.summary;
      delete status.results;
      delete status.truncated;
      delete status.lastEvaluationTime;
    }
    return { status };
  }
  const { compiled, results, accounts, policies, unavailable } = outcome;
  const s = summarize(results, outcome.workloads);
  const policy = [...policies.values()][0];
  const counts = `${s.images} image(s) in ${s.workloads} workload(s): ${s.passed} passed, ${s.failed} failed, ${s.warned} warned, ${s.pending} pending, ${s.errors} errors`;
  let condition: Parameters<typeof conditionsFor>[0];
  let requeueMs = compiled.intervalMs;
  let kept: DesiredCondition[] = [];
  if (unavailable) {
    condition = { kind: 'retrying', reason: REASON.anchoreUnavailable, message: `Anchore is unavailable; showing the last known results. ${unavailable}` };
    kept = lastKnownVerdict(b, lastSuccess);
    requeueMs = ANCHORE_RETRY_MS;
  } else if (s.pending > 0) {
    const gone = results.filter((r) => r.reason === REASON.imageNotInAnchore).length;
    condition = gone
      ? { kind: 'progressing', reason: REASON.imageNotInAnchore, message: `Anchore no longer holds ${gone} image(s); registering them again. ${counts}` }
      : { kind: 'progressing', reason: REASON.analysisPending, message: `Waiting for Anchore to analyse ${s.pending} image(s). ${counts}` };
    requeueMs = PENDING_RECHECK_MS;
  } else {
    const reason = s.images === 0 ? REASON.noImages : compiled.mode === 'analyze' ? REASON.analyzed : REASON.evaluated;
    const selection = s.images === 0 ? describeSelection(b) : '';
    condition = {
      kind: 'done',
      reason,
      message: s.images === 0 ? `No running image matches this binding (${selection}).` : counts,
      ...(compiled.mode === 'evaluate'
        ? {
            compliant:
              s.images === 0
                ? { ok: undefined, reason: REASON.noImages, message: `This binding selects no running image (${selection}; check them): nothing passes or fails` }
                : s.failed > 0
                  ? { ok: false, reason: REASON.policyFailed, message: `${s.failed} image(s) fail policy ${policy?.name ?? ''}`.trim() + exploitedNote(results) }
                  : s.errors > 0
                    ? { ok: false, reason: REASON.evaluationErrors, message: `${s.errors} image(s) could not be evaluated` }
                    : { ok: true, reason: REASON.policyPassed, message: `All ${s.images} image(s) pass` },
          }
        : {}),
    };
  }
  const bounded = boundResults(results);
  const status: BindingStatus = {
    observedGeneration: b.generation,
    conditions: mergeConditions(b.status.conditions, [...conditionsFor(condition), ...kept], b.generation, now),
    summary: s,
    results: bounded.results,
  };
  // The time of the evaluation these results come from: not an evaluation that Anchore's outage cut short.
  const evaluatedAt = unavailable ? b.status.lastEvaluationTime : formatTimestamp(now);
  if (evaluatedAt) status.lastEvaluationTime = evaluatedAt;
  if (bounded.truncated) status.truncated = true;
  if (policy) status.policy = { id: policy.policy_id, name: policy.name, active: !b.spec.policyId };
  if (accounts.size === 1) status.account = [...accounts][0];
  else if (b.spec.account) status.account = b.spec.account;
  return { status, requeueMs };
}

/** Results kept in status, failing first. 100 results of ~600 bytes keep a binding far below etcd's 1.5 MiB. */
export const MAX_RESULTS = 100;
/** A hard byte budget for the results list, whatever the message sizes. */
const MAX_RESULTS_BYTES = 256 * 1024;

const ORDER: Record<string, number> = { fail: 0, error: 1, warn: 2, pending: 3, pass: 4 };

/**
 * "; 2 of them run known-exploited vulnerabilities (CVE-…, CVE-…)" for the failing images that have any (CISA KEV),
 * naming at most three ids; empty when none has.
 */
export function exploitedNote(results: readonly BindingImageResult[]): string {
  const failing = results.filter((r) => r.result === 'fail' && (r.knownExploited?.count ?? 0) > 0);
  if (failing.length === 0) return '';
  const ids = [...new Set(failing.flatMap((r) => r.knownExploited?.ids ?? []))];
  const named = ids.slice(0, 3).join(', ') + (ids.length > 3 ? ', …' : '');
  return `; ${failing.length} of them run known-exploited vulnerabilities (${named})`;
}

export function summarize(results: readonly BindingImageResult[], workloads: number): BindingSummary {
  const s: BindingSummary = { workloads, images: results.length, passed: 0, failed: 0, warned: 0, pending: 0, errors: 0 };
  let exploited = 0;
  for (const r of results) {
    if ((r.knownExploited?.count ?? 0) > 0) exploited++;
    if (r.result === 'pass') s.passed++;
    else if (r.result === 'fail') s.failed++;
    else if (r.result === 'warn') s.warned++;
    else if (r.result === 'pending') s.pending++;
    else s.errors++;
  }
  if (exploited > 0) s.knownExploited = exploited;
  return s;
}

/** Failing first (known-exploited first among them), then by image; each entry bounded to the schema (boundStatus), the list cut to MAX_RESULTS and the byte budget. */
export function boundResults(results: readonly BindingImageResult[]): { results: BindingImageResult[]; truncated: boolean } {
  // Within a result, images running known-exploited vulnerabilities first: they are kept when the list is cut.
  const kev = (r: BindingImageResult): number => ((r.knownExploited?.count ?? 0) > 0 ? 0 : 1);
  const sorted = [...results].sort((a, b) => (ORDER[a.result] ?? 9) - (ORDER[b.result] ?? 9) || kev(a) - kev(b) || a.image.localeCompare(b.image) || (a.digest ?? '').localeCompare(b.digest ?? ''));
  const out: BindingImageResult[] = [];
  let bytes = 0;
  for (const unbounded of sorted) {
    const r = bound(unbounded, RESULT_SCHEMA, 'status.results[]', []) as BindingImageResult;
    const size = JSON.stringify(r).length;
    if (out.length >= MAX_RESULTS || bytes + size > MAX_RESULTS_BYTES) return { results: out, truncated: true };
    out.push(r);
    bytes += size;
  }
  return { results: out, truncated: false };
}

interface DesiredCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * Merges desired conditions into the existing ones: lastTransitionTime moves only when a condition's status flips;
 * conditions not desired any more are dropped (kstatus: Reconciling/Stalled are present only while true).
 */
export function mergeConditions(existing: readonly Condition[] | undefined, desired: readonly DesiredCondition[], generation: number, now: Date): Condition[] {
  const prev = new Map((existing ?? []).map((c) => [c.type, c]));
  return desired.map((d) => {
    const p = prev.get(d.type);
    const transition = p && p.status === d.status ? p.lastTransitionTime : formatTimestamp(now);
    return { type: d.type, status: d.status, observedGeneration: generation, lastTransitionTime: transition, reason: d.reason, message: d.message };
  });
}

/**
 * True when two statuses say the same thing. lastEvaluationTime alone does not count: re-evaluating an unchanged
 * cluster must not write (no churn for Argo CD / Flux, no resourceVersion movement in steady state).
 */
export function sameStatus(a: BindingStatus | undefined, b: BindingStatus): boolean {
  const strip = (s: BindingStatus | undefined): unknown => (s ? { ...s, lastEvaluationTime: undefined } : undefined);
  return stableJson(strip(a)) === stableJson(strip(b));
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (val && typeof val === 'object' && !Array.isArray(val)) {
      return Object.fromEntries(
        Object.entries(val as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([x], [y]) => x.localeCompare(y)),
      );
    }
    return val;
  });
}

/** The kstatus condition set for an outcome (Ready, plus Reconciling or Stalled while they are true, plus Compliant). */
export function conditionsFor(
  outcome:
    | { kind: 'done'; reason: string; message: string; compliant?: { ok: boolean | undefined; reason: string; message: string } }
    | { kind: 'progressing'; reason: string; message: string }
    | { kind: 'stalled'; reason: string; message: string }
    | { kind: 'retrying'; reason: string; message: string },
): DesiredCondition[] {
  switch (outcome.kind) {
    case 'done': {
      const out: DesiredCondition[] = [{ type: CONDITION.ready, status: 'True', reason: outcome.reason, message: outcome.message }];
      if (outcome.compliant) {
        out.push({
          type: CONDITION.compliant,
          status: outcome.compliant.ok === undefined ? 'Unknown' : outcome.compliant.ok ? 'True' : 'False',
          reason: outcome.compliant.reason,
          message: outcome.compliant.message,
        });
      }
      return out;
    }
    case 'progressing':
    case 'retrying':
      return [
        { type: CONDITION.ready, status: 'False', reason: outcome.reason, message: outcome.message },
        { type: CONDITION.reconciling, status: 'True', reason: outcome.reason, message: outcome.message },
      ];
    case 'stalled':
      return [
        { type: CONDITION.ready, status: 'False', reason: outcome.reason, message: outcome.message },
        { type: CONDITION.stalled, status: 'True', reason: outcome.reason, message: outcome.message },
      ];
  }
}

/** What bounding left out of a status: where, and how much. */
export interface StatusCut {
  path: string;
  dropped: number;
  unit: 'characters' | 'items' | 'properties';
}

/**
 * Bounds a whole status to what the CRD's status schema (src/crds/schema.ts) admits, so that the apiserver never
 * refuses it, whatever a binding selects or Anchore answers: every string past its maxLength is cut, ending with
 * "… (N more characters)"; every list past its maxItems is cut — a list of plain strings keeps a last entry
 * "… and N more", a list of objects sets its parent's `truncated` when the schema has one (status.results). Lengths
 * count characters (code points), as the apiserver does. Deterministic and idempotent: a bounded status is bounded
 * again unchanged, so comparing it with the stored one never churns. The status-writing step applies it to every
 * write; `cuts` say what was left out.
 */
export function boundStatus(status: BindingStatus): { status: BindingStatus; cuts: StatusCut[] } {
  const cuts: StatusCut[] = [];
  return { status: bound(status, STATUS_SCHEMA, 'status', cuts) as BindingStatus, cuts };
}

/** A string cut to `max` characters (code points), ending with how many were left out; `dropped` 0 when it fits. */
export function cutText(s: string, max: number): { text: string; dropped: number } {
  // UTF-16 units are never fewer than code points: a string this short fits without counting.
  if (s.length <= max) return { text: s, dropped: 0 };
  const total = codePoints(s);
  if (total <= max) return { text: s, dropped: 0 };
  let keep = max;
  for (;;) {
    const suffix = `… (${total - keep} more characters)`;
    // The suffix is one code point per UTF-16 unit. Stops once its length no longer grows (the count's digits).
    if (keep + suffix.length <= max) return { text: s.slice(0, unitsOf(s, keep)) + suffix, dropped: total - keep };
    keep = max - suffix.length;
    if (keep < 1) return { text: s.slice(0, unitsOf(s, max - 1)) + '…', dropped: total - (max - 1) };
  }
}

function isHighSurrogate(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  const next = s.charCodeAt(i + 1);
  return c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i += isHighSurrogate(s, i) ? 2 : 1) n++;
  return n;
}

/** How many UTF-16 units the first `n` code points of `s` take. */
function unitsOf(s: string, n: number): number {
  let i = 0;
  for (let k = 0; k < n && i < s.length; k++) i += isHighSurrogate(s, i) ? 2 : 1;
  return i;
}

/** A list item that can say "… and N more" itself: a plain string (no enum, pattern or format to break). */
function canSayMore(items: SchemaNode | undefined): boolean {
  return items?.type === 'string' && !items.enum && !items.pattern && !items.format;
}

/** Bounds `value` to `schema` (see boundStatus), recording what it leaves out in `cuts`. Never mutates `value`. */
function bound(value: unknown, schema: SchemaNode, path: string, cuts: StatusCut[]): unknown {
  if (typeof value === 'string') {
    if (schema.maxLength === undefined) return value;
    const { text, dropped } = cutText(value, schema.maxLength);
    if (dropped) cuts.push({ path, dropped, unit: 'characters' });
    return text;
  }
  if (Array.isArray(value)) {
    let list: unknown[] = value;
    const max = schema.maxItems;
    if (max !== undefined && list.length > max) {
      const keep = canSayMore(schema.items) && max > 0 ? max - 1 : max;
      const dropped = list.length - keep;
      list = keep < max ? [...list.slice(0, keep), `… and ${dropped} more`] : list.slice(0, keep);
      cuts.push({ path, dropped, unit: 'items' });
    }
    const items = schema.items;
    return items ? list.map((x, i) => bound(x, items, `${path}[${i}]`, cuts)) : [...list];
  }
  if (value !== null && typeof value === 'object') {
    let entries = Object.entries(value as Record<string, unknown>);
    if (schema.maxProperties !== undefined && entries.length > schema.maxProperties) {
      cuts.push({ path, dropped: entries.length - schema.maxProperties, unit: 'properties' });
      entries = entries.sort(([a], [b]) => a.localeCompare(b)).slice(0, schema.maxProperties);
    }
    const out: Record<string, unknown> = {};
    let truncated = false;
    for (const [k, v] of entries) {
      const child = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (!child) {
        out[k] = v;
        continue;
      }
      const before = cuts.length;
      out[k] = bound(v, child, `${path}.${k}`, cuts);
      if (child.type === 'array' && !canSayMore(child.items) && cuts.slice(before).some((c) => c.path === `${path}.${k}` && c.unit === 'items')) truncated = true;
    }
    // A list of objects cut short says so in its parent's `truncated` flag (status.results → status.truncated).
    if (truncated && schema.properties?.['truncated']?.type === 'boolean') out['truncated'] = true;
    return out;
  }
  return value;
}
