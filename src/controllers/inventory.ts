import { createHash } from 'node:crypto';
import type { KubernetesInventory } from '../anchore/anchore.port.ts';
import type { ClusterStores, NodeInfo, PodInfo } from '../kube/cluster.port.ts';
import type { Scope } from '../model/scope.ts';
import { SLICE, yieldToLoop } from '../runtime/cooperative.ts';
import { formatTimestamp } from '../runtime/time.ts';

type Ns = KubernetesInventory['namespaces'][number];
type Pod = KubernetesInventory['pods'][number];
type Container = KubernetesInventory['containers'][number];
type Node = KubernetesInventory['nodes'][number];

/** One pod with its containers and the node it runs on (when that node is in the report). */
interface PodEntry {
  pod: Pod;
  containers: Container[];
  nodeName?: string;
  /** Bytes of the pod and its containers in the report, with and without labels (set by {@link measureInventory}). */
  bytes?: { full: number; minimal: number };
}

/**
 * One namespace's share of a report. Anchore replaces per namespace (with `inventory_ingest_overwrite` on, every
 * namespace present in a report replaces that namespace's stored inventory), so a report carries whole shares only;
 * a share with only some of its pods exists only in a {@link InventoryBatch.partial} batch.
 */
export interface NamespaceShare {
  namespace: Ns;
  pods: PodEntry[];
  /** Bytes of the whole share, with and without labels (set by {@link measureInventory}). */
  bytes?: { full: number; minimal: number };
  /** No longer routes to the account: sent with no pods, so Anchore clears what it holds of it (see {@link CollectScope.sent}). */
  cleared?: boolean;
}

/** Everything one account's report holds, before it is split into batches. */
export interface InventorySnapshot {
  clusterName: string;
  timestamp: string;
  /** Sorted by namespace name. */
  shares: NamespaceShare[];
  /** The nodes the pods run on, by name. */
  nodes: Map<string, Node>;
  /** Bytes of one node with and without labels (set by {@link measureInventory}). */
  nodeBytes?: Map<string, { full: number; minimal: number }>;
  /** Bytes of a report with nothing in it (set by {@link measureInventory}). */
  emptyBytes?: number;
}

/** What one POST carries. */
export interface InventoryBatch {
  shares: NamespaceShare[];
  /**
   * The smallest complete form: every pod and container, but no labels (namespace, pod and node labels are optional
   * in the spec, and Anchore does not need them for the container ↔ image inventory). Used for a namespace too
   * large for the byte limit on its own.
   */
  minimal: boolean;
  /**
   * Only some pods of its one namespace. Never made unless splitting namespaces is allowed (a deployment with
   * `inventory_ingest_overwrite` off): where Anchore overwrites per namespace, each part would erase the others.
   */
  partial: boolean;
}

/** Which part of an account's inventory {@link collectInventory} gathers. */
export interface CollectScope {
  /** Only these namespaces (a delta report); every namespace that routes to the account when absent (a full report). */
  only?: ReadonlySet<string>;
  /** The pods of one namespace (an index kept by the caller): with `only`, no pass over every pod of the cluster. */
  podsOf?: (namespace: string) => Iterable<PodInfo>;
  /**
   * Namespaces of the account Anchore last received from this operator, by name, with their uid. Those that no longer
   * route to the account (deleted, moved to another account, out of scope) are added as empty shares: where Anchore
   * overwrites per namespace, a namespace present with no pods is cleared.
   */
  sent?: ReadonlyMap<string, { uid: string }>;
}

/**
 * Gathers the runtime inventory of the namespaces that route to `account`, with k8s-inventory's referential
 * integrity: pods only with their namespace, containers only with their pod and a container id, node_uid only when
 * the node is in the report. Images the scope excludes or cannot resolve are left out. Pods are gone through in
 * slices with the event loop free between them. `part` limits it to some namespaces and adds the empty shares that
 * clear namespaces gone from the account ({@link CollectScope}).
 */
