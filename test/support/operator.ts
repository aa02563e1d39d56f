// Starts the operator in-process against the test cluster and a simulator, through the same config loader the entry
// point uses (so env parsing is exercised too), and captures its JSON log.
import { Writable } from 'node:stream';
import { type Config, loadConfig } from '../../src/config.ts';
import { type RunningOperator, startOperator } from '../../src/operator.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { ensureCrds, testCluster } from './k8s.ts';

export interface TestOperator {
  op: RunningOperator;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * The Lease holder this operator last observed, from its log line "new leader observed" (said each time the holder it
 * sees changes); undefined before any.
 */
export function observedLeader(t: TestOperator): string | undefined {
  let leader: string | undefined;
  for (const chunk of t.logs) {
    for (const line of chunk.split('\n')) {
      if (line.includes('"new leader observed"')) leader = (JSON.parse(line) as { leader?: string }).leader;
    }
  }
  return leader;
}

/**
 * Env for an operator talking to `anchoreUrl` and the test cluster; `extra` overrides. Suites pass
 * NAMESPACES_INCLUDE with their own namespaces: the cluster is shared (other suites, the demo, a user's workloads on
 * kind), and an operator that sees everything would register and evaluate other suites' images.
 */
export function operatorEnv(anchoreUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ANCHORE_URL: anchoreUrl,
    ANCHORE_USERNAME: 'admin',
    ANCHORE_PASSWORD: 'foobar',
    CLUSTER_NAME: 'it-cluster',
    KUBECONFIG: testCluster().kubeconfig,
    HEALTH_PORT: '0',
    METRICS_PORT: '0',
    BIND_ADDRESS: '127.0.0.1',
    INVENTORY_DEBOUNCE_MS: '200',
    INVENTORY_MIN_INTERVAL_MS: '0',
    INVENTORY_INTERVAL_SECONDS: '30',
    HEALTH_REPORT_INTERVAL_SECONDS: '30',
    SHUTDOWN_DRAIN_SECONDS: '5',
    // No admission hand-off on stop (10 s by default): suites stop operators often; admission-handoff sets its own.
    ADMISSION_SHUTDOWN_DELAY_SECONDS: '0',
    LOG_LEVEL: 'debug',
    // Suites run operators side by side in one namespace-less scope; the leader-election suites turn it on.
    LEADER_ELECTION: 'false',
    ...extra,
  };
}

/**
 * `tweak` may adjust the loaded config where a test needs what users cannot set (e.g. a health report every second:
 * the spec's minimum of 30 s would make a suite wait).
 */
export async function startTestOperator(env: Record<string, string>, tweak?: (cfg: Config) => void): Promise<TestOperator> {
  await ensureCrds();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: env['LOG_LEVEL'] ?? 'info', pretty: false }, sink);
  const cfg = loadConfig(env);
  tweak?.(cfg);
  const op = await startOperator(cfg, { log });
  return { op, logs, stop: () => op.stop() };
}
