import type { BindingImageResult, BindingStatus, BindingSummary, Condition } from '../crds/types.ts';
import { CONDITION } from '../crds/types.ts';
import { formatTimestamp } from '../runtime/time.ts';

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
      return Object.fromEntries(Object.entries(val as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => x.localeCompare(y)));
    }
    return val;
  });
}

/** The kstatus condition set for an outcome (Ready, plus Reconciling or Stalled while they are true, plus Compliant). */
export function conditionsFor(outcome:
  | { kind: 'done'; reason: string; message: string; compliant?: { ok: boolean | undefined; reason: string; message: string } }
  | { kind: 'progressing'; reason: string; message: string }
  | { kind: 'stalled'; reason: string; message: string }
  | { kind: 'retrying'; reason: string; message: string }): DesiredCondition[] {
  switch (outcome.kind) {
    case 'done': {
      const out: DesiredCondition[] = [{ type: CONDITION.ready, status: 'True', reason: outcome.reason, message: outcome.message }];
      if (outcome.compliant) {
        out.push({ type: CONDITION.compliant, status: outcome.compliant.ok === undefined ? 'Unknown' : outcome.compliant.ok ? 'True' : 'False', reason: outcome.compliant.reason, message: outcome.compliant.message });
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

