// jest globalTeardown for the integration project. A cluster brought up by `npm run cluster:up` is never stopped;
// one started by a test run is stopped by the last run still using it (normally the one that started it).
import { releaseClusterUser, stopLocalCluster } from '../cluster/local-cluster.ts';

/**
 * Stops the local cluster when a test setup started it, no other live test run uses it, and KEEP_CLUSTER is not
 * 'true'. Does nothing for external clusters.
 */
export default async function globalTeardown(): Promise<void> {
  if (process.env['TEST_CLUSTER_KIND'] !== 'local') return;
  const stateDir = process.env['TEST_CLUSTER_STATE_DIR'] || undefined;
  const { otherUsers, startedBy } = releaseClusterUser(stateDir ? { stateDir } : {});
  const startedByTests = process.env['TEST_CLUSTER_STARTED_BY_SETUP'] === 'true' || startedBy === 'test';
  if (!startedByTests) return;
  if (process.env['KEEP_CLUSTER'] === 'true') {
    process.stderr.write(`[global-teardown] KEEP_CLUSTER=true: leaving the local cluster running (KUBECONFIG=${process.env['TEST_KUBECONFIG'] ?? ''})\n`);
    return;
  }
  if (otherUsers.length > 0) {
    process.stderr.write(`[global-teardown] local cluster still used by pid(s) ${otherUsers.join(', ')}: leaving it running\n`);
    return;
  }
  await stopLocalCluster(stateDir ? { stateDir } : {});
}
