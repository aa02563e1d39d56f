/**
 * AdmissionReview (admission.k8s.io/v1) in and out, and the pod spec inside every kind the webhook is registered for.
 * Pure functions: the validator decides, the server speaks HTTP.
 */
import type { ContainerKind, RequestUser } from '../kube/cluster.port.ts';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: RequestUser;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  warnings?: string[];
}

/** One container image of the object under review. */
interface SpecContainer {
  name: string;
  kind: ContainerKind;
  image: string;
}

/** What admission needs of a Pod or a pod-template workload. */
export interface ReviewedWorkload {
  kind: string;
  apiVersion: string;
  namespace: string;
  /** metadata.name, or generateName followed by '*' while the apiserver has not named it yet. */
  name: string;
  /** Labels the pods will carry (a Pod's own, or the pod template's): what podSelector matches. */
  podLabels: Record<string, string>;
  /** Annotations of the object and of its pod template (the breakglass annotation may be on either). */
  annotations: Record<string, string>;
  /** The controlling owner (a ReplicaSet for its pods): Events about a generated object go there. */
  owner?: { apiVersion: string; kind: string; name: string; uid?: string };
  containers: SpecContainer[];
}

/** Kinds the webhook checks, and where each keeps its pod template. */
const TEMPLATE_PATH: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
  // Legacy (core v1) but still served, and it creates pods from its template like a ReplicaSet does.
  ReplicationController: ['spec', 'template'],
};

export const REVIEWED_KINDS: readonly string[] = Object.keys(TEMPLATE_PATH);
/** The API version of a reviewed kind outside apps/v1, for an object that does not carry one (Events must name it). */
const API_VERSION: Record<string, string> = { Pod: 'v1', ReplicationController: 'v1', Job: 'batch/v1', CronJob: 'batch/v1' };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strMap = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
};

/** Reads an AdmissionReview body; a message naming what is wrong when it is not one. */
export function parseReview(body: unknown): { ok: true; request: AdmissionRequest } | { ok: false; reason: string } {
  if (!isObj(body)) return { ok: false, reason: 'body is not a JSON object' };
  if (body['kind'] !== 'AdmissionReview') return { ok: false, reason: `kind is ${JSON.stringify(body['kind'])}, expected AdmissionReview` };
  const apiVersion = typeof body['apiVersion'] === 'string' ? body['apiVersion'] : '';
  if (apiVersion !== 'admission.k8s.io/v1') return { ok: false, reason: `apiVersion ${JSON.stringify(apiVersion)} is not supported (admission.k8s.io/v1 only)` };
  const req = body['request'];
  if (!isObj(req)) return { ok: false, reason: 'request is missing' };
  if (typeof req['uid'] !== 'string' || !req['uid']) return { ok: false, reason: 'request.uid is missing' };
  const kind = req['kind'];
  if (!isObj(kind) || typeof kind['kind'] !== 'string') return { ok: false, reason: 'request.kind is missing' };
  const op = req['operation'];
  if (op !== 'CREATE' && op !== 'UPDATE' && op !== 'DELETE' && op !== 'CONNECT') return { ok: false, reason: `request.operation ${JSON.stringify(op)} is unknown` };
  return { ok: true, request: req as unknown as AdmissionRequest };
}

/** The AdmissionReview answer; `uid` must echo the request's. */
export function reviewResponse(response: AdmissionResponse): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
}

function at(o: unknown, path: readonly string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isObj(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

/** The container lists of a pod spec, in the order their containers are reported. */
const CONTAINER_LISTS: ReadonlyArray<readonly [string, ContainerKind]> = [
  ['initContainers', 'init'],
  ['containers', 'container'],
  ['ephemeralContainers', 'ephemeral'],
];

function containersOf(podSpec: unknown): SpecContainer[] {
  const out: SpecContainer[] = [];
  for (const [field, kind] of CONTAINER_LISTS) {
    const list = isObj(podSpec) ? podSpec[field] : undefined;
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isObj(c)) continue;
      const image = typeof c['image'] === 'string' ? c['image'] : '';
      out.push({ name: typeof c['name'] === 'string' ? c['name'] : '', kind, image });
    }
  }
  return out;
}

/**
 * The workload inside a reviewed object: its pod labels, annotations and every container (init, regular and
 * ephemeral). undefined for kinds the webhook does not check.
 */
export function workloadOf(kind: string, object: unknown, namespace: string): ReviewedWorkload | undefined {
  const path = TEMPLATE_PATH[kind];
  if (!path || !isObj(object)) return undefined;
  const meta = isObj(object['metadata']) ? object['metadata'] : {};
  const template = path.length ? at(object, path) : object;
  const tmeta = isObj(template) && isObj(template['metadata']) ? template['metadata'] : {};
  const name = typeof meta['name'] === 'string' && meta['name'] ? meta['name'] : `${typeof meta['generateName'] === 'string' ? meta['generateName'] : ''}*`;
  const w: ReviewedWorkload = {
    kind,
    apiVersion: typeof object['apiVersion'] === 'string' ? object['apiVersion'] : (API_VERSION[kind] ?? 'apps/v1'),
    namespace: typeof meta['namespace'] === 'string' && meta['namespace'] ? meta['namespace'] : namespace,
    name,
    podLabels: strMap(tmeta['labels']),
    annotations: { ...strMap(tmeta['annotations']), ...strMap(meta['annotations']) },
    containers: containersOf(isObj(template) ? template['spec'] : undefined),
  };
  const owners = meta['ownerReferences'];
  if (Array.isArray(owners)) {
    const c = owners.find((o) => isObj(o) && o['controller'] === true) as Obj | undefined;
    if (c && typeof c['kind'] === 'string' && typeof c['name'] === 'string' && typeof c['apiVersion'] === 'string') {
      w.owner = { apiVersion: c['apiVersion'], kind: c['kind'], name: c['name'], ...(typeof c['uid'] === 'string' ? { uid: c['uid'] } : {}) };
    }
  }
  return w;
}

/**
 * The containers an UPDATE must be judged on: those whose image the update introduced. Changing a label or scaling a
 * workload that already runs a failing image is not blocked (an incident must be able to scale down); a new or
 * changed image is checked as on CREATE.
 */
export function newContainers(now: ReviewedWorkload, before: ReviewedWorkload | undefined): SpecContainer[] {
  if (!before) return now.containers;
  const had = new Set(before.containers.map((c) => c.image));
  return now.containers.filter((c) => !had.has(c.image));
}
