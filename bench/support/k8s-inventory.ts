// Runs anchore/k8s-inventory (Anchore's own polling inventory agent, `anchore-k8s-inventory`) beside the operator,
// for benchmarks that compare detection latency. Benchmarks only: never used by the operator or by `npm test`.
//
// How the agent is configured (read from its source, internal/config/config.go, pkg/lib.go, pkg/integration,
// pkg/healthreporter; v1.x): a YAML file given with -c/--config, keys in kebab-case, and every key also as an
// environment variable ANCHORE_K8S_INVENTORY_<KEY> with "." and "-" turned into "_" (environment wins over the file).
// In `mode: periodic` it waits for GET <url>/version, registers itself (POST /v2/system/integrations/registration,
// Enterprise >= 5.11), then every `polling-interval-seconds` lists namespaces, nodes and the pods of each included
// namespace and POSTs the whole inventory to /v2/kubernetes-inventory (Basic auth, x-anchore-account), and every
// `health-report-interval-seconds` POSTs /v2/system/integrations/<uuid>/health-report.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The version bench/build-k8s-inventory.sh builds unless K8S_INVENTORY_VERSION says otherwise. */
export const K8S_INVENTORY_DEFAULT_VERSION = 'v1.8.2';

/** The agent cannot be had on this machine (the build script exited 3); the message says why and what to do. */
export class K8sInventoryUnavailableError extends Error {
  override readonly name = 'K8sInventoryUnavailableError';
}

const BUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'build-k8s-inventory.sh');

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of an `anchore-k8s-inventory` binary: K8S_INVENTORY_BINARY if set, else the cached build, else whatever
 * bench/build-k8s-inventory.sh builds (its progress goes to this process's stderr).
 * @throws K8sInventoryUnavailableError when the module proxy does not serve the module (no checkout given either).
 */
export async function ensureK8sInventory(): Promise<string> {
  const given = process.env['K8S_INVENTORY_BINARY'];
  if (given) {
    if (!isExecutable(given)) throw new Error(`K8S_INVENTORY_BINARY=${given} is not an executable file`);
    return given;
  }
  const version = process.env['K8S_INVENTORY_VERSION'] ?? K8S_INVENTORY_DEFAULT_VERSION;
  const cache = process.env['ANCHORE_OPERATOR_CACHE'] ?? join(homedir(), '.cache', 'anchore-operator');
  const cached = join(cache, 'bin', `k8s-inventory-${version}`, 'anchore-k8s-inventory');
  if (isExecutable(cached)) return cached;

  return new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && last !== '' && isExecutable(last)) resolve(last);
      else if (code === 3) {
        reject(
          new K8sInventoryUnavailableError(
            `github.com/anchore/k8s-inventory@${version} is not served by the Go module proxy on this machine (bench/build-k8s-inventory.sh exited 3). ` +
              'Set K8S_INVENTORY_SRC=<checkout> for the build script, or K8S_INVENTORY_BINARY=<prebuilt anchore-k8s-inventory>.',
          ),
        );
      } else reject(new Error(`bench/build-k8s-inventory.sh exited ${String(code)}${last ? `; last line: ${last}` : ''}`));
    });
  });
}

export interface K8sInventoryOptions {
  binary: string;
  kubeconfig: string;
  /** Anchore root URL (no /v2): the agent appends /version, v2/kubernetes-inventory, v2/system/integrations/…. */
  anchoreUrl: string;
  username: string;
  password: string;
  account: string;
  /** polling-interval-seconds (binary default 300, Helm chart default 60). */
  pollSeconds: number;
  /** namespace-selectors.include: exact names; all namespaces when empty or absent. */
  namespaces?: string[];
  /** kubeconfig.cluster: the cluster_name of every report. */
  clusterName: string;
  /** Where the config file goes (created if missing). */
  workDir: string;
  /** log.level (default info: one line per poll and per POST; debug also logs every request). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** health-report-interval-seconds, 30..600 (the agent refuses anything else); default 60 like the chart. */
  healthReportSeconds?: number;
  /** verbose-inventory-reports: also print every report as JSON on stdout (default false). */
  verboseInventoryReports?: boolean;
  /** HOSTNAME, the registration_instance_id (default k8s-inventory-bench-<clusterName>); must not be empty. */
  hostname?: string;
}

export interface RunningK8sInventory {
  pid: number;
  /** stdout and stderr lines as they arrive (the newest 20,000). */
  output: string[];
  configPath: string;
  /** True once the process has exited (on its own or stopped). */
  exited(): boolean;
  stop(): Promise<void>;
}

const MAX_OUTPUT_LINES = 20_000;

