import { type BindingInfo, type BindingSpec, type BindingStatus, bindingKey } from '../crds/types.ts';
import type { ClusterStores, NamespaceInfo, NodeInfo, OwnerInfo, PodContainer, PodInfo } from '../kube/cluster.port.ts';
import { MemoryStore } from './memory-store.ts';

let seq = 0;
const uid = (): string => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;

export function hex64(seed: string): string {
  let h = '';
  for (let i = 0; h.length < 64; i++) h += ((seed.charCodeAt(i % seed.length) * 31 + i * 7) % 16).toString(16);
  return h;
}

export function aNamespace(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { key: name, resourceVersion: '1', uid: uid(), name, labels };
}

export function aNode(name: string): NodeInfo {
  return { key: name, resourceVersion: '1', uid: uid(), name, labels: { type: 'kwok' }, kubeletVersion: 'v1.36.3', architecture: 'amd64', operatingSystem: 'linux' };
}

export function aContainer(name: string, image: string, opts: { digest?: string; repo?: string; containerID?: string | null } = {}): PodContainer {
  const c: PodContainer = { name, kind: 'container', image };
  if (opts.digest) c.imageID = `${opts.repo ?? 'docker.io/library/nginx'}@${opts.digest}`;
  if (opts.containerID !== null) c.containerID = opts.containerID ?? `containerd://${hex64(name + image + seq++)}`;
  return c;
}

export function aPod(namespace: string, name: string, containers: PodContainer[], opts: { node?: string; owner?: { kind: string; name: string } } = {}): PodInfo {
  const p: PodInfo = { key: `${namespace}/${name}`, resourceVersion: '1', uid: uid(), name, namespace, labels: { app: name }, containers };
  if (opts.node) p.nodeName = opts.node;
  if (opts.owner) p.owner = { ...opts.owner, uid: uid() };
  return p;
}

export interface MemoryStores extends ClusterStores {
  pods: MemoryStore<PodInfo>;
  namespaces: MemoryStore<NamespaceInfo>;
  nodes: MemoryStore<NodeInfo>;
  replicaSets: MemoryStore<OwnerInfo>;
  jobs: MemoryStore<OwnerInfo>;
}

export function memoryStores(): MemoryStores {
  return {
    pods: new MemoryStore('pods'),
    namespaces: new MemoryStore('namespaces'),
    nodes: new MemoryStore('nodes'),
    replicaSets: new MemoryStore('replicasets'),
    jobs: new MemoryStore('jobs'),
  };
}

/** A namespaced AnchorePolicyBinding (or, without a namespace, a cluster one) as the stores project it. */
export function aBinding(name: string, namespace: string | undefined, spec: BindingSpec = {}, status: BindingStatus = {}): BindingInfo {
  const kind = namespace === undefined ? 'ClusterAnchorePolicyBinding' : 'AnchorePolicyBinding';
  const key = bindingKey(kind, name, namespace);
  return { key, resourceVersion: '1', kind, name, ...(namespace !== undefined ? { namespace } : {}), uid: uid(), generation: 1, spec, status };
}
