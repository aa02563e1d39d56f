import { type BindingInfo, type BindingKind, INSTALL_ANNOTATION, REEVALUATE_ANNOTATION, bindingKey } from '../crds/types.ts';
import { intern } from '../runtime/intern.ts';
import type { ContainerKind, NamespaceInfo, NodeInfo, OwnerInfo, OwnerRef, PodContainer, PodInfo } from './cluster.port.ts';

/*
 * Slim projections: the cache keeps only what the operator uses. A full Pod with managedFields is often 5–20 KiB;
 * these are a few hundred bytes, which is what keeps 10,000 pods within the memory budget. Values that repeat across
 * objects (namespace, image references, node and owner names, label keys and values) are interned.
 */

type Raw = Record<string, unknown>;

const obj = (v: unknown): Raw => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {});
const arr = (v: unknown): Raw[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as Raw[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function labelsOf(meta: Raw): Record<string, string> {
  const l = meta['labels'];
  if (!l || typeof l !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(l as Raw)) if (typeof v === 'string') out[intern(k)] = intern(v);
  return out;
}

function controllerOf(meta: Raw): OwnerRef | undefined {
  for (const ref of arr(meta['ownerReferences'])) {
    if (ref['controller'] === true) {
      const kind = str(ref['kind']);
      const name = str(ref['name']);
      if (kind && name) return { kind: intern(kind), name: intern(name), uid: intern(str(ref['uid']) ?? '') };
    }
  }
  return undefined;
}

function base(raw: unknown): { meta: Raw; key: string; name: string; namespace: string | undefined; uid: string; rv: string } | undefined {
  const meta = obj(obj(raw)['metadata']);
  const name = str(meta['name']);
  const uid = str(meta['uid']);
  if (!name || !uid) return undefined;
  const namespace = intern(str(meta['namespace']));
  return { meta, name, namespace, uid, rv: str(meta['resourceVersion']) ?? '', key: namespace ? `${namespace}/${name}` : name };
}

/**
 * Pods count only while Running (as k8s-inventory's ignore-not-running): a pod that left Running projects to
 * undefined, which the reflector treats as a deletion.
 */
export function projectPod(raw: unknown, opts: { runningOnly: boolean } = { runningOnly: true }): PodInfo | undefined {
  const b = base(raw);
  if (!b || !b.namespace) return undefined;
  const spec = obj(obj(raw)['spec']);
  const status = obj(obj(raw)['status']);
  if (opts.runningOnly && status['phase'] !== 'Running') return undefined;
  const containers: PodContainer[] = [];
  const add = (specList: unknown, statusList: unknown, kind: ContainerKind): void => {
    const statuses = new Map<string, Raw>();
    for (const s of arr(statusList)) {
      const n = str(s['name']);
      if (n) statuses.set(n, s);
    }
    for (const c of arr(specList)) {
      const name = str(c['name']);
      const image = str(c['image']);
      if (!name || !image) continue;
      const s = statuses.get(name);
      const pc: PodContainer = { name: intern(name), kind, image: intern(image) };
      const imageID = str(s?.['imageID']);
      if (imageID) pc.imageID = intern(imageID);
      const statusImage = str(s?.['image']);
      if (statusImage) pc.statusImage = intern(statusImage);
      const containerID = str(s?.['containerID']);
      if (containerID) pc.containerID = containerID;
      containers.push(pc);
    }
  };
  add(spec['initContainers'], status['initContainerStatuses'], 'init');
  add(spec['containers'], status['containerStatuses'], 'container');
  add(spec['ephemeralContainers'], status['ephemeralContainerStatuses'], 'ephemeral');
  const pod: PodInfo = {
    key: b.key,
    resourceVersion: b.rv,
    uid: b.uid,
    name: b.name,
    namespace: b.namespace,
    labels: labelsOf(b.meta),
    containers,
  };
  const nodeName = str(spec['nodeName']);
  if (nodeName) pod.nodeName = intern(nodeName);
  const owner = controllerOf(b.meta);
  if (owner) pod.owner = owner;
  return pod;
}

export function projectNamespace(raw: unknown): NamespaceInfo | undefined {
  const b = base(raw);
  if (!b) return undefined;
  return { key: b.key, resourceVersion: b.rv, uid: b.uid, name: b.name, labels: labelsOf(b.meta) };
}

export function projectNode(raw: unknown): NodeInfo | undefined {
  const b = base(raw);
  if (!b) return undefined;
  const info = obj(obj(obj(raw)['status'])['nodeInfo']);
  const n: NodeInfo = { key: b.key, resourceVersion: b.rv, uid: b.uid, name: b.name, labels: labelsOf(b.meta) };
  const set = (k: keyof NodeInfo, v: unknown): void => {
    const s = str(v);
    if (s) (n as unknown as Record<string, string>)[k] = s;
  };
  set('kernelVersion', info['kernelVersion']);
  set('kubeletVersion', info['kubeletVersion']);
  set('kubeProxyVersion', info['kubeProxyVersion']);
  set('containerRuntimeVersion', info['containerRuntimeVersion']);
  set('operatingSystem', info['operatingSystem']);
  set('architecture', info['architecture']);
  return n;
}

/** ReplicaSets and Jobs (metadata only). */
export function projectOwner(raw: unknown): OwnerInfo | undefined {
  const b = base(raw);
  if (!b || !b.namespace) return undefined;
  // Pods name their owner by uid and name: interned, both share one copy with this projection.
  const o: OwnerInfo = { key: b.key, resourceVersion: b.rv, uid: intern(b.uid), name: intern(b.name), namespace: b.namespace };
  const owner = controllerOf(b.meta);
  if (owner) o.owner = owner;
  return o;
}

/** (Cluster)AnchorePolicyBinding: spec and status are kept whole (they are small and bounded by the schema). */
export function projectBinding(kind: BindingKind) {
  return (raw: unknown): BindingInfo | undefined => {
    const b = base(raw);
    if (!b) return undefined;
    if (kind === 'AnchorePolicyBinding' && !b.namespace) return undefined;
    const o = obj(raw);
    const generation = typeof b.meta['generation'] === 'number' ? b.meta['generation'] : 0;
    const info: BindingInfo = {
      key: bindingKey(kind, b.name, b.namespace),
      resourceVersion: b.rv,
      kind,
      name: b.name,
      uid: b.uid,
      generation,
      spec: obj(o['spec']),
      status: obj(o['status']),
    };
    if (b.namespace) info.namespace = b.namespace;
    const token = str(obj(b.meta['annotations'])[REEVALUATE_ANNOTATION]);
    if (token) info.reevaluateToken = token;
    const install = str(obj(b.meta['annotations'])[INSTALL_ANNOTATION]);
    if (install) info.installAnnotation = install;
    return info;
  };
}
