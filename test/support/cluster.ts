// How integration tests get a cluster: the local control plane by default, or whatever $KUBECONFIG points at when
// USE_EXISTING_CLUSTER=true (kind, a dev cluster). Tests only ever see a ClusterHandle.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedBinaries, ensureBinaries, startLocalCluster } from '../cluster/local-cluster.ts';
import type { ClusterHandle } from '../cluster/local-cluster.ts';

export type { ClusterHandle } from '../cluster/local-cluster.ts';

/** True when the tests should target $KUBECONFIG instead of starting the local cluster. */
export function useExistingCluster(): boolean {
  return process.env['USE_EXISTING_CLUSTER'] === 'true';
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * Returns the cluster for this test run. With USE_EXISTING_CLUSTER=true: the first file of $KUBECONFIG (or
 * ~/.kube/config), `kind: 'external'`, kubectl/helm from PATH or else the cached builds. Otherwise the local
 * cluster, reused if it already runs, started (seconds with cached binaries) if not.
 */
export async function acquireTestCluster(): Promise<ClusterHandle> {
  if (!useExistingCluster()) return startLocalCluster({ startedBy: 'test' });

  const kubeconfig = (process.env['KUBECONFIG'] ?? '').split(path.delimiter).find(Boolean) ?? path.join(os.homedir(), '.kube', 'config');
  if (!fs.existsSync(kubeconfig)) throw new Error(`USE_EXISTING_CLUSTER=true but kubeconfig ${kubeconfig} does not exist (set KUBECONFIG)`);
  let kubectl = onPath('kubectl');
  let helm = onPath('helm');
  if (!kubectl || !helm) {
    const bins = cachedBinaries() ?? (await ensureBinaries());
    kubectl ??= bins['KUBECTL'];
    helm ??= bins['HELM'];
  }
  if (!kubectl || !helm) throw new Error('no kubectl/helm on PATH and none cached');
  // Ask kubectl rather than parsing: the kubeconfig may use exec plugins or several merged files.
  const server = execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'], {
    encoding: 'utf8',
  }).trim();
  return { kind: 'external', kubeconfig, server, kubectl, helm, stateDir: '' };
}
