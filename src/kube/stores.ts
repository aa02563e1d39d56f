import type { Logger } from '../telemetry/logger.ts';
import type { ClusterStores, NamespaceInfo } from './cluster.port.ts';
import type { KubeClient } from './client.ts';
import { projectBinding, projectNamespace, projectNode, projectOwner, projectPod } from './projections.ts';
import { GROUP, VERSION } from '../crds/schema.ts';
import type { BindingInfo } from '../crds/types.ts';
import { NamespaceScope } from './namespace-scope.ts';
import { Reflector, type ReflectorMetrics } from './reflector.ts';

interface StoresOptions {
  client: KubeClient;
  log: Logger;
  metrics?: ReflectorMetrics;
  relistIntervalMs: number;
  watchdogMs: number;
  /**
   * Which namespaces' pods are kept (the operator's scope, `Scope.includesNamespace`); absent: every namespace's. Pods
   * of other namespaces are neither projected nor cached.
   */
  podNamespaces?: (ns: NamespaceInfo) => boolean;
}

export interface RunningStores extends ClusterStores {
  bindings: Reflector<BindingInfo>;
  clusterBindings: Reflector<BindingInfo>;
  all: Reflector<{ key: string; resourceVersion: string }>[];
  start(): Promise<void>;
  stop(): void;
  synced(): boolean;
}

/**
 * The watches the operator keeps: Running pods (server-side field selector, slim projection, only the namespaces in
 * scope when `podNamespaces` is given), namespaces, nodes, and ReplicaSets/Jobs as metadata only (to resolve
 * Deployments and CronJobs).
 */
export function createClusterStores(o: StoresOptions): RunningStores {
  const common = { client: o.client, log: o.log, relistIntervalMs: o.relistIntervalMs, watchdogMs: o.watchdogMs, ...(o.metrics ? { metrics: o.metrics } : {}) };
  const namespaces = new Reflector({ ...common, resource: 'namespaces', path: '/api/v1/namespaces', project: projectNamespace });
  // Follows the namespace cache before any controller does: a namespace leaving the scope drops its pods (delete
  // events) before the controllers hear of the namespace itself.
  const podScope = o.podNamespaces ? new NamespaceScope(namespaces, o.podNamespaces) : undefined;
  const pods = new Reflector({
    ...common,
    resource: 'pods',
    path: '/api/v1/pods',
    fieldSelector: 'status.phase=Running',
    project: (r) => projectPod(r),
    ...(podScope ? { admitsNamespace: (ns: string) => podScope.has(ns) } : {}),
  });
  podScope?.follow(pods);
  const nodes = new Reflector({ ...common, resource: 'nodes', path: '/api/v1/nodes', project: projectNode });
  const replicaSets = new Reflector({ ...common, resource: 'replicasets', path: '/apis/apps/v1/replicasets', metadataOnly: true, project: projectOwner });
  const jobs = new Reflector({ ...common, resource: 'jobs', path: '/apis/batch/v1/jobs', metadataOnly: true, project: projectOwner });
  const bindings = new Reflector({ ...common, resource: 'anchorepolicybindings', path: `/apis/${GROUP}/${VERSION}/anchorepolicybindings`, project: projectBinding('AnchorePolicyBinding') });
  const clusterBindings = new Reflector({
    ...common,
    resource: 'clusteranchorepolicybindings',
    path: `/apis/${GROUP}/${VERSION}/clusteranchorepolicybindings`,
    project: projectBinding('ClusterAnchorePolicyBinding'),
  });
  const all = [namespaces, nodes, replicaSets, jobs, bindings, clusterBindings, pods] as RunningStores['all'];
  return {
    pods,
    namespaces,
    nodes,
    replicaSets,
    jobs,
    bindings,
    clusterBindings,
    all,
    // Owners and namespaces first, so the first pod events already resolve workloads and scope (and the pod list keeps
    // only the namespaces in scope).
    async start() {
      await Promise.all([namespaces.start(), nodes.start(), replicaSets.start(), jobs.start(), bindings.start(), clusterBindings.start()]);
      await pods.start();
    },
    stop() {
      for (const r of all) r.stop();
    },
    synced: () => all.every((r) => r.hasSynced),
  };
}
