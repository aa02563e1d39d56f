// jest globalSetup for the integration project: makes sure a cluster exists and tells the test workers (which
// inherit process.env) where it is.
import { addClusterUser, clusterStatus } from '../cluster/local-cluster.ts';
import { acquireTestCluster, useExistingCluster } from './cluster.ts';

/**
 * Sets TEST_KUBECONFIG, TEST_KUBECTL, TEST_HELM, TEST_CLUSTER_KIND ('local' | 'external'), TEST_CLUSTER_SERVER and
 * TEST_CLUSTER_STARTED_BY_SETUP ('true' only if this run started the local cluster). A local cluster also gets
 * this process registered as a user, so a concurrent run's teardown leaves it alone.
 */
export default async function globalSetup(): Promise<void> {
  const external = useExistingCluster();
  const alreadyRunning = external || (await clusterStatus()).running;
  const t0 = Date.now();
  const handle = await acquireTestCluster();
  if (!external) addClusterUser({ stateDir: handle.stateDir });
  process.env['TEST_KUBECONFIG'] = handle.kubeconfig;
  process.env['TEST_KUBECTL'] = handle.kubectl;
  process.env['TEST_HELM'] = handle.helm;
  process.env['TEST_CLUSTER_KIND'] = handle.kind;
  process.env['TEST_CLUSTER_SERVER'] = handle.server;
  process.env['TEST_CLUSTER_STATE_DIR'] = handle.stateDir;
  process.env['TEST_CLUSTER_STARTED_BY_SETUP'] = alreadyRunning ? 'false' : 'true';
  process.stderr.write(
    `\n[global-setup] ${handle.kind} cluster ${handle.server} (${alreadyRunning ? 'already running' : 'ready'} after ${((Date.now() - t0) / 1000).toFixed(1)}s), KUBECONFIG=${handle.kubeconfig}\n`,
  );
}