export async function collectInventory(
  account: string,
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'nodes'>,
  scope: Scope,
  clusterName: string,
  now: Date,
  part: CollectScope = {},
): Promise<InventorySnapshot> {
  const { only, podsOf, sent } = part;
  const shares = new Map<string, NamespaceShare>();
  for (const ns of stores.namespaces.list()) {
    if (only !== undefined && !only.has(ns.name)) continue;
    if (!scope.includesNamespace(ns) || scope.accountFor(ns, ns.name) !== account || !ns.uid) continue;
    shares.set(ns.name, { namespace: { uid: ns.uid, name: ns.name, labels: ns.labels }, pods: [] });
  }
  const nodes = new Map<string, Node>();
  let n = 0;
  const pods: Iterable<PodInfo> = only !== undefined && podsOf !== undefined ? [...shares.keys()].flatMap((name) => [...podsOf(name)]) : [...stores.pods.list()];
  for (const p of pods) {
    if (++n % SLICE === 0) await yieldToLoop();
    const share = shares.get(p.namespace);
    if (!share || !p.uid) continue;
    share.pods.push(podEntry(share, p, stores.nodes, nodes, scope));
  }
  for (const [name, { uid }] of sent ?? []) {
    if ((only === undefined || only.has(name)) && !shares.has(name)) shares.set(name, { namespace: { uid, name }, pods: [], cleared: true });
  }
  return {
    clusterName,
    timestamp: formatTimestamp(now),
    shares: [...shares.values()].sort((a, b) => a.namespace.name.localeCompare(b.namespace.name)),
    nodes,
  };
}

/**
 * A digest of what a share says to Anchore (its namespace, pods, containers and their nodes' uids), independent of
 * the order pods were found in: equal fingerprints mean the same namespace report, so an unchanged namespace is not
 * sent again.
 */
export async function fingerprintShare(share: NamespaceShare): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify(share.namespace));
  const pods = [...share.pods].sort((a, b) => (a.pod.uid < b.pod.uid ? -1 : a.pod.uid > b.pod.uid ? 1 : 0));
  let n = 0;
  for (const e of pods) {
    // A namespace of thousands of pods is hashed in slices, the event loop free between them.
    if (++n % SLICE === 0) await yieldToLoop();
    h.update('\n');
    h.update(JSON.stringify(e.pod));
    h.update(JSON.stringify(e.containers));
  }
  return h.digest('base64url');
}

/**
 * The shares whose content differs from what Anchore last accepted (`sent`, by namespace name): changed back, or
 * changed only in what a report does not carry, a share is left out. Cleared shares always stay. One share at a time,
 * the event loop free between them (thousands of changed namespaces are one long task otherwise). Returns the shares
 * kept and the fingerprint of every share it hashed.
 */
export async function changedShares(shares: readonly NamespaceShare[], sent: ReadonlyMap<string, { fingerprint?: string }>): Promise<{ shares: NamespaceShare[]; fingerprints: Map<string, string> }> {
  const kept: NamespaceShare[] = [];
  const fingerprints = new Map<string, string>();
  for (const share of shares) {
    if (!share.cleared) {
      await yieldToLoop();
      const fp = await fingerprintShare(share);
      fingerprints.set(share.namespace.name, fp);
      if (sent.get(share.namespace.name)?.fingerprint === fp) continue;
    }
    kept.push(share);
  }
  return { shares: kept, fingerprints };
}

/** JSON bytes of a batch's body, from the measured parts (an upper bound: a node shared by two namespaces counts twice). */
export function batchBytes(snapshot: InventorySnapshot, batch: InventoryBatch): number {
  let bytes = snapshot.emptyBytes ?? 0;
  for (const share of batch.shares) {
    if (!batch.partial) bytes += (batch.minimal ? share.bytes?.minimal : share.bytes?.full) ?? 0;
    else for (const e of share.pods) bytes += e.bytes?.minimal ?? 0;
  }
  return bytes;
}

/**
 * Builds the runtime inventory of `account` (see {@link collectInventory}), split into batches of at most
 * `batchBytes` (0 = one batch) on namespace boundaries (see {@link planBatches}).
 */
export async function buildInventory(
  account: string,
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'nodes'>,
  scope: Scope,
  clusterName: string,
  now: Date,
  batchBytes: number,
): Promise<KubernetesInventory[]> {
  const snapshot = await collectInventory(account, stores, scope, clusterName, now);
  if (batchBytes > 0) await measureInventory(snapshot);
  return planBatches(snapshot, batchBytes > 0 ? batchBytes : Infinity, false).map((b) => assembleBatch(snapshot, b));
}

