import type { PolicyRecord } from '../anchore/anchore.port.ts';
import { AnchoreError } from '../anchore/errors.ts';
import type { BindingInfo } from '../crds/types.ts';
import { CONDITION, EVENT_REASON, REASON } from '../crds/types.ts';
import type { ClusterStores, EventRecorder } from '../kube/cluster.port.ts';
import type { CompiledBinding } from '../model/binding-spec.ts';
import type { EvaluationCache } from '../model/evaluation-cache.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import { MISSING_ACCOUNT_RECHECK_MS, type MissingAccounts } from '../model/missing-accounts.ts';
import type { Scope } from '../model/scope.ts';
import { StallError, WaitError, errorMessage } from '../runtime/errors.ts';
import { type Selection, routedFrom } from './binding-select.ts';

/** How often a binding stalled on PolicyNotFound reads the account's policies again (one list call). */
export const POLICY_NOT_FOUND_RECHECK_MS = 15_000;
/** How soon a binding waiting on an unavailable Anchore tries again. */
export const ANCHORE_RETRY_MS = 10_000;

export interface PolicyDeps {
  stores: Pick<ClusterStores, 'namespaces'>;
  scope: Pick<Scope, 'accountRoute'>;
  images: Pick<ImageRegistry, 'ensureAccount'>;
  cache: Pick<EvaluationCache, 'policies'>;
  events: EventRecorder;
  missingAccounts?: MissingAccounts;
  /** Called with each account's active policy when it is read (the controller polls it for changes). */
  onActivePolicy?: (account: string, policyId: string) => void;
}

/**
 * Step 2 of a binding reconcile: every account the selection touches is loaded (what Anchore already holds must be
 * known before judging — after a restart or failover an image missing from an unloaded catalog is not an image waiting
 * for analysis), then, in evaluate mode, the policy each account evaluates against. Throws WaitError (Anchore away) or
 * StallError (account, policy or credentials wrong) with the reason the Ready condition shows.
 */
export async function resolvePolicies(deps: PolicyDeps, b: BindingInfo, c: CompiledBinding, sel: Selection, fresh: boolean): Promise<Map<string, PolicyRecord>> {
  for (const account of sel.accounts) {
    try {
      await deps.images.ensureAccount(account);
    } catch (err) {
      throw anchoreProblem(deps, err, account, routedFrom(b, sel, account));
    }
  }
  const policies = new Map<string, PolicyRecord>();
  if (c.mode === 'evaluate') {
    for (const account of sel.accounts) policies.set(account, await resolvePolicy(deps, b, account, fresh, routedFrom(b, sel, account)));
  }
  return policies;
}

/**
 * The policy the binding evaluates against in an account. Read fresh (not from the 60 s cache) when forced, when
 * a check just answered 404, and while the binding is stalled on PolicyNotFound: a deleted policy is reported at
 * once and a restored one picked up within POLICY_NOT_FOUND_RECHECK_MS.
 */
export async function resolvePolicy(deps: PolicyDeps, b: BindingInfo, account: string, fresh: boolean, routed?: string): Promise<PolicyRecord> {
  const ready = b.status.conditions?.find((x) => x.type === CONDITION.ready);
  const stalled = ready?.reason === REASON.policyNotFound && b.status.observedGeneration === b.generation;
  // Stalled bindings share a list up to 5 s old: fifty of them re-checking cost one call, not fifty.
  const maxAgeMs = fresh ? 0 : stalled ? 5_000 : 60_000;
  let list: PolicyRecord[];
  try {
    list = await deps.cache.policies(account, maxAgeMs);
  } catch (err) {
    throw anchoreProblem(deps, err, account, routed);
  }
  if (b.spec.policyId) {
    const p = list.find((x) => x.policy_id === b.spec.policyId);
    if (!p)
      throw new StallError(
        REASON.policyNotFound,
        `Anchore account "${account}" has no policy with id "${b.spec.policyId}"; rechecked every ${POLICY_NOT_FOUND_RECHECK_MS / 1000} s`,
        POLICY_NOT_FOUND_RECHECK_MS,
      );
    return p;
  }
  const active = list.find((x) => x.active);
  if (!active)
    throw new StallError(
      REASON.policyNotFound,
      `Anchore account "${account}" has no active policy; set spec.policyId or activate one (rechecked every ${POLICY_NOT_FOUND_RECHECK_MS / 1000} s)`,
      POLICY_NOT_FOUND_RECHECK_MS,
    );
  deps.onActivePolicy?.(account, active.policy_id);
  return active;
}

/**
 * What an Anchore failure means for a binding. `routed`: the namespace whose routing chose the account (no
 * spec.account), named in the message — and warned itself when its own label names a missing account.
 */
function anchoreProblem(deps: PolicyDeps, err: unknown, account: string, routed?: string): WaitError | StallError {
  if (err instanceof AnchoreError) {
    if (err.kind === 'unavailable') return new WaitError(REASON.anchoreUnavailable, `Anchore is unavailable: ${err.message}`, ANCHORE_RETRY_MS);
    if (err.kind === 'account-not-found' || err.kind === 'not-found') {
      if (err.kind === 'account-not-found') deps.missingAccounts?.missing(account, err.message);
      const why = routed === undefined ? '' : routeText(deps, routed);
      if (routed !== undefined && why) warnNamespace(deps, routed, account, why);
      return new StallError(
        REASON.accountNotFound,
        `Anchore account "${account}" does not exist${why ? ` (${why})` : ''}: ${err.message}; rechecked every ${MISSING_ACCOUNT_RECHECK_MS / 60_000} min and at once when the namespace's labels change`,
        MISSING_ACCOUNT_RECHECK_MS,
      );
    }
    if (err.kind === 'auth') return new StallError(REASON.authFailed, `Anchore refused the operator for account "${account}": ${err.message}`, 5 * 60_000);
  }
  return new WaitError(REASON.anchoreUnavailable, errorMessage(err), ANCHORE_RETRY_MS);
}

function routeText(deps: PolicyDeps, namespace: string): string {
  const r = deps.scope.accountRoute(deps.stores.namespaces.get(namespace), namespace);
  if (r.via === 'label') return `namespace ${namespace} names it in its label ${r.label}`;
  if (r.via === 'route') return `ACCOUNT_ROUTES sends namespace ${namespace} there`;
  return '';
}

/** A namespace whose own label names a missing account hears it too (a mistyped label is fixed there). */
function warnNamespace(deps: PolicyDeps, namespace: string, account: string, why: string): void {
  const ns = deps.stores.namespaces.get(namespace);
  if (!ns || !why.includes('label')) return;
  deps.events.event(
    { apiVersion: 'v1', kind: 'Namespace', name: namespace, ...(ns.uid ? { uid: ns.uid } : {}) },
    'Warning',
    EVENT_REASON.accountNotFound,
    'Route',
    `Anchore account "${account}" does not exist (${why}): its images are not evaluated, and its inventory goes to the default account until it exists or the label is fixed`,
  );
}
