// `node test/cluster/cli.ts up|down|status|env` — manages the local test cluster from a shell.
// Progress goes to stderr; stdout carries only shell exports, so `eval "$(node test/cluster/cli.ts up)"` works.
// Exit codes: 0 ok, 1 failure (with a one-line cause on stderr, preceded by the failing component's log tail).
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterError, cachedBinaries, cacheRoot, clusterStatus, defaultStateDir, startLocalCluster, stopLocalCluster } from './local-cluster.ts';

const USAGE = `usage: node test/cluster/cli.ts <command> [options]
  up      [--nodes N] [--state-dir DIR]   build/reuse binaries, start or reuse the cluster, print export KUBECONFIG=…
  down    [--keep-data] [--state-dir DIR] stop all components and delete the state (keep it with --keep-data)
  status  [--state-dir DIR]               print whether the cluster runs (exit 1 if it does not)
  env     [--state-dir DIR]               print KUBECONFIG and binary paths as shell exports
state dir default: ${defaultStateDir()} (ANCHORE_OPERATOR_CACHE moves it)`;

const shq = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
const err = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      'state-dir': { type: 'string' },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    err(USAGE);
    return values.help ? 0 : 1;
  }
  const stateDir = values['state-dir'] ? path.resolve(values['state-dir']) : defaultStateDir();

  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const nodes = values.nodes === undefined ? 3 : Number(values.nodes);
      err(`cluster:up — cache ${cacheRoot()}, state ${stateDir}`);
      const handle = await startLocalCluster({ stateDir, nodes, startedBy: 'cli' });
      err(`cluster:up — done in ${((Date.now() - t0) / 1000).toFixed(1)}s; kubectl: ${handle.kubectl}`);
      process.stdout.write(`export KUBECONFIG=${shq(handle.kubeconfig)}\n`);
      return 0;
    }
    case 'down': {
      await stopLocalCluster({ stateDir, keepData: values['keep-data'] });
      err(values['keep-data'] ? `cluster stopped; state kept in ${stateDir}` : `cluster stopped; ${stateDir} deleted`);
      return 0;
    }
    case 'status': {
      const s = await clusterStatus({ stateDir });
      if (!s.running || !s.handle) {
        err(`cluster is not running (state dir ${stateDir})`);
        return 1;
      }
      process.stdout.write(`running ${s.handle.server}\nkubeconfig ${s.handle.kubeconfig}\n`);
      return 0;
    }
    case 'env': {
      const bins = cachedBinaries();
      if (!bins) {
        err(`no binaries cached under ${path.join(cacheRoot(), 'bin')} (run npm run cluster:up)`);
        return 1;
      }
      const s = await clusterStatus({ stateDir });
      if (!s.running || !s.handle) {
        err(`cluster is not running (state dir ${stateDir}); run npm run cluster:up`);
        return 1;
      }
      const lines = [`export KUBECONFIG=${shq(s.handle.kubeconfig)}`];
      for (const [k, v] of Object.entries(bins)) lines.push(`export ${k}=${shq(v)}`);
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    }
    default:
      err(`unknown command ${cmd}\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof ClusterError && e.logTail) err(`----- last lines of ${e.component} log -----\n${e.logTail}\n-----`);
    err(`error: ${(e as Error).message.split('\n')[0]}`);
    process.exit(1);
  },
);