/** Sizes every share, pod and node of the snapshot (once; again only after a change of the snapshot). */
export async function measureInventory(snapshot: InventorySnapshot): Promise<void> {
  if (snapshot.emptyBytes !== undefined) return;
  const nodeBytes = new Map<string, { full: number; minimal: number }>();
  for (const [name, node] of snapshot.nodes) nodeBytes.set(name, { full: json(node) + 1, minimal: json(withoutLabels(node)) + 1 });
  let n = 0;
  for (const share of snapshot.shares) {
    const bytes = { full: json(share.namespace) + 1, minimal: json(withoutLabels(share.namespace)) + 1 };
    const counted = new Set<string>();
    for (const e of share.pods) {
      if (++n % SLICE === 0) await yieldToLoop();
      e.bytes = entryBytes(e);
      bytes.full += e.bytes.full;
      bytes.minimal += e.bytes.minimal;
      if (e.nodeName !== undefined && !counted.has(e.nodeName)) {
        counted.add(e.nodeName);
        const nb = nodeBytes.get(e.nodeName);
        bytes.full += nb?.full ?? 0;
        bytes.minimal += nb?.minimal ?? 0;
      }
    }
    share.bytes = bytes;
  }
  snapshot.nodeBytes = nodeBytes;
  snapshot.emptyBytes = json(assembleBatch(snapshot, { shares: [], minimal: false, partial: false }));
}

/**
 * Splits a measured snapshot into batches of at most `limit` bytes (Infinity = one batch), on namespace boundaries;
 * each batch carries only the nodes it references. A namespace larger than `limit` on its own goes alone, in its
 * smallest complete form ({@link InventoryBatch.minimal}); still larger, it goes whole anyway, unless
 * `splitNamespaces` allows sending it in parts of its pods. Sizes are upper bounds (a node shared by two namespaces
 * of a batch is counted twice), so a batch built here never exceeds `limit` unless it is one namespace, or one pod,
 * that does on its own.
 */
export function planBatches(snapshot: InventorySnapshot, limit: number, splitNamespaces: boolean): InventoryBatch[] {
  const batches = packShares(snapshot, snapshot.shares, limit, splitNamespaces);
  // An account that lost its last namespace still gets a report (an empty one).
  return batches.length > 0 ? batches : [{ shares: [], minimal: false, partial: false }];
}

/**
 * A batch refused as too large (`refusedBytes`), cut in smaller ones: several namespaces are packed again at half
 * the refused size; one namespace is sent in its smallest form first, then (only when `splitNamespaces`) in parts
 * of its pods. Answers undefined when nothing smaller can be made that keeps Anchore's per-namespace semantics (one
 * namespace already in its smallest form without `splitNamespaces`, or one pod). Every batch returned is strictly
 * smaller than the refused one, so cutting again and again ends.
 */
export function cutBatch(snapshot: InventorySnapshot, batch: InventoryBatch, refusedBytes: number, splitNamespaces: boolean): InventoryBatch[] | undefined {
  const half = Math.max(1, Math.floor(refusedBytes / 2));
  const [first] = batch.shares;
  if (first === undefined) return undefined;
  if (!batch.partial && batch.shares.length > 1) {
    const packed = packShares(snapshot, batch.shares, half, splitNamespaces);
    if (packed.length > 1) return packed;
    const mid = Math.ceil(batch.shares.length / 2);
    return [
      { ...batch, shares: batch.shares.slice(0, mid) },
      { ...batch, shares: batch.shares.slice(mid) },
    ];
  }
  if (!batch.partial && !batch.minimal && first.bytes !== undefined && first.bytes.minimal < first.bytes.full) return [{ shares: [first], minimal: true, partial: false }];
  if (!splitNamespaces || first.pods.length < 2) return undefined;
  const parts = splitShare(snapshot, first, half);
  if (parts.length > 1) return parts;
  const mid = Math.ceil(first.pods.length / 2);
  return [
    { shares: [{ namespace: first.namespace, pods: first.pods.slice(0, mid) }], minimal: true, partial: true },
    { shares: [{ namespace: first.namespace, pods: first.pods.slice(mid) }], minimal: true, partial: true },
  ];
}

/** The report body of one batch. */
export function assembleBatch(snapshot: InventorySnapshot, batch: InventoryBatch): KubernetesInventory {
  const strip = batch.minimal;
  const names = new Set<string>();
  const namespaces: Ns[] = [];
  const pods: Pod[] = [];
  const containers: Container[] = [];
  for (const share of batch.shares) {
    namespaces.push(strip ? withoutLabels(share.namespace) : share.namespace);
    for (const e of share.pods) {
      pods.push(strip ? withoutLabels(e.pod) : e.pod);
      for (const c of e.containers) containers.push(c);
      if (e.nodeName !== undefined) names.add(e.nodeName);
    }
  }
  const nodes: Node[] = [];
  for (const name of names) {
    const node = snapshot.nodes.get(name);
    if (node) nodes.push(strip ? withoutLabels(node) : node);
  }
  return { cluster_name: snapshot.clusterName, timestamp: snapshot.timestamp, namespaces, nodes, pods, containers };
}

