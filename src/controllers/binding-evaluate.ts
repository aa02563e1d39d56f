import type { PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingImageResult, BindingInfo, ImageResult } from '../crds/types.ts';
import { REASON } from '../crds/types.ts';
import { type CompiledBinding, checkVerdict } from '../model/binding-spec.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { VulnerabilitySummary } from '../model/vulnerability-summary.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import { SLICE, yieldToLoop } from '../runtime/cooperative.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { ImageGroup } from './binding-select.ts';

/** The known-exploited and EPSS part of an image result (nothing when there is neither). */
export function exploitation(v: VulnerabilitySummary): Pick<BindingImageResult, 'knownExploited' | 'maxEpss'> {
  const out: Pick<BindingImageResult, 'knownExploited' | 'maxEpss'> = {};
  if ((v.knownExploitedCount ?? 0) > 0) out.knownExploited = { count: v.knownExploitedCount ?? 0, ids: v.knownExploited ?? [] };
  if (v.maxEpss !== undefined) out.maxEpss = v.maxEpss.score;
  return out;
}

export interface EvaluateDeps {
  images: Pick<ImageRegistry, 'catalog' | 'reRegistering' | 'recheck'>;
  cache: Pick<EvaluationCache, 'check' | 'vulnerabilities'>;
}

/** Step 3's outcome: one result per group (same order), and what went wrong on the way. */
export interface Evaluation {
  results: BindingImageResult[];
  /** Set when Anchore was unavailable for some image (its previous result is shown). */
  unavailable?: string;
  /** Accounts whose policy Anchore answered 404 for (perhaps deleted): the policy step runs again, fresh. */
  policyGone: Set<string>;
}

/**
 * Step 3 of a binding reconcile: judges each selected image. Pending analysis is waiting, not failure; an image
 * Anchore no longer holds is being registered again; evaluations come from the shared cache (`maxAgeMs` 0 forces
 * fresh ones). Runs in slices with the event loop free between them: thousands of cached results would otherwise be
 * one long task that holds up everything else (image registration above all).
 */
export async function evaluateImages(
  deps: EvaluateDeps,
  b: BindingInfo,
  c: CompiledBinding,
  groups: readonly ImageGroup[],
  policies: ReadonlyMap<string, PolicyRecord>,
  maxAgeMs: number,
): Promise<Evaluation> {
  const previous = new Map((b.status.results ?? []).map((r) => [`${r.image}@${r.digest ?? ''}`, r]));
  const out: Evaluation = { results: [], policyGone: new Set() };
  const evaluate = async (g: ImageGroup): Promise<BindingImageResult> => {
    // Every workload, sorted: the status write bounds the list to the schema, saying how many more (boundStatus).
    const base: BindingImageResult = { image: g.image.tag, result: 'pending', workloads: [...g.workloads.keys()].sort() };
    if (g.image.digest) base.digest = g.image.digest;
    const entry = deps.images.catalog(g.key);
    if (entry && !base.digest) base.digest = entry.digest;
    if (!entry && deps.images.reRegistering(g.key)) return { ...base, reason: REASON.imageNotInAnchore, message: 'Anchore no longer holds this image; registering it again' };
    if (!entry) return { ...base, reason: REASON.analysisPending, message: 'waiting for the image to be registered with Anchore' };
    if (deps.images.reRegistering(g.key) && entry.analysis !== 'analyzed')
      return { ...base, reason: REASON.imageNotInAnchore, message: `Anchore no longer held this image; registered again, analysis ${entry.analysis}` };
    if (entry.analysis === 'analysis_failed') return { ...base, result: 'error', reason: REASON.analysisFailed, message: 'Anchore failed to analyse this image' };
    if (entry.analysis !== 'analyzed') return { ...base, reason: REASON.analysisPending, message: `analysis ${entry.analysis}` };
    try {
      if (c.mode === 'analyze') {
        const summary = await deps.cache.vulnerabilities(g.account, entry.digest, maxAgeMs);
        const counts: Record<string, number> = {};
        let total = 0;
        for (const [sev, n] of Object.entries(summary.bySeverity)) {
          if (n > 0) counts[sev] = n;
          total += n;
        }
        return { ...base, result: 'pass', reason: REASON.analyzed, findings: total, vulnerabilities: counts, ...exploitation(summary) };
      }
      const policy = policies.get(g.account) as PolicyRecord;
      const check = await deps.cache.check(g.account, policy.policy_id, entry.digest, g.image.tag, maxAgeMs);
      const result: ImageResult = checkVerdict(check, c.failOn);
      const r: BindingImageResult = { ...base, result, finalAction: check.final_action, reason: check.final_action_reason || 'policy_evaluation', findings: check.number_of_findings };
      // The evaluation cache keeps only the first findings; the status write bounds them (and messages) to the schema.
      if (check.findings.length) r.topFindings = check.findings.map((f) => ({ gate: f.gate, trigger: f.trigger, action: f.action, message: f.message }));
      // A failing or warned image says whether what it runs is known to be exploited (one cached vulnerability read).
      // Best effort: the verdict stands without it, and the next evaluation tries again.
      if (result === 'fail' || result === 'warn') {
        try {
          Object.assign(r, exploitation(await deps.cache.vulnerabilities(g.account, entry.digest, maxAgeMs)));
        } catch {
          // Left out of this evaluation.
        }
      }
      return r;
    } catch (err) {
      if (err instanceof AnchoreError && err.kind === 'unavailable') {
        out.unavailable = err.message;
        // Old results stay visible while Anchore is away.
        return previous.get(`${base.image}@${base.digest ?? ''}`) ?? { ...base, message: 'Anchore unavailable; not evaluated yet' };
      }
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        // A 404 names no culprit (the image, its analysis, the policy): the image is read again, the policy list too.
        deps.images.recheck(g.key);
        if (c.mode === 'evaluate') out.policyGone.add(g.account);
        return { ...base, reason: REASON.analysisPending, message: 'Anchore has no evaluation for this image; checking that it still holds the image' };
      }
      return { ...base, result: 'error', reason: REASON.evaluationError, message: errorMessage(err) };
    }
  };
  for (let i = 0; i < groups.length; i += SLICE) {
    if (i > 0) await yieldToLoop();
    out.results.push(...(await Promise.all(groups.slice(i, i + SLICE).map(evaluate))));
  }
  return out;
}