/** The config file the agent is started with (the password is not in it: it goes through the environment). */
export function k8sInventoryConfig(opts: K8sInventoryOptions): string {
  const health = opts.healthReportSeconds ?? 60;
  if (!Number.isInteger(opts.pollSeconds) || opts.pollSeconds < 1) throw new Error(`pollSeconds must be a positive integer, got ${opts.pollSeconds}`);
  if (!Number.isInteger(health) || health < 30 || health > 600) throw new Error(`healthReportSeconds must be 30..600, got ${health}`);
  // JSON is YAML: every value is quoted correctly whatever it contains.
  const cfg = {
    quiet: false,
    log: { structured: false, level: opts.logLevel ?? 'info', file: '' },
    'verbose-inventory-reports': opts.verboseInventoryReports ?? false,
    kubeconfig: { path: opts.kubeconfig, cluster: opts.clusterName },
    'namespace-selectors': { include: opts.namespaces ?? [], exclude: [], 'ignore-empty': false },
    mode: 'periodic',
    'polling-interval-seconds': opts.pollSeconds,
    'health-report-interval-seconds': health,
    'ignore-not-running': true,
    'missing-tag-policy': { policy: 'digest', tag: 'UNKNOWN' },
    kubernetes: { 'request-timeout-seconds': 60, 'request-batch-size': 100, 'worker-pool-size': 100 },
    // The password comes from the environment; the agent only takes a key from there when the file (or a default)
    // has it, so the file carries it empty.
    anchore: { url: opts.anchoreUrl.replace(/\/+$/, ''), user: opts.username, password: '', account: opts.account, http: { insecure: false, 'timeout-seconds': 10 } },
    // Outside a cluster the agent cannot read its own Deployment; a fixed registration id keeps re-registrations of
    // the same benchmark cluster on one id (the instance id is still a fresh UUID per start).
    'anchore-registration': {
      'registration-id': `k8s-inventory-bench-${opts.clusterName}`,
      'integration-name': `k8s-inventory-bench-${opts.clusterName}`,
      'integration-description': 'anchore/k8s-inventory run by the anchore-operator benchmark',
    },
  };
  return JSON.stringify(cfg, null, 2) + '\n';
}

/**
 * The agent's environment, clean: any ANCHORE_K8S_INVENTORY_* variable would override the file. HOME is where it
 * would look for a default kubeconfig and config file. HOSTNAME is required: the agent registers with
 * registration_instance_id = $HOSTNAME whenever it cannot find its own Deployment with exactly one replica
 * (pkg/integration/integration.go, getRegistrationInfo; outside a cluster it never can), and an empty id is refused by
 * Anchore (400), after which the agent exits. POD_NAMESPACE stays unset: with it the agent looks for its own pod.
 */
export function k8sInventoryEnv(opts: Pick<K8sInventoryOptions, 'workDir' | 'password' | 'clusterName' | 'hostname'>): Record<string, string> {
  const hostname = opts.hostname ?? `k8s-inventory-bench-${opts.clusterName}`;
  if (hostname.trim() === '') throw new Error('the agent needs a non-empty HOSTNAME (its registration_instance_id)');
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: opts.workDir,
    HOSTNAME: hostname,
    ANCHORE_K8S_INVENTORY_ANCHORE_PASSWORD: opts.password,
  };
}

/**
 * Writes the config file into workDir and starts the agent in periodic mode. Resolves once the process has been up
 * for 500 ms (a bad config or kubeconfig makes it exit at once: that rejects, with its output).
 */
export async function startK8sInventory(opts: K8sInventoryOptions): Promise<RunningK8sInventory> {
  mkdirSync(opts.workDir, { recursive: true });
  const configPath = join(opts.workDir, 'anchore-k8s-inventory.yaml');
  writeFileSync(configPath, k8sInventoryConfig(opts), { mode: 0o600 });

  const child = spawn(opts.binary, ['--config', configPath], { cwd: opts.workDir, env: k8sInventoryEnv(opts), stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const collect = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      output.push(...lines);
      if (output.length > MAX_OUTPUT_LINES) output.splice(0, output.length - MAX_OUTPUT_LINES);
    });
    stream.on('end', () => {
      if (partial !== '') output.push(partial);
    });
  };
  collect(child.stdout);
  collect(child.stderr);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve());
  });
  await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 500))]);
  if (exited !== undefined) {
    throw new Error(`anchore-k8s-inventory exited at start (code ${String(exited.code)}, signal ${String(exited.signal)}):\n${output.slice(-40).join('\n')}`);
  }

  return {
    pid: child.pid!,
    output,
    configPath,
    exited: () => exited !== undefined,
    async stop(): Promise<void> {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([exitPromise.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!killed && exited === undefined) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    },
  };
}

/** `anchore-k8s-inventory version` output, or undefined when it does not run. */
export function k8sInventoryVersion(binary: string): string | undefined {
  const r = spawnSync(binary, ['version'], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent' } });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The version the agent prints (`1.8.4`), or undefined when it does not run. */
export function k8sInventoryVersionName(binary: string): string | undefined {
  const out = k8sInventoryVersion(binary);
  if (out === undefined) return undefined;
  return /"version":\s*"([^"]*)"/.exec(out)?.[1] ?? /^Version:\s*(\S+)/m.exec(out)?.[1] ?? out.split('\n')[0];
}
