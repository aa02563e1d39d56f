/**
 * Who admission trusts, and with what: the controllers that create objects from templates that were already admitted
 * (self-healing), and the subjects a cluster admin allows to break glass. Both rest on what the apiserver
 * authenticated (the review's userInfo), never on anything in the object, which its author writes.
 */
import type { AccessChecker, RequestUser } from '../kube/cluster.port.ts';
import { raceDeadline } from '../runtime/deadline.ts';
import type { AdmissionRequest, ReviewedWorkload } from './review.ts';

/** The permission that allows breaking glass: `use` on `breakglass.anchore.io` in the namespace (RBAC, like PSP's `use`). */
export const BREAKGLASS_ACCESS = { group: 'anchore.io', resource: 'breakglass', verb: 'use' } as const;

/**
 * Whether the object is one a trusted controller creates for its controlling owner: a Pod of a ReplicaSet, Job,
 * StatefulSet, DaemonSet or ReplicationController, a ReplicaSet of a Deployment, a Job of a CronJob. Such an object
 * carries only the images of its owner's template, and that template was judged when it was created or changed (an
 * UPDATE that introduces an image is judged like a CREATE). Denying it would block scale-up, rollout restarts and the
 * replacement of evicted pods of workloads already admitted, which is self-inflicted outage, not protection.
 *
 * Borrowing is prevented by the identity: the apiserver authenticates the request's user, and only the controllers
 * (kube-controller-manager's service accounts, or what the admin adds) create such objects. A user who writes an
 * ownerReference to someone else's ReplicaSet on a Pod of their own is not that controller and is judged as usual.
 */
export function inheritsAdmission(req: AdmissionRequest, w: ReviewedWorkload, trusted: ReadonlySet<string>): boolean {
  const user = req.userInfo?.username;
  return req.operation === 'CREATE' && !req.subResource && user !== undefined && trusted.has(user) && w.owner !== undefined;
}

export type BreakglassDecision = { ok: true; reason: string } | { ok: false; message: string };

/**
 * Whether the request may break glass: a non-empty reason, and a user the cluster admin allowed (RBAC: `use` on
 * `breakglass.anchore.io` in the namespace), checked with a SubjectAccessReview per request (no cache, so removing a
 * RoleBinding takes effect at once). An apiserver that cannot answer in time is a refusal: breakglass never fails open.
 */
export async function decideBreakglass(access: AccessChecker, user: RequestUser | undefined, namespace: string, annotation: string, timeoutMs: number): Promise<BreakglassDecision> {
  const reason = annotation.trim();
  const name = user?.username ?? '(unknown user)';
  if (!reason) return { ok: false, message: `the anchore.io/admission-breakglass annotation needs a reason (why the check is skipped, for the audit trail); it is empty` };
  if (!user?.username) return { ok: false, message: 'breakglass needs an authenticated user, and the review names none' };
  const r = await raceDeadline(access.allowed(user, { ...BREAKGLASS_ACCESS, namespace }, timeoutMs), timeoutMs);
  if (!r.ok) {
    const why = r.timeout ? `no answer within ${timeoutMs} ms` : r.error instanceof Error ? r.error.message : String(r.error);
    return { ok: false, message: `could not check whether ${name} may break glass (${why}); breakglass is refused when it cannot be checked` };
  }
  const verdict = r.value;
  if (!verdict.allowed) {
    return {
      ok: false,
      message: `${name} may not break glass in namespace ${namespace}: it needs RBAC permission "use" on "breakglass.anchore.io" there (a cluster admin grants it, e.g. by binding the chart's ClusterRole <fullname>-breakglass)`,
    };
  }
  return { ok: true, reason };
}
