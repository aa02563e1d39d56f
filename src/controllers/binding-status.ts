import type { PolicyRecord } from '../anchore/anchore.port.ts';
import type { BindingImageResult, BindingInfo, BindingStatus, BindingSummary, Condition } from '../crds/types.ts';
import { CONDITION, REASON } from '../crds/types.ts';
import type { CompiledBinding } from '../model/binding-spec.ts';
import { StallError, type WaitError } from '../runtime/errors.ts';
import { formatTimestamp } from '../runtime/time.ts';
import { selectorToString } from '../discovery/label-selector.ts';
import { ANCHORE_RETRY_MS } from './binding-policy.ts';

/** How soon a binding with images waiting for analysis (or re-registration) is looked at again. */
export const PENDING_RECHECK_MS = 15_000;

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
 * The summarize step: the whole status a reconcile ends with, from its outcome (kstatus conditions, summary, bounded
 * results), and when to look again. A problem or a suspension keeps the last results; only the conditions say why.
 */
export function summarizeBinding(b: BindingInfo, outcome: BindingOutcome, now: Date): { status: BindingStatus; requeueMs?: number } {
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
    return { status: withConditions(conditionsFor({ kind: e instanceof StallError ? 'stalled' : 'retrying', reason: e.reason, message: e.message })) };
  }
  const { compiled, results, accounts, policies, unavailable } = outcome;
  const s = summarize(results, outcome.workloads);
  const policy = [...policies.values()][0];
  const counts = `${s.images} image(s) in ${s.workloads} workload(s): ${s.passed} passed, ${s.failed} failed, ${s.warned} warned, ${s.pending} pending, ${s.errors} errors`;
  let condition: Parameters<typeof conditionsFor>[0];
  let requeueMs = compiled.intervalMs;
  if (unavailable) {
    condition = { kind: 'retrying', reason: REASON.anchoreUnavailable, message: `Anchore is unavailable; showing the last known results. ${unavailable}` };
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
                  ? { ok: false, reason: REASON.policyFailed, message: `${s.failed} image(s) fail policy ${policy?.name ?? ''}`.trim() }
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
    conditions: mergeConditions(b.status.conditions, conditionsFor(condition), b.generation, now),
    summary: s,
    lastEvaluationTime: formatTimestamp(now),
    results: bounded.results,
  };
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

export function summarize(results: readonly BindingImageResult[], workloads: number): BindingSummary {
  const s: BindingSummary = { workloads, images: results.length, passed: 0, failed: 0, warned: 0, pending: 0, errors: 0 };
  for (const r of results) {
    if (r.result === 'pass') s.passed++;
    else if (r.result === 'fail') s.failed++;
    else if (r.result === 'warn') s.warned++;
    else if (r.result === 'pending') s.pending++;
    else s.errors++;
  }
  return s;
}

/** Failing first, then by image; cut to MAX_RESULTS and the byte budget. */
export function boundResults(results: readonly BindingImageResult[]): { results: BindingImageResult[]; truncated: boolean } {
  const sorted = [...results].sort((a, b) => (ORDER[a.result] ?? 9) - (ORDER[b.result] ?? 9) || a.image.localeCompare(b.image) || (a.digest ?? '').localeCompare(b.digest ?? ''));
  const out: BindingImageResult[] = [];
  let bytes = 0;
  for (const r of sorted) {
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
