import type { BindingInfo } from '../crds/types.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { type ClusterStores, type WorkloadRef, resolveWorkload, workloadKey } from '../kube/cluster.port.ts';
import type { CompiledBinding } from '../model/binding-spec.ts';
import { imageKey } from '../model/image-keys.ts';
import type { Scope } from '../model/scope.ts';
import { SLICE, yieldToLoop } from '../runtime/cooperative.ts';

/** One image a binding covers, in one account, under one tag, with the workloads that run it. */
export interface ImageGroup {
  /** The image key (what the image registration loop follows). */
  key: string;
  account: string;
  /** The namespace of the first pod seen running it (whose routing chose the account, without spec.account). */
  namespace: string;
  image: ResolvedImage;
  /** Workload key → the workload running it. */
  workloads: Map<string, WorkloadRef>;
}

/** What a binding selects now: its image groups (in selection order), their accounts and workloads. */
export interface Selection {
  groups: ImageGroup[];
  accounts: Set<string>;
  /** Distinct workloads running the selected images. */
  workloads: number;
}

interface SelectDeps {
  stores: Pick<ClusterStores, 'pods' | 'namespaces' | 'replicaSets' | 'jobs'>;
  scope: Scope;
}

/**
 * Step 1 of a binding reconcile: the running images the binding covers, from the caches only. One group per tag of a
 * digest (Anchore maps policies per tag, so each running tag is checked). Yields to the event loop every SLICE pods.
 */
export async function selectImages(deps: SelectDeps, b: BindingInfo, c: CompiledBinding): Promise<Selection> {
  const { stores, scope } = deps;
  const groups = new Map<string, ImageGroup>();
  const workloads = new Set<string>();
  let n = 0;
  for (const pod of [...stores.pods.list()]) {
    if (++n % SLICE === 0) await yieldToLoop();
    if (b.namespace !== undefined && pod.namespace !== b.namespace) continue;
    const ns = stores.namespaces.get(pod.namespace);
    if (!scope.includesNamespace(ns) || !c.selects(pod)) continue;
    const account = b.spec.account ?? scope.accountFor(ns, pod.namespace);
    const workload = resolveWorkload(pod, stores);
    const wk = workloadKey(workload);
    for (const container of pod.containers) {
      const r = scope.resolveRunning(container);
      if (r.kind !== 'image' || !c.covers(r.image)) continue;
      const key = imageKey(account, r.image);
      const gk = r.image.digest ? `${key}\u0000${r.image.tag}` : key;
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { key, account, namespace: pod.namespace, image: r.image, workloads: new Map() }));
      if (!g.workloads.has(wk)) g.workloads.set(wk, workload);
      workloads.add(wk);
    }
  }
  const list = [...groups.values()];
  return { groups: list, accounts: new Set(list.map((g) => g.account)), workloads: workloads.size };
}

/** The namespace whose routing chose an account (none when spec.account names it): named in error messages. */
export function routedFrom(b: BindingInfo, sel: Selection, account: string): string | undefined {
  return b.spec.account ? undefined : sel.groups.find((g) => g.account === account)?.namespace;
}
