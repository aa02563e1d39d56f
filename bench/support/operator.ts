// The operator under benchmark: a child process started through the real entry point, measured from outside
// (/proc for CPU and RSS, its /metrics for its own counters), so the benchmark process's work is never counted.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClusterHandle, freePorts } from '../../test/cluster/local-cluster.ts';
import { type KubeConnection, req, waitFor } from './kube.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const CLK_TCK = 100; // getconf CLK_TCK on Linux

/** The node flags of the container image's ENTRYPOINT, so the benchmark measures what production runs. */
export function imageNodeFlags(): string[] {
  const line = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('ENTRYPOINT'))
    .at(-1);
  const argv = line ? (JSON.parse(line.slice('ENTRYPOINT'.length).trim()) as string[]) : [];
  return argv.slice(1, -1).filter((a) => a.startsWith('--'));
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
export function procStats(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: (utime + stime) / CLK_TCK, rssBytes: rssKb * 1024 };
}

/** RSS split into anonymous memory (heaps) and file-backed pages (mostly the node binary), from smaps_rollup. */
export function rssSplit(pid: number): { anonBytes: number; fileBytes: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { anonBytes: kb('Anonymous'), fileBytes: kb('Rss') - kb('Anonymous') };
}

/** In a Prometheus text scrape: the sum of a metric's samples whose label text contains every fragment given. */
export function sumMetric(text: string, name: string, ...fragments: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (fragments.every((f) => rest.includes(f))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export class OperatorProcess {
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly startedAt: number;
  #child: ChildProcess;
  #exit: Promise<number | null>;
  exited = false;

  private constructor(child: ChildProcess, healthPort: number, metricsPort: number) {
    this.#child = child;
    this.healthPort = healthPort;
    this.metricsPort = metricsPort;
    this.startedAt = Date.now();
    this.#exit = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exited = true;
        resolve(code);
      }),
    );
  }

  static async start(env: Record<string, string>, logFile: string, nodeArgs: string[] = []): Promise<OperatorProcess> {
    const [healthPort, metricsPort] = (await freePorts(2)) as [number, number];
    // The production entry point (tsc output, as in the container image), not src/ under type stripping.
    const child = spawn(process.execPath, [...imageNodeFlags(), ...nodeArgs, join(ROOT, 'dist', 'main.js')], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env, HEALTH_PORT: String(healthPort), METRICS_PORT: String(metricsPort), BIND_ADDRESS: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    return new OperatorProcess(child, healthPort, metricsPort);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  stats(): { cpuSeconds: number; rssBytes: number } {
    return procStats(this.pid);
  }

  rssSplit(): { anonBytes: number; fileBytes: number } {
    return rssSplit(this.pid);
  }

  async ready(): Promise<boolean> {
    const res = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`).catch(() => undefined);
    return res?.status === 200;
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return res.text();
  }

  /** Sum of a metric's samples whose label text contains every fragment given. */
  async metricSum(name: string, ...fragments: string[]): Promise<number> {
    return sumMetric(await this.metrics(), name, ...fragments);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (!this.exited) this.#child.kill(signal);
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    const code = await this.#exit;
    clearTimeout(t);
    return code;
  }
}

/**
 * Waits until the operator is idle before a measurement: no new Anchore request between two looks `intervalMs` apart
 * (`anchoreRequests` counts them, e.g. the simulator's log) and no work queue holding a ready key.
 */
export async function waitForQuiet(op: OperatorProcess, anchoreRequests: () => number, what: string, timeoutMs: number, intervalMs: number): Promise<void> {
  let lastCount = -1;
  await waitFor(
    what,
    async () => {
      const n = anchoreRequests();
      const quiet = n === lastCount;
      lastCount = n;
      return quiet && (await op.metricSum('anchore_operator_workqueue_depth', 'state="ready"')) === 0;
    },
    timeoutMs,
    intervalMs,
  );
}

/** kubectl against the bench's cluster; `input` is piped to it (apply -f -). */
export function kubectlIn(cluster: Pick<ClusterHandle, 'kubectl' | 'kubeconfig'>, args: string[], input?: string): void {
  execFileSync(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'inherit'], ...(input === undefined ? {} : { input }) });
}

/** Before a run (not measured): the operator built as it ships (dist/) and the CRDs established in the cluster. */
export function prepareCluster(cluster: Pick<ClusterHandle, 'kubectl' | 'kubeconfig'>): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  kubectlIn(cluster, ['apply', '--server-side', '--force-conflicts', '-f', join(ROOT, 'deploy', 'crds')]);
  kubectlIn(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/anchorepolicybindings.anchore.io', 'crd/clusteranchorepolicybindings.anchore.io']);
}

/** The operator's settings every bench run shares: the simulator as admin, the run's namespaces, one replica. */
export function benchOperatorEnv(simUrl: string, kubeconfig: string, run: string, clusterName: string): Record<string, string> {
  return {
    ANCHORE_URL: simUrl,
    ANCHORE_USERNAME: 'admin',
    ANCHORE_PASSWORD: 'foobar',
    CLUSTER_NAME: clusterName,
    KUBECONFIG: kubeconfig,
    NAMESPACES_INCLUDE: `bench-${run}-*`,
    LEADER_ELECTION: 'false',
    LOG_LEVEL: 'info',
  };
}

/**
 * A setting of the operator as it logged its resolved configuration at start (the first log line with `config`),
 * e.g. ['inventory', 'intervalMs']; undefined when the log or the setting is not there.
 */
export function loggedSetting(logFile: string, path: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"config"')) continue;
    try {
      let v: unknown = (JSON.parse(line) as { config?: unknown }).config;
      for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      return v;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Starts the operator and waits until it is ready; throws (naming its log) if it exits instead. */
export async function startReady(env: Record<string, string>, logFile: string, nodeArgs: string[] = []): Promise<OperatorProcess> {
  const op = await OperatorProcess.start(env, logFile, nodeArgs);
  await waitFor('operator ready', async () => (await op.ready()) || op.exited, 120_000, 100);
  if (op.exited) throw new Error(`the operator exited; see ${logFile}`);
  return op;
}

/** Waits until the binding at `path` has evaluated its current generation over `images` images, none pending; its summary. */
export async function waitBindingEvaluated(conn: KubeConnection, path: string, images: number, what: string, timeoutMs: number, intervalMs: number): Promise<Record<string, number> | undefined> {
  type Binding = { metadata: { generation: number }; status?: { observedGeneration?: number; summary?: Record<string, number> } };
  let summary: Record<string, number> | undefined;
  await waitFor(
    what,
    async () => {
      const b = (await req(conn, 'GET', path)) as Binding;
      summary = b.status?.summary;
      return b.status?.observedGeneration === b.metadata.generation && summary?.['images'] === images && summary['pending'] === 0;
    },
    timeoutMs,
    intervalMs,
    () => JSON.stringify(summary ?? {}),
  );
  return summary;
}
