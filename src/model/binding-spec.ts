/**
 * A binding's spec compiled once into the predicates both the binding controller and the admission webhook use: which
 * pods it selects (namespace + podSelector), which images it covers (include/exclude globs), and how it judges them.
 */
import type { PolicyCheck } from '../anchore/anchore.port.ts';
import type { BindingInfo, Enforcement, AdmissionFailurePolicy } from '../crds/types.ts';
import { API_VERSION } from '../crds/schema.ts';
import { REASON } from '../crds/types.ts';
import type { ObjectRef } from '../kube/cluster.port.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { compileGlobs } from '../discovery/glob.ts';
import { compileImageExclusions } from '../discovery/image-filter.ts';
import { compileLabelSelector } from '../discovery/label-selector.ts';
import { parseDuration } from '../runtime/time.ts';

export const DEFAULT_REEVALUATE_MS = 3_600_000;

export interface CompiledBinding {
  intervalMs: number;
  mode: 'evaluate' | 'analyze';
  failOn: 'stop' | 'warn';
  enforcement: Enforcement;
  failurePolicy: AdmissionFailurePolicy;
  /** Whether a pod with these labels in this namespace is selected. */
  selects(pod: { namespace: string; labels: Readonly<Record<string, string>> }): boolean;
  covers(image: ResolvedImage): boolean;
}

/** Why a spec cannot be used: a condition reason and a message naming the field. */
interface SpecProblem {
  reason: string;
  message: string;
}

/**
 * Compiles a binding's spec. `namespaceLabels` reads a namespace's labels (cluster bindings' namespaceSelector); the
 * answer of a namespace not in the cache is undefined, which no non-empty selector matches.
 */
export function compileBinding(
  b: BindingInfo,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): { ok: true; value: CompiledBinding } | { ok: false; problem: SpecProblem } {
  const spec = b.spec;
  const bad = (reason: string, message: string) => ({ ok: false as const, problem: { reason, message } });
  const podSel = compileLabelSelector(spec.podSelector);
  if (!podSel.ok) return bad(REASON.invalidSelector, `spec.podSelector: ${podSel.reason}`);
  const intervalMs = spec.reevaluateInterval ? parseDuration(spec.reevaluateInterval) : DEFAULT_REEVALUATE_MS;
  if (intervalMs === undefined || intervalMs < 60_000) {
    return bad(REASON.invalidSpec, `spec.reevaluateInterval "${spec.reevaluateInterval}" must be a duration of at least 1m`);
  }
  const include = spec.images?.include ?? [];
  const inc = compileGlobs(include);
  if (!inc.ok) return bad(REASON.invalidSpec, `spec.images.include: ${inc.reason}`);
  const exc = compileImageExclusions(spec.images?.exclude ?? []);
  if (!exc.ok) return bad(REASON.invalidSpec, `spec.images.exclude: ${exc.reason}`);
  let nsMatch: (ns: string) => boolean = (ns) => ns === b.namespace;
  if (b.kind === 'ClusterAnchorePolicyBinding') {
    const nsSel = compileLabelSelector(spec.namespaceSelector);
    if (!nsSel.ok) return bad(REASON.invalidSelector, `spec.namespaceSelector: ${nsSel.reason}`);
    const names = compileGlobs(spec.namespaces ?? []);
    if (!names.ok) return bad(REASON.invalidSpec, `spec.namespaces: ${names.reason}`);
    const hasNames = (spec.namespaces ?? []).length > 0;
    nsMatch = (ns) => (!hasNames || names.value(ns)) && nsSel.value(namespaceLabels(ns));
  }
  return {
    ok: true,
    value: {
      intervalMs,
      mode: spec.mode ?? 'evaluate',
      failOn: spec.failOn ?? 'stop',
      enforcement: spec.enforcement ?? 'audit',
      failurePolicy: spec.failurePolicy ?? 'open',
      selects: (pod) => nsMatch(pod.namespace) && podSel.value(pod.labels),
      covers: (img) => (include.length === 0 || inc.value(img.tag) || inc.value(img.repository)) && !exc.value(img),
    },
  };
}

/** An image's verdict from Anchore's check: stop (or status fail) fails; warn fails only with failOn warn. */
export function checkVerdict(check: Pick<PolicyCheck, 'final_action' | 'status'>, failOn: 'stop' | 'warn'): 'pass' | 'warn' | 'fail' {
  if (check.final_action === 'stop' || check.status === 'fail') return 'fail';
  if (check.final_action === 'warn') return failOn === 'warn' ? 'fail' : 'warn';
  return 'pass';
}

/** The binding as the object an Event is about. */
export function bindingRef(b: BindingInfo): ObjectRef {
  const ref: ObjectRef = { apiVersion: API_VERSION, kind: b.kind, name: b.name, uid: b.uid };
  if (b.namespace) ref.namespace = b.namespace;
  return ref;
}