/** Namespace names a batch carries. */
export function batchNamespaces(batch: InventoryBatch): string[] {
  return batch.shares.map((s) => s.namespace.name);
}

function packShares(snapshot: InventorySnapshot, shares: NamespaceShare[], limit: number, splitNamespaces: boolean): InventoryBatch[] {
  if (!Number.isFinite(limit)) return [{ shares, minimal: false, partial: false }];
  const empty = snapshot.emptyBytes ?? 0;
  const batches: InventoryBatch[] = [];
  let current: NamespaceShare[] = [];
  let size = empty;
  const flush = (): void => {
    if (current.length) batches.push({ shares: current, minimal: false, partial: false });
    current = [];
    size = empty;
  };
  for (const share of shares) {
    const bytes = share.bytes ?? { full: 0, minimal: 0 };
    if (empty + bytes.full > limit) {
      // Too large for a batch on its own: alone, without labels; in parts of its pods only when allowed.
      flush();
      if (splitNamespaces && empty + bytes.minimal > limit && share.pods.length > 1) batches.push(...splitShare(snapshot, share, limit));
      else batches.push({ shares: [share], minimal: true, partial: false });
      continue;
    }
    if (current.length && size + bytes.full > limit) flush();
    current.push(share);
    size += bytes.full;
  }
  flush();
  return batches;
}

/** One namespace in parts of its pods, each at most `limit` bytes (in the smallest form) unless one pod is larger. */
function splitShare(snapshot: InventorySnapshot, share: NamespaceShare, limit: number): InventoryBatch[] {
  const base = (snapshot.emptyBytes ?? 0) + json(withoutLabels(share.namespace)) + 1;
  const parts: InventoryBatch[] = [];
  let pods: PodEntry[] = [];
  let nodes = new Set<string>();
  let size = base;
  for (const e of share.pods) {
    const newNode = e.nodeName !== undefined && !nodes.has(e.nodeName) ? (snapshot.nodeBytes?.get(e.nodeName)?.minimal ?? 0) : 0;
    const bytes = (e.bytes?.minimal ?? 0) + newNode;
    if (pods.length && size + bytes > limit) {
      parts.push({ shares: [{ namespace: share.namespace, pods }], minimal: true, partial: true });
      pods = [];
      nodes = new Set();
      size = base + (e.bytes?.minimal ?? 0) + (e.nodeName !== undefined ? (snapshot.nodeBytes?.get(e.nodeName)?.minimal ?? 0) : 0);
    } else size += bytes;
    pods.push(e);
    if (e.nodeName !== undefined) nodes.add(e.nodeName);
  }
  if (pods.length) parts.push({ shares: [{ namespace: share.namespace, pods }], minimal: true, partial: true });
  return parts;
}

function podEntry(share: NamespaceShare, p: PodInfo, nodeStore: ClusterStores['nodes'], nodes: Map<string, Node>, scope: Scope): PodEntry {
  const pod: Pod = { uid: p.uid, name: p.name, namespace_uid: share.namespace.uid, labels: p.labels };
  const entry: PodEntry = { pod, containers: [] };
  const node = p.nodeName ? nodeStore.get(p.nodeName) : undefined;
  if (node?.uid) {
    pod.node_uid = node.uid;
    entry.nodeName = node.name;
    if (!nodes.has(node.name)) nodes.set(node.name, toNode(node));
  }
  for (const c of p.containers) {
    if (!c.containerID) continue;
    const r = scope.resolveImage(c);
    if (r.kind !== 'image') continue;
    const container: Container = { id: c.containerID, name: c.name, image_tag: r.image.tag, pod_uid: p.uid };
    if (r.image.digest) container.image_digest = r.image.digest;
    entry.containers.push(container);
  }
  return entry;
}

/** Bytes of a pod and its containers in a report (each followed by its comma), with and without the pod's labels. */
function entryBytes(e: PodEntry): { full: number; minimal: number } {
  let containers = 0;
  for (const c of e.containers) containers += json(c) + 1;
  return { full: json(e.pod) + 1 + containers, minimal: json(withoutLabels(e.pod)) + 1 + containers };
}

function withoutLabels<T extends { labels?: Record<string, string>; annotations?: Record<string, string> }>(o: T): T {
  const { labels: _labels, annotations: _annotations, ...rest } = o;
  return rest as T;
}

/** UTF-8 bytes of a value's JSON (labels may hold any Unicode). */
function json(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
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
