import type { BindingInfo, BindingStatus } from '../crds/types.ts';

/** The cluster port's typed errors: callers decide from `kind` (not-found, conflict, invalid, …), never from status codes. */
export { isKubeError, KubeError, type KubeErrorKind } from './errors.ts';

/**
 * What controllers may know about the cluster: slim, read-only projections of the objects the operator watches, and
 * stores to read them from. Controllers depend on this file only, never on the client or the reflector.
 */
export interface OwnerRef {
  kind: string;
  name: string;
  uid: string;
}

export type ContainerKind = 'container' | 'init' | 'ephemeral';

export interface PodContainer {
  name: string;
  kind: ContainerKind;
  /** Image as written in the pod spec (the tag the user asked for). */
  image: string;
  /** containerStatuses[].imageID: what actually runs (registry digest, or a bare config id). */
  imageID?: string;
  /** containerStatuses[].image: the runtime's view of the image reference. */
  statusImage?: string;
  /** containerStatuses[].containerID, e.g. containerd://…; absent until the container was created. */
  containerID?: string;
}

export interface PodInfo {
  key: string;
  resourceVersion: string;
  uid: string;
  name: string;
  namespace: string;
  nodeName?: string;
  labels: Record<string, string>;
  /** The controlling owner, if any. */
  owner?: OwnerRef;
  containers: PodContainer[];
}

export interface NamespaceInfo {
  key: string;
  resourceVersion: string;
  uid: string;
  name: string;
  labels: Record<string, string>;
}

export interface NodeInfo {
  key: string;
  resourceVersion: string;
  uid: string;
  name: string;
  labels: Record<string, string>;
  kernelVersion?: string;
  kubeletVersion?: string;
  kubeProxyVersion?: string;
  containerRuntimeVersion?: string;
  operatingSystem?: string;
  architecture?: string;
}

/** A ReplicaSet or Job, kept only to walk up to the top-level workload. */
export interface OwnerInfo {
  key: string;
  resourceVersion: string;
  uid: string;
  name: string;
  namespace: string;
  owner?: OwnerRef;
}

export interface StoreHandlers<T> {
  add?(obj: T): void;
  /** Only when the projection changed (`changed()`): an update of the resourceVersion alone is not delivered. */
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

/** A read-only cache of one resource, kept current by a watch. */
export interface Store<T> {
  readonly resource: string;
  get(key: string): T | undefined;
  list(): IterableIterator<T>;
  readonly size: number;
  readonly hasSynced: boolean;
  on(handlers: StoreHandlers<T>): void;
}

export interface ClusterStores {
  pods: Store<PodInfo>;
  namespaces: Store<NamespaceInfo>;
  nodes: Store<NodeInfo>;
  replicaSets: Store<OwnerInfo>;
  jobs: Store<OwnerInfo>;
}

/** The top-level workload a pod belongs to (Deployment, StatefulSet, DaemonSet, CronJob, Job, bare Pod, …). */
export interface WorkloadRef {
  kind: string;
  name: string;
  namespace: string;
}

/**
 * Whether an update changed what the operator sees of an object (its projection), not only its resourceVersion: the
 * one "has it changed" rule, applied once by the stores before any update handler runs, so status-only churn
 * (kubelet heartbeats, unrelated fields) wakes no controller.
 */
export function changed<T extends { resourceVersion: string }>(a: T, b: T): boolean {
  return JSON.stringify({ ...a, resourceVersion: '' }) !== JSON.stringify({ ...b, resourceVersion: '' });
}

export function workloadKey(w: WorkloadRef): string {
  return `${w.namespace}/${w.kind}/${w.name}`;
}

/**
 * Walks a pod's controller chain: ReplicaSet→Deployment, Job→CronJob; other owners (StatefulSet, DaemonSet, custom
 * kinds) are top-level themselves; a pod without a controller is its own workload. An owner missing from the cache
 * (not yet seen, or deleted) stops the walk at what is known.
 */
export function resolveWorkload(pod: PodInfo, stores: Pick<ClusterStores, 'replicaSets' | 'jobs'>): WorkloadRef {
  const ns = pod.namespace;
  const owner = pod.owner;
  if (!owner) return { kind: 'Pod', name: pod.name, namespace: ns };
  if (owner.kind === 'ReplicaSet') {
    const rs = stores.replicaSets.get(`${ns}/${owner.name}`);
    if (rs?.owner) return { kind: rs.owner.kind, name: rs.owner.name, namespace: ns };
  } else if (owner.kind === 'Job') {
    const job = stores.jobs.get(`${ns}/${owner.name}`);
    if (job?.owner) return { kind: job.owner.kind, name: job.owner.name, namespace: ns };
  }
  return { kind: owner.kind, name: owner.name, namespace: ns };
}

/** An object an Event is about. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** The identity the apiserver authenticated for a request (admission.k8s.io/v1 UserInfo). */
export interface RequestUser {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** What a resource permission check names (SubjectAccessReview resourceAttributes). */
export interface ResourceAccess {
  group: string;
  resource: string;
  verb: string;
  namespace?: string;
}

export interface AccessChecker {
  /** Whether the user may do this (a SubjectAccessReview, uncached: a removed RoleBinding counts at once). Throws when the apiserver cannot say. */
  allowed(user: RequestUser, access: ResourceAccess, timeoutMs: number): Promise<{ allowed: boolean; reason?: string }>;
}

export interface EventRecorder {
  /** Fire-and-forget; rate-limited per (object, reason); `related`: a second object involved (the binding). Never throws. */
  event(regarding: ObjectRef, type: 'Normal' | 'Warning', reason: string, action: string, note: string, related?: ObjectRef): void;
}

export interface BindingStatusWriter {
  /**
   * Writes `status` to the binding's status subresource. Throws a KubeError on API errors (`not-found` when the binding
   * is gone; `conflict` when `ifResourceVersion` is given and the binding changed since: a claim must not overwrite
   * another's; `invalid` when the apiserver refuses the status).
   */
  patchStatus(binding: BindingInfo, status: BindingStatus, opts?: { ifResourceVersion?: string }): Promise<void>;
}

const WORKLOAD_API: Record<string, string> = {
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
  Pod: 'v1',
};

/** An ObjectRef for a built-in workload kind; undefined for kinds whose API version we cannot know. */
export function workloadObjectRef(w: WorkloadRef): ObjectRef | undefined {
  const apiVersion = WORKLOAD_API[w.kind];
  return apiVersion ? { apiVersion, kind: w.kind, name: w.name, namespace: w.namespace } : undefined;
}
