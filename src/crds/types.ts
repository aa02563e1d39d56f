/** TypeScript shapes of the operator's custom resources (the schema is in schema.ts). */
import type { LabelSelector } from '../discovery/label-selector.ts';

type BindingMode = 'evaluate' | 'analyze';
type FailOn = 'stop' | 'warn';
/** What the admission webhook does with a failing image: record it, warn the client, or reject the request. */
export type Enforcement = 'audit' | 'warn' | 'deny';
/** How admission treats an image it cannot judge: let it through, or count it as failing. */
export type AdmissionFailurePolicy = 'open' | 'closed';

export interface BindingSpec {
  policyId?: string;
  account?: string;
  podSelector?: LabelSelector;
  images?: { include?: string[]; exclude?: string[] };
  mode?: BindingMode;
  failOn?: FailOn;
  reevaluateInterval?: string;
  suspend?: boolean;
  enforcement?: Enforcement;
  failurePolicy?: AdmissionFailurePolicy;
  /** ClusterAnchorePolicyBinding only. */
  namespaceSelector?: LabelSelector;
  /** ClusterAnchorePolicyBinding only. */
  namespaces?: string[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ImageResult = 'pass' | 'fail' | 'warn' | 'pending' | 'error';

export interface BindingImageResult {
  image: string;
  digest?: string;
  result: ImageResult;
  finalAction?: string;
  reason?: string;
  findings?: number;
  vulnerabilities?: Record<string, number>;
  topFindings?: Array<{ gate: string; trigger: string; action: string; message: string }>;
  /** Known-exploited (CISA KEV) vulnerabilities of the image: how many, and the first ids (most severe first). */
  knownExploited?: { count: number; ids: string[] };
  /** The highest EPSS score among the image's vulnerabilities (0–1). */
  maxEpss?: number;
  workloads?: string[];
  message?: string;
}

export interface BindingSummary {
  workloads: number;
  images: number;
  passed: number;
  failed: number;
  warned: number;
  pending: number;
  errors: number;
  /** Images with known-exploited vulnerabilities (CISA KEV): failing and warned ones (evaluate), all (analyze). */
  knownExploited?: number;
}

export interface BindingStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  summary?: BindingSummary;
  policy?: { id: string; name: string; active: boolean };
  account?: string;
  /** ClusterAnchorePolicyBinding: the install (INSTALL_ID) that owns this status. */
  install?: string;
  lastEvaluationTime?: string;
  truncated?: boolean;
  results?: BindingImageResult[];
}

export type BindingKind = 'AnchorePolicyBinding' | 'ClusterAnchorePolicyBinding';

/**
 * A binding's cache and work-queue key, built and read only here: `apb/<namespace>/<name>` or `capb/<name>`, so
 * the two kinds never collide.
 */
export function bindingKey(kind: BindingKind, name: string, namespace?: string): string {
  return kind === 'AnchorePolicyBinding' ? `apb/${namespace ?? ''}/${name}` : `capb/${name}`;
}

/** The kind a binding key names. */
export function bindingKindOf(key: string): BindingKind {
  return key.startsWith('capb/') ? 'ClusterAnchorePolicyBinding' : 'AnchorePolicyBinding';
}

/** A binding as the operator caches it. */
export interface BindingInfo {
  /** bindingKey(kind, name, namespace). */
  key: string;
  resourceVersion: string;
  kind: BindingKind;
  name: string;
  /** Absent for the cluster-scoped kind. */
  namespace?: string;
  uid: string;
  generation: number;
  /** Value of the anchore.io/reevaluate annotation: changing it re-evaluates now, bypassing cached evaluations. */
  reevaluateToken?: string;
  /** Value of the anchore.io/install annotation: the install that must own this cluster binding. */
  installAnnotation?: string;
  spec: BindingSpec;
  status: BindingStatus;
}

/** Annotate a binding with a new value of this key to re-evaluate it now (nothing is deleted to rescan). */
export const REEVALUATE_ANNOTATION = 'anchore.io/reevaluate';

/**
 * On a Pod or pod template (or the workload itself): admit it whatever its images' verdicts. The value says why; every
 * use is audited (an Event and anchore_operator_admission_breakglass_total).
 */
export const BREAKGLASS_ANNOTATION = 'anchore.io/admission-breakglass';

/** Names the install (its INSTALL_ID) that owns a ClusterAnchorePolicyBinding; set it to hand one over. */
export const INSTALL_ANNOTATION = 'anchore.io/install';

/** Condition types and reasons: constants in one place (docs/api.md lists them). */
export const CONDITION = { ready: 'Ready', reconciling: 'Reconciling', stalled: 'Stalled', compliant: 'Compliant' } as const;

export const REASON = {
  evaluated: 'Evaluated',
  analyzed: 'Analyzed',
  analysisPending: 'AnalysisPending',
  /** Anchore answered 404 for an image it had: it is being registered again. */
  imageNotInAnchore: 'ImageNotInAnchore',
  policyNotFound: 'PolicyNotFound',
  accountNotFound: 'AccountNotFound',
  authFailed: 'AuthFailed',
  anchoreUnavailable: 'AnchoreUnavailable',
  invalidSelector: 'InvalidSelector',
  invalidSpec: 'InvalidSpec',
  suspended: 'Suspended',
  noImages: 'NoMatchingImages',
  policyPassed: 'PolicyPassed',
  policyFailed: 'PolicyFailed',
  evaluationErrors: 'EvaluationErrors',
  /** results[].reason of an image Anchore could not analyse. */
  analysisFailed: 'AnalysisFailed',
  /** results[].reason of an image whose policy check failed (the message says why). */
  evaluationError: 'EvaluationError',
  /** Work-queue reason (never written to status): another install wrote a cluster binding while this one claimed it. */
  claimConflict: 'ClaimConflict',
} as const;

/** Reasons of the Kubernetes Events the operator writes besides condition changes (docs/api.md, Events). */
export const EVENT_REASON = {
  /** On a workload running an image that fails a binding's policy. */
  policyFailed: 'AnchorePolicyFailed',
  /** On a binding whose evaluation finds many workloads newly failing. */
  workloadsFailing: 'WorkloadsFailingPolicy',
  /** On a namespace routed to an Anchore account that does not exist. */
  accountNotFound: 'AnchoreAccountNotFound',
  /** On a binding, by its enforcement, when admission meets a failing image. */
  admissionAudit: 'AdmissionAudit',
  admissionWarned: 'AdmissionWarned',
  admissionDenied: 'AdmissionDenied',
  /** On the reviewed object admitted unchecked by the breakglass annotation. */
  admissionBreakglass: 'AdmissionBreakglass',
  /** On a binding whose status write the apiserver refused as invalid (422): the status cannot be shown. */
  statusRejected: 'StatusRejected',
} as const;
