import type { KubernetesInventory } from '../anchore/anchore.port.ts';
import type { ClusterStores, NodeInfo, PodInfo } from '../kube/cluster.port.ts';
import type { Scope } from '../model/scope.ts';
import { SLICE, yieldToLoop } from '../runtime/cooperative.ts';
import { formatTimestamp } from '../runtime/time.ts';

type Ns = KubernetesInventory['namespaces'][number];
type Pod = KubernetesInventory['pods'][number];
type Container = KubernetesInventory['containers'][number];
type Node = KubernetesInventory['nodes'][number];

/** One namespace's share of a report: the unit batches are split on. */
interface Fragment {
  namespace: Ns;
  pods: Pod[];
  containers: Container[];
  nodeNames: Set<string>;
  bytes: number;
}

/**
 * Builds the runtime inventory of the namespaces that route to `account`, with k8s-inventory's referential integrity:
 * pods only with their namespace, containers only with their pod and a container id, node_uid only when the node is
 * in the report. Images the scope excludes or cannot resolve are left out. Split into batches of at most
 * `batchBytes` (0 = one batch), on namespace boundaries; each batch carries only the nodes it references. Pods are
 * gone through in slices with the event loop free between them.
 */
export async function buildInventory(
  account: string,
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'nodes'>,
  scope: Scope,
  clusterName: string,
  now: Date,
  batchBytes: number,
): Promise<KubernetesInventory[]> {
  const fragments = new Map<string, Fragment>();
  for (const ns of stores.namespaces.list()) {
    if (!scope.includesNamespace(ns) || scope.accountFor(ns, ns.name) !== account || !ns.uid) continue;
    const namespace: Ns = { uid: ns.uid, name: ns.name, labels: ns.labels };
    fragments.set(ns.name, { namespace, pods: [], containers: [], nodeNames: new Set(), bytes: 0 });
  }
  let n = 0;
  for (const p of [...stores.pods.list()]) {
    if (++n % SLICE === 0) await yieldToLoop();
    const f = fragments.get(p.namespace);
    if (!f || !p.uid) continue;
    addPod(f, p, stores.nodes, scope);
  }
  const timestamp = formatTimestamp(now);
  const nodeOf = (name: string): Node | undefined => {
    const n = stores.nodes.get(name);
    return n ? toNode(n) : undefined;
  };
  const assemble = (frags: Fragment[]): KubernetesInventory => {
    const names = new Set<string>();
    for (const f of frags) for (const n of f.nodeNames) names.add(n);
    const nodes: Node[] = [];
    for (const n of names) {
      const node = nodeOf(n);
      if (node) nodes.push(node);
    }
    return {
      cluster_name: clusterName,
      timestamp,
      namespaces: frags.map((f) => f.namespace),
      nodes,
      pods: frags.flatMap((f) => f.pods),
      containers: frags.flatMap((f) => f.containers),
    };
  };
  const all = [...fragments.values()].sort((a, b) => a.namespace.name.localeCompare(b.namespace.name));
  if (batchBytes <= 0 || all.length <= 1) return [assemble(all)];
  for (const f of all) f.bytes = JSON.stringify(f.namespace).length + JSON.stringify(f.pods).length + JSON.stringify(f.containers).length + f.nodeNames.size * 400;
  const batches: KubernetesInventory[] = [];
  let current: Fragment[] = [];
  let size = 256;
  for (const f of all) {
    if (current.length && size + f.bytes > batchBytes) {
      batches.push(assemble(current));
      current = [];
      size = 256;
    }
    current.push(f);
    size += f.bytes;
  }
  if (current.length) batches.push(assemble(current));
  return batches;
}

function addPod(f: Fragment, p: PodInfo, nodes: ClusterStores['nodes'], scope: Scope): void {
  const pod: Pod = { uid: p.uid, name: p.name, namespace_uid: f.namespace.uid, labels: p.labels };
  const node = p.nodeName ? nodes.get(p.nodeName) : undefined;
  if (node?.uid) {
    pod.node_uid = node.uid;
    f.nodeNames.add(node.name);
  }
  f.pods.push(pod);
  for (const c of p.containers) {
    if (!c.containerID) continue;
    const r = scope.resolveImage(c);
    if (r.kind !== 'image') continue;
    const container: Container = { id: c.containerID, name: c.name, image_tag: r.image.tag, pod_uid: p.uid };
    if (r.image.digest) container.image_digest = r.image.digest;
    f.containers.push(container);
  }
}

function toNode(n: NodeInfo): Node {
  const out: Node = { uid: n.uid, name: n.name, labels: n.labels };
  if (n.kernelVersion) out.kernel_version = n.kernelVersion;
  if (n.kubeletVersion) {
    out.kubelet_version = n.kubeletVersion;
    out.kubernetes_version = n.kubeletVersion;
  }
  if (n.kubeProxyVersion) out.kube_proxy_version = n.kubeProxyVersion;
  if (n.containerRuntimeVersion) out.container_runtime_version = n.containerRuntimeVersion;
  if (n.operatingSystem) out.operating_system = n.operatingSystem;
  if (n.architecture) out.arch = n.architecture;
  return out;
}
