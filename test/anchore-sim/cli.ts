// Command line entry of the simulator: `node test/anchore-sim/cli.ts [--port 8228] [--host 127.0.0.1]
// [--config file.yaml] [--tls-cert f --tls-key f] [--quiet]`. Exit codes: 0 after SIGINT/SIGTERM, 2 for bad
// arguments or configuration, 1 when the server cannot start (e.g. port in use).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfigFile, SimConfigError } from './config.ts';
import { startSimulator } from './simulator.ts';
import type { SimulatorOptions } from './types.ts';

const USAGE = 'usage: anchore-sim [--port 8228] [--host 127.0.0.1] [--config file.yaml] [--tls-cert cert.pem --tls-key key.pem] [--quiet]';

class UsageError extends Error {}

function parseCli(argv: string[]): SimulatorOptions & { quiet: boolean; help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        config: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  const opts: SimulatorOptions & { quiet: boolean; help: boolean } = { quiet: values.quiet === true, help: values.help === true, port: 8228 };
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port must be an integer 0-65535, got "${values.port}"`);
    opts.port = port;
  }
  if (values.host !== undefined) {
    if (values.host === '') throw new UsageError('--host must not be empty');
    opts.host = values.host;
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
    try {
      opts.tls = { cert: readFileSync(values['tls-cert'], 'utf8'), key: readFileSync(values['tls-key'], 'utf8') };
    } catch (err) {
      throw new UsageError(`cannot read TLS files: ${(err as Error).message}`);
    }
  }
  if (values.config !== undefined) opts.config = loadConfigFile(values.config);
  return opts;
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof parseCli>;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError || err instanceof SimConfigError) {
      process.stderr.write(`anchore-sim: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { quiet, help: _help, ...simOpts } = opts;
  if (!quiet) simOpts.log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  let sim;
  try {
    sim = await startSimulator(simOpts);
  } catch (err) {
    process.stderr.write(`anchore-sim: cannot start: ${(err as Error).message.split('\n')[0]}\n`);
    process.exit(1);
  }
  const accounts = sim.config.accounts.map((a) => a.name).join(', ');
  process.stdout.write(`anchore-sim listening on ${sim.url} (accounts: ${accounts})\n`);
  process.stdout.write('anchore-sim: this is a SIMULATOR of the Anchore Enterprise V2 API for tests and demos - not a real Anchore Enterprise; nothing is scanned.\n');
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`anchore-sim: ${signal} received, stopping\n`);
    sim.stop().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

await main();
