/**
 * Entry point. Exit codes: 0 clean shutdown, 1 fatal runtime/startup error or leader election lost, 2 invalid
 * configuration — each with a one-line cause on stderr (and in the JSON log when the logger is up).
 */
import { ConfigError, describeConfig, loadConfig } from './config.ts';
import { FatalStartupError, type RunningOperator, startOperator } from './operator.ts';
import { createLogger } from './telemetry/logger.ts';
import { VERSION } from './version.ts';

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`anchore-operator: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(cfg.log);
  log.info({ version: VERSION, config: describeConfig(cfg) }, 'anchore-operator starting');
  let op: RunningOperator | undefined;
  let stopping = false;
  let onLost = (): void => {};
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'shutting down');
      const done = (op ? op.stop() : Promise.resolve()).then(() => 0);
      done.then(resolve, () => resolve(1));
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    // Another replica may already lead: finish stopping (drained queues, closed servers) and exit 1 so the pod restarts
    // as a follower, as client-go based controllers do.
    onLost = () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write('anchore-operator: leader election lost: could not renew the lease within the renew deadline\n');
      (op ? op.stop() : Promise.resolve()).then(
        () => resolve(1),
        () => resolve(1),
      );
    };
  });
  try {
    // A signal while we still wait for Anchore or the caches ends the wait.
    op = await Promise.race([startOperator(cfg, { log, onLeadershipLost: () => onLost() }), stopped.then(() => undefined)]);
    if (!op) return stopped;
  } catch (err) {
    if (stopping) return stopped;
    const msg = err instanceof FatalStartupError ? err.message : `startup failed: ${(err as Error).message ?? String(err)}`;
    log.fatal({ err: msg }, 'cannot start');
    process.stderr.write(`anchore-operator: ${msg}\n`);
    return 1;
  }
  if (stopping) await op.stop();
  return stopped;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Let pino flush; then make sure no stray handle keeps us alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`anchore-operator: fatal: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
