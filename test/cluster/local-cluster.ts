// A real, local Kubernetes control plane for tests: etcd, kube-apiserver (RBAC on), kube-controller-manager,
// kube-scheduler and kwok (fake nodes whose pods become Running). No container engine is involved; the
// binaries come from build-binaries.sh. Processes run detached so the cluster outlives the CLI that started it;
// everything about a cluster lives in one state directory (logs, pid files, PKI, etcd data, kubeconfig).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import { kubeRequest } from './kube-api.ts';
import type { KubeConnection } from './kube-api.ts';
import { ensurePki } from './pki.ts';
import type { Pki } from './pki.ts';

/** A cluster tests can talk to. */
export interface ClusterHandle {
  kind: 'local' | 'external';
  /** Path to an admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> for local clusters; the kubeconfig's server for external ones. */
  server: string;
  /** kubectl binary: the cached build for local clusters; for external ones `kubectl` on PATH or the cached one. */
  kubectl: string;
  /** helm binary (cached build, or `helm` on PATH for external clusters when nothing is cached). */
  helm: string;
  /** State directory of a local cluster; '' for external clusters. */
  stateDir: string;
}

const moduleDir = path.dirname(fileURLToPath(import.meta.url));

/** Kubernetes version the fake nodes report when it cannot be read from the binary path (kube-<version>/). */
const FALLBACK_KUBELET_VERSION = 'v1.36.3';
/** Pods the whole fake fleet must hold: the benchmark's 10,000 plus its churn pods and the test suites' own. */
const FLEET_POD_CAPACITY = 12_000;
const NODE_ANNOTATION = 'kwok.x-k8s.io/node';
const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
type Component = (typeof COMPONENTS)[number];

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

/** What cluster.json records about a started cluster. */
interface ClusterState {
  version: 1;
  server: string;
  ports: Ports;
  nodes: number;
  binaries: Record<string, string>;
  pids: Partial<Record<Component, number>>;
  startedAt: string;
  /** Who started it ('test' = a jest globalSetup, 'cli' = cluster:up); teardown only stops 'test' clusters. */
  startedBy?: string;
}

/** Root of everything cached outside the repository. */
export function cacheRoot(): string {
  return process.env['ANCHORE_OPERATOR_CACHE'] || path.join(os.homedir(), '.cache', 'anchore-operator');
}

/** Default state directory of the local cluster: `${ANCHORE_OPERATOR_CACHE:-~/.cache/anchore-operator}/cluster`. */
export function defaultStateDir(): string {
  return path.join(cacheRoot(), 'cluster');
}

/** A startup step failed; `component` names the process and `logTail` holds the end of its log. */
export class ClusterError extends Error {
  component: string;
  logTail: string;
  constructor(component: string, message: string, logTail = '') {
    super(`${component}: ${message}`);
    this.name = 'ClusterError';
    this.component = component;
    this.logTail = logTail;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const defaultLog = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

function layout(stateDir: string) {
  return {
    stateDir,
    logs: path.join(stateDir, 'logs'),
    pids: path.join(stateDir, 'pids'),
    pki: path.join(stateDir, 'pki'),
    etcdData: path.join(stateDir, 'etcd'),
    kubeconfig: path.join(stateDir, 'kubeconfig'),
    schedulerConfig: path.join(stateDir, 'kube-scheduler.yaml'),
    kwokConfig: path.join(stateDir, 'kwok.yaml'),
    stateFile: path.join(stateDir, 'cluster.json'),
    users: path.join(stateDir, 'users'),
    lock: path.join(stateDir, '.lock'),
  };
}

/** Last `lines` lines of a component's log, for error messages. */
export function logTail(stateDir: string, component: string, lines = 30): string {
  try {
    const text = fs.readFileSync(path.join(stateDir, 'logs', `${component}.log`), 'utf8');
    // Only this run's part: launch() writes a "=====" header line before every start.
    const current = text.slice(text.lastIndexOf('\n===== ') + 1);
    return current.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Locks: mkdir is atomic everywhere, and the owner's pid lets a crashed holder's lock be taken over.

async function withLock<T>(lockDir: string, what: string, log: (s: string) => void, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(path.dirname(lockDir), { recursive: true });
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileOr(path.join(lockDir, 'pid'), '0'));
      if (!owner || !pidAlive(owner)) {
        // Stale (holder died, or crashed between mkdir and writing its pid): take it over.
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!announced) {
        log(`waiting for ${what} held by pid ${owner} (${lockDir})`);
        announced = true;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} held by pid ${owner}`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function readFileOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Binaries

function parsePathsEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m && m[1] && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/**
 * Builds or reuses the control-plane binaries by running build-binaries.sh (which rebuilds only what is missing
 * for the pinned versions), streaming its progress lines to `log`, and returns the parsed paths.env
 * (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KUBECTL, ETCD, KWOK, HELM). Concurrent callers
 * serialise on a lock so two builds never share the work directory.
 */
export async function ensureBinaries(log: (s: string) => void = defaultLog): Promise<Record<string, string>> {
  const script = path.join(moduleDir, 'build-binaries.sh');
  const binDir = path.join(cacheRoot(), 'bin');
  await withLock(path.join(cacheRoot(), 'build.lock'), 'the binary build', log, 90 * 60_000, async () => {
    const other: string[] = [];
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      let buf = '';
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          // The script's own progress lines are shown; go's per-module download chatter only on failure.
          if (line.startsWith('[build-binaries')) log(line);
          else if (line.trim()) other.push(line);
          if (other.length > 200) other.shift();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (c) => resolve(c ?? 1));
    });
    if (code !== 0) {
      throw new ClusterError('build-binaries', `build-binaries.sh exited with ${code}`, other.slice(-30).join('\n'));
    }
  });
  const paths = parsePathsEnv(path.join(binDir, 'paths.env'));
  for (const key of ['KUBE_APISERVER', 'KUBE_CONTROLLER_MANAGER', 'KUBE_SCHEDULER', 'KUBECTL', 'ETCD', 'KWOK', 'HELM']) {
    const p = paths[key];
    if (!p || !fs.existsSync(p)) throw new ClusterError('build-binaries', `paths.env has no usable ${key} (${p ?? 'missing'})`);
  }
  return paths;
}

/** paths.env as last written by build-binaries.sh, without building; undefined if nothing was built yet. */
export function cachedBinaries(): Record<string, string> | undefined {
  const file = path.join(cacheRoot(), 'bin', 'paths.env');
  if (!fs.existsSync(file)) return undefined;
  const paths = parsePathsEnv(file);
  return Object.values(paths).every((p) => fs.existsSync(p)) ? paths : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A dead child of a still-running parent is a zombie until reaped; it can no longer serve anything.
  const stat = readFileOr(`/proc/${pid}/stat`, '');
  return !/^\d+ \(.*\) Z/.test(stat);
}

/** True if `pid` is alive and (where /proc exists) runs `bin`, so a recycled pid is never mistaken for ours. */
function isOurProcess(pid: number | undefined, bin: string): pid is number {
  if (!pid || !pidAlive(pid)) return false;
  const cmdline = readFileOr(`/proc/${pid}/cmdline`, '');
  if (!cmdline) return process.platform !== 'linux';
  return cmdline.split('\0')[0] === bin;
}

function launch(l: ReturnType<typeof layout>, component: Component, bin: string, args: string[]): number {
  const logFile = path.join(l.logs, `${component}.log`);
  fs.appendFileSync(logFile, `\n===== ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  const fd = fs.openSync(logFile, 'a');
  try {
    // detached: own process group, so Ctrl-C in the terminal that ran `cluster:up` does not reach it.
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], cwd: l.stateDir, env: process.env });
    child.on('error', (err) => fs.appendFileSync(logFile, `spawn failed: ${err.message}\n`));
    child.unref();
    if (!child.pid) throw new ClusterError(component, `could not start ${bin}`, logTail(l.stateDir, component));
    fs.writeFileSync(path.join(l.pids, `${component}.pid`), String(child.pid));
    return child.pid;
  } finally {
    fs.closeSync(fd);
  }
}

async function terminate(pid: number, graceMs: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  while (pidAlive(pid)) await sleep(50);
}

/** Free loopback ports; all listeners are held open together so the ports are distinct. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// State

function readState(stateFile: string): ClusterState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as ClusterState;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

function binaryFor(component: Component, b: Record<string, string>): string {
  const key = {
    etcd: 'ETCD',
    'kube-apiserver': 'KUBE_APISERVER',
    'kube-controller-manager': 'KUBE_CONTROLLER_MANAGER',
    'kube-scheduler': 'KUBE_SCHEDULER',
    kwok: 'KWOK',
  }[component];
  return b[key] ?? '';
}

function handleFrom(state: ClusterState, stateDir: string): ClusterHandle {
  return {
    kind: 'local',
    kubeconfig: layout(stateDir).kubeconfig,
    server: state.server,
    kubectl: state.binaries['KUBECTL'] ?? 'kubectl',
    helm: state.binaries['HELM'] ?? 'helm',
    stateDir,
  };
}

function adminConnection(pki: Pki, server: string): KubeConnection {
  return { server, ca: fs.readFileSync(pki.caCert, 'utf8'), cert: fs.readFileSync(pki.adminCert, 'utf8'), key: fs.readFileSync(pki.adminKey, 'utf8') };
}

/** True once /readyz answers 200, polling until `patienceMs` runs out (a cluster busy with thousands of pods can
 * take seconds per request; it must not be mistaken for a dead one and restarted). */
async function apiserverReady(conn: KubeConnection, patienceMs: number): Promise<boolean> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    try {
      const res = await kubeRequest(conn, 'GET', '/readyz', undefined, { timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())) });
      if (res.status === 200) return true;
    } catch {
      /* not answering (yet) */
    }
    if (Date.now() >= deadline) return false;
    await sleep(250);
  }
}

type Inspection = { kind: 'running'; state: ClusterState } | { kind: 'stopped' } | { kind: 'unhealthy'; state: ClusterState };

/** Looks at the cluster recorded in `stateDir` without changing anything. */
async function inspect(stateDir: string, patienceMs: number): Promise<Inspection> {
  const l = layout(stateDir);
  const state = readState(l.stateFile);
  if (!state) return { kind: 'stopped' };
  const alive = COMPONENTS.filter((c) => isOurProcess(state.pids[c], binaryFor(c, state.binaries)));
  if (alive.length === 0) return { kind: 'stopped' };
  if (alive.length < COMPONENTS.length) return { kind: 'unhealthy', state };
  const files = [path.join(l.pki, 'ca.crt'), path.join(l.pki, 'admin.crt'), path.join(l.pki, 'admin.key')];
  if (!files.every((f) => fs.existsSync(f))) return { kind: 'unhealthy', state };
  const [ca, cert, key] = files.map((f) => fs.readFileSync(f, 'utf8'));
  const conn: KubeConnection = { server: state.server, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  return (await apiserverReady(conn, patienceMs)) ? { kind: 'running', state } : { kind: 'unhealthy', state };
}

/**
 * Reports whether a healthy local cluster runs from `stateDir`: every component process is alive and the
 * apiserver answers /readyz (given up to 10 s, since a loaded apiserver is slow, not dead). The handle is
 * returned only when running.
 */
export async function clusterStatus(opts: { stateDir?: string } = {}): Promise<{ running: boolean; handle?: ClusterHandle }> {
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  const found = await inspect(stateDir, 10_000);
  return found.kind === 'running' ? { running: true, handle: handleFrom(found.state, stateDir) } : { running: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Start

interface StartContext {
  l: ReturnType<typeof layout>;
  log: (s: string) => void;
  t0: number;
  pids: Partial<Record<Component, number>>;
}

function step(ctx: StartContext, msg: string): void {
  ctx.log(`[cluster +${((Date.now() - ctx.t0) / 1000).toFixed(2)}s] ${msg}`);
}

/** Polls `check` until it returns true; fails early with the log tail if the component's process died. */
async function waitFor(ctx: StartContext, component: Component, what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      if (await check()) return;
      lastErr = '';
    } catch (err) {
      lastErr = (err as Error).message;
    }
    const pid = ctx.pids[component];
    if (pid !== undefined && !pidAlive(pid)) {
      throw new ClusterError(component, `process ${pid} exited while waiting for ${what} (log: ${path.join(ctx.l.logs, `${component}.log`)})`, logTail(ctx.l.stateDir, component));
    }
    if (Date.now() > deadline) {
      throw new ClusterError(
        component,
        `not ${what} after ${timeoutMs / 1000}s${lastErr ? ` (last error: ${lastErr})` : ''} (log: ${path.join(ctx.l.logs, `${component}.log`)})`,
        logTail(ctx.l.stateDir, component),
      );
    }
    await sleep(100);
  }
}

async function httpOk(conn: KubeConnection, urlPath: string): Promise<boolean> {
  const res = await kubeRequest(conn, 'GET', urlPath, undefined, { timeoutMs: 2000 });
  return res.status === 200;
}

function writeKubeconfig(file: string, server: string, pki: Pki): void {
  const b64 = (f: string): string => fs.readFileSync(f).toString('base64');
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'anchore-operator-local', cluster: { server, 'certificate-authority-data': b64(pki.caCert) } }],
    users: [{ name: 'kubernetes-admin', user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) } }],
    contexts: [{ name: 'anchore-operator-local', context: { cluster: 'anchore-operator-local', user: 'kubernetes-admin', namespace: 'default' } }],
    'current-context': 'anchore-operator-local',
    preferences: {},
  };
  fs.writeFileSync(file, stringifyYaml(cfg), { mode: 0o600 });
}

/** Pod capacity per fake node: at least 1000, and enough that the fleet holds FLEET_POD_CAPACITY pods. */
function podsPerNode(nodes: number): number {
  return Math.max(1000, Math.ceil(FLEET_POD_CAPACITY / nodes / 100) * 100);
}

function nodeName(i: number): string {
  return `kwok-node-${i}`;
}

/** The kubelet version fake nodes claim: the apiserver's own, read from build-binaries.sh's cache layout. */
function kubeletVersion(bins: Record<string, string>): string {
  return /\/kube-(v\d+\.\d+\.\d+[^/]*)\//.exec(bins['KUBE_APISERVER'] ?? '')?.[1] ?? FALLBACK_KUBELET_VERSION;
}

function nodeManifest(i: number, nodes: number, version: string): Record<string, unknown> {
  const name = nodeName(i);
  const resources = { cpu: '32', memory: '256Gi', pods: String(podsPerNode(nodes)), 'ephemeral-storage': '500Gi' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': 'kwok-32x256',
        'topology.kubernetes.io/region': 'local',
        'topology.kubernetes.io/zone': `local-${String.fromCharCode(97 + (i % 3))}`,
      },
    },
    spec: {
      // Own /16 per node so kwok can hand out more pod IPs than a node holds pods.
      podCIDR: `10.${128 + i}.0.0/16`,
      podCIDRs: [`10.${128 + i}.0.0/16`],
      providerID: `kwok://${name}`,
    },
    // Nodes may carry status on create (the kubelet registers this way); kwok's node-initialize stage keeps it.
    status: {
      capacity: resources,
      allocatable: resources,
      addresses: [
        { type: 'InternalIP', address: `10.127.${Math.floor(i / 250)}.${(i % 250) + 2}` },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: '',
        containerRuntimeVersion: 'containerd://2.0.0',
        kernelVersion: '6.8.0-60-generic',
        kubeProxyVersion: version,
        kubeletVersion: version,
        machineID: '',
        operatingSystem: 'linux',
        osImage: 'Ubuntu 24.04.2 LTS',
        systemUUID: '',
      },
    },
  };
}

async function ensureNodes(conn: KubeConnection, nodes: number, version: string): Promise<void> {
  const wanted = new Set(Array.from({ length: nodes }, (_, i) => nodeName(i)));
  const list = await kubeRequest(conn, 'GET', '/api/v1/nodes?labelSelector=type%3Dkwok');
  const existing = new Set(((list.body as { items?: { metadata: { name: string } }[] }).items ?? []).map((n) => n.metadata.name));
  for (const name of existing) {
    if (!wanted.has(name)) await kubeRequest(conn, 'DELETE', `/api/v1/nodes/${name}`);
  }
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      if (existing.has(nodeName(i))) return;
      const res = await kubeRequest(conn, 'POST', '/api/v1/nodes', nodeManifest(i, nodes, version));
      if (res.status !== 201 && res.status !== 409) throw new ClusterError('kube-apiserver', `creating node ${nodeName(i)}: HTTP ${res.status} ${res.text}`);
    }),
  );
}

interface NodeList {
  items?: { spec?: { taints?: unknown[] }; status?: { conditions?: { type: string; status: string }[] } }[];
}

async function nodesSchedulable(conn: KubeConnection, nodes: number): Promise<boolean> {
  const res = await kubeRequest(conn, 'GET', '/api/v1/nodes?labelSelector=type%3Dkwok');
  const items = (res.body as NodeList).items ?? [];
  // Ready (kwok's node-initialize ran) and untainted (KCM's node lifecycle controller lifted the not-ready taint
  // that TaintNodesByCondition admission puts on new nodes).
  const ok = items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && (n.spec?.taints ?? []).length === 0);
  return ok.length === nodes;
}

async function pickPorts(previous: Ports | undefined): Promise<Ports> {
  const fresh = await freePorts(6);
  const keys: (keyof Ports)[] = ['etcdClient', 'etcdPeer', 'apiserver', 'controllerManager', 'scheduler', 'kwok'];
  const ports = {} as Ports;
  for (const [i, k] of keys.entries()) {
    // A kept cluster gets its old ports back when free: etcd remembers its peer URL and users their KUBECONFIG.
    const old = previous?.[k];
    ports[k] = old !== undefined && (await portFree(old)) && !fresh.includes(old) ? old : (fresh[i] ?? 0);
  }
  return ports;
}

async function stopPids(stateDir: string, state: ClusterState | undefined): Promise<void> {
  const l = layout(stateDir);
  // Reverse start order: kwok/scheduler/KCM first so nothing reconnect-storms a stopping apiserver.
  for (const c of [...COMPONENTS].reverse()) {
    const pid = state?.pids[c] ?? Number(readFileOr(path.join(l.pids, `${c}.pid`), '0'));
    const bin = state ? binaryFor(c, state.binaries) : '';
    if (pid && (bin ? isOurProcess(pid, bin) : pidAlive(pid))) await terminate(pid, c === 'etcd' || c === 'kube-apiserver' ? 10_000 : 5_000);
    fs.rmSync(path.join(l.pids, `${c}.pid`), { force: true });
  }
}

/**
 * Starts the local cluster (or reuses a healthy one already running from `stateDir`) and returns its handle.
 * Prints each step with the elapsed time. On failure the started processes are stopped, the state directory (with
 * logs) is kept, and a ClusterError carrying the failing component's log tail is thrown.
 */
export async function startLocalCluster(opts: { stateDir?: string; nodes?: number; log?: (s: string) => void; startedBy?: string } = {}): Promise<ClusterHandle> {
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  const nodes = opts.nodes ?? 3;
  const log = opts.log ?? defaultLog;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 120) throw new Error(`nodes must be 1..120, got ${nodes}`);
  const l = layout(stateDir);
  // Long wait: the holder may be doing a cold binary build (20+ min).
  return withLock(l.lock, 'cluster start/stop', log, 95 * 60_000, async () => {
    const ctx: StartContext = { l, log, t0: Date.now(), pids: {} };
    // All processes alive but slow: give the apiserver a minute before declaring it broken and restarting it.
    const found = await inspect(stateDir, 60_000);
    if (found.kind === 'running') {
      step(ctx, `reusing running cluster at ${found.state.server} (state ${stateDir})`);
      return handleFrom(found.state, stateDir);
    }
    if (found.kind === 'unhealthy') step(ctx, 'found an unhealthy cluster (a component died or the apiserver does not answer): restarting it, data kept');
    const previous = readState(l.stateFile);
    if (previous) {
      // A kept cluster, or leftovers of a crashed/half-started one: stop whatever still runs, keep the data.
      await stopPids(stateDir, previous);
      fs.rmSync(l.stateFile, { force: true });
    }

    step(ctx, `binaries: checking cache ${path.join(cacheRoot(), 'bin')}`);
    const bins = await ensureBinaries((s) => step(ctx, s));
    step(ctx, 'binaries: ready');

    for (const d of [l.logs, l.pids]) fs.mkdirSync(d, { recursive: true });
    fs.mkdirSync(l.etcdData, { recursive: true, mode: 0o700 });
    const pki = ensurePki(l.pki);
    step(ctx, `pki: ${l.pki}`);

    const ports = await pickPorts(previous?.ports);
    const server = `https://127.0.0.1:${ports.apiserver}`;
    writeKubeconfig(l.kubeconfig, server, pki);
    fs.copyFileSync(path.join(moduleDir, 'kwok-stages.yaml'), l.kwokConfig);
    fs.writeFileSync(
      l.schedulerConfig,
      stringifyYaml({
        apiVersion: 'kubescheduler.config.k8s.io/v1',
        kind: 'KubeSchedulerConfiguration',
        // Default client QPS (50) would make scheduling 10,000 benchmark pods take minutes.
        clientConnection: { kubeconfig: l.kubeconfig, qps: 5000, burst: 10000 },
        leaderElection: { leaderElect: false },
      }),
    );
    const conn = adminConnection(pki, server);

    try {
      ctx.pids.etcd = launch(l, 'etcd', bins['ETCD'] ?? '', [
        '--name=local',
        `--data-dir=${l.etcdData}`,
        `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-cluster=local=http://127.0.0.1:${ports.etcdPeer}`,
        // Test data is disposable: skipping fsync makes every write ~10x cheaper.
        '--unsafe-no-fsync=true',
        '--quota-backend-bytes=8589934592',
        '--auto-compaction-mode=periodic',
        '--auto-compaction-retention=5m',
        '--log-level=warn',
      ]);
      step(ctx, `etcd: started pid ${ctx.pids.etcd} on 127.0.0.1:${ports.etcdClient}`);
      await waitFor(
        ctx,
        'etcd',
        'healthy',
        async () => {
          const res = await kubeRequest({ server: `http://127.0.0.1:${ports.etcdClient}` }, 'GET', '/health', undefined, { timeoutMs: 1000 });
          return res.status === 200 && (res.body as { health?: string }).health === 'true';
        },
        30_000,
      );
      step(ctx, 'etcd: healthy');

      ctx.pids['kube-apiserver'] = launch(l, 'kube-apiserver', bins['KUBE_APISERVER'] ?? '', [
        `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
        '--bind-address=127.0.0.1',
        // What the `kubernetes` Service endpoints point at. Endpoints reject loopback IPs, so use an address from
        // the fake node network; nothing in-cluster really dials it (kwok pods never run).
        '--advertise-address=10.127.255.1',
        `--secure-port=${ports.apiserver}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--token-auth-file=${pki.tokenFile}`,
        // Front-proxy (requestheader) auth, as kubeadm sets it up: KCM and the scheduler read this CA from the
        // extension-apiserver-authentication ConfigMap, and aggregated APIServices work.
        `--requestheader-client-ca-file=${pki.caCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${pki.frontProxyCert}`,
        `--proxy-client-key-file=${pki.frontProxyKey}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--allow-privileged=true',
        // Speed over protection: a single-user test apiserver needs no fairness queuing or inflight caps.
        '--enable-priority-and-fairness=false',
        '--max-requests-inflight=0',
        '--max-mutating-requests-inflight=0',
        '--profiling=false',
        '--event-ttl=30m',
      ]);
      step(ctx, `kube-apiserver: started pid ${ctx.pids['kube-apiserver']} on ${server}`);
      await waitFor(ctx, 'kube-apiserver', 'ready', () => httpOk(conn, '/readyz'), 60_000);
      step(ctx, 'kube-apiserver: ready');

      ctx.pids['kube-controller-manager'] = launch(l, 'kube-controller-manager', bins['KUBE_CONTROLLER_MANAGER'] ?? '', [
        `--kubeconfig=${l.kubeconfig}`,
        `--authentication-kubeconfig=${l.kubeconfig}`,
        `--authorization-kubeconfig=${l.kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.controllerManager}`,
        // The default is /usr/libexec/kubernetes/..., which KCM would create on the host.
        `--flex-volume-plugin-dir=${path.join(stateDir, 'flexvolume')}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        '--leader-elect=false',
        // Each controller acts as its own service account (system:serviceaccount:kube-system:replicaset-controller,
        // …), as kubeadm and kind run it: admission sees the identity real clusters show it, not the admin's.
        '--use-service-account-credentials=true',
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--cluster-signing-cert-file=${pki.caCert}`,
        `--cluster-signing-key-file=${pki.caKey}`,
        '--kube-api-qps=5000',
        '--kube-api-burst=10000',
        '--concurrent-deployment-syncs=10',
        '--concurrent-replicaset-syncs=10',
        '--concurrent-namespace-syncs=20',
      ]);
      ctx.pids['kube-scheduler'] = launch(l, 'kube-scheduler', bins['KUBE_SCHEDULER'] ?? '', [
        `--config=${l.schedulerConfig}`,
        `--authentication-kubeconfig=${l.kubeconfig}`,
        `--authorization-kubeconfig=${l.kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.scheduler}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
      ]);
      ctx.pids.kwok = launch(l, 'kwok', bins['KWOK'] ?? '', [
        `--kubeconfig=${l.kubeconfig}`,
        `--config=${l.kwokConfig}`,
        `--manage-nodes-with-annotation-selector=${NODE_ANNOTATION}=fake`,
        '--node-lease-duration-seconds=40',
        '--cidr=10.126.0.0/16',
        '--node-ip=10.127.255.254',
        `--server-address=127.0.0.1:${ports.kwok}`,
      ]);
      step(ctx, `kube-controller-manager, kube-scheduler, kwok: started (pids ${ctx.pids['kube-controller-manager']}, ${ctx.pids['kube-scheduler']}, ${ctx.pids.kwok})`);

      await ensureNodes(conn, nodes, kubeletVersion(bins));
      step(ctx, `nodes: ${nodes} fake nodes registered (${podsPerNode(nodes)} pods each)`);

      const local = (port: number): KubeConnection => ({ server: `https://127.0.0.1:${port}`, ca: conn.ca ?? '' });
      await Promise.all([
        waitFor(ctx, 'kube-controller-manager', 'healthy', () => httpOk(local(ports.controllerManager), '/healthz'), 60_000),
        waitFor(ctx, 'kube-scheduler', 'healthy', () => httpOk(local(ports.scheduler), '/healthz'), 60_000),
        waitFor(ctx, 'kwok', 'healthy', () => httpOk({ server: `http://127.0.0.1:${ports.kwok}` }, '/healthz'), 60_000),
      ]);
      step(ctx, 'kube-controller-manager, kube-scheduler, kwok: healthy');

      await waitFor(ctx, 'kwok', 'nodes Ready and untainted', () => nodesSchedulable(conn, nodes), 60_000);
      step(ctx, 'nodes: Ready, untainted');
      // Pods are rejected by ServiceAccount admission until KCM created the namespace's default SA.
      await waitFor(ctx, 'kube-controller-manager', 'default ServiceAccount created', () => httpOk(conn, '/api/v1/namespaces/default/serviceaccounts/default'), 60_000);
      await waitFor(ctx, 'kube-controller-manager', 'kube-root-ca.crt published', () => httpOk(conn, '/api/v1/namespaces/default/configmaps/kube-root-ca.crt'), 60_000);
      step(ctx, 'controllers: default ServiceAccount and kube-root-ca.crt present');
    } catch (err) {
      await stopPids(stateDir, { version: 1, server, ports, nodes, binaries: bins, pids: ctx.pids, startedAt: '' });
      throw err;
    }

    const state: ClusterState = {
      version: 1,
      server,
      ports,
      nodes,
      binaries: bins,
      pids: ctx.pids,
      startedAt: new Date().toISOString(),
      startedBy: opts.startedBy ?? 'api',
    };
    fs.writeFileSync(l.stateFile, JSON.stringify(state, null, 2));
    step(ctx, `cluster ready: ${server} (kubeconfig ${l.kubeconfig}, logs ${l.logs})`);
    return handleFrom(state, stateDir);
  });
}

/**
 * Stops every component of the local cluster in `stateDir` and deletes the state directory, unless `keepData`
 * (then etcd data, PKI, kubeconfig and logs stay and the next start resumes the same cluster). Safe to call
 * when nothing runs.
 */
export async function stopLocalCluster(opts: { stateDir?: string; keepData?: boolean } = {}): Promise<void> {
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  if (!fs.existsSync(stateDir)) return;
  const l = layout(stateDir);
  await withLock(l.lock, 'cluster start/stop', defaultLog, 5 * 60_000, async () => {
    const state = readState(l.stateFile);
    await stopPids(stateDir, state);
    // A kept cluster remembers its ports (without pids) so the next start hands out the same server URL.
    if (opts.keepData && state) fs.writeFileSync(l.stateFile, JSON.stringify({ ...state, pids: {} }, null, 2));
    else fs.rmSync(l.stateFile, { force: true });
  });
  if (!opts.keepData) fs.rmSync(stateDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Users: several test runs (or sessions) may share one cluster; each registers while it uses it so that a
// finishing run never stops the cluster under another.

/** Registers process `pid` as using the cluster in `stateDir`. */
export function addClusterUser(opts: { stateDir?: string; pid?: number } = {}): void {
  const l = layout(path.resolve(opts.stateDir ?? defaultStateDir()));
  fs.mkdirSync(l.users, { recursive: true });
  fs.writeFileSync(path.join(l.users, String(opts.pid ?? process.pid)), new Date().toISOString());
}

/**
 * Unregisters `pid` and reports who else still uses the cluster (dead registrants are dropped) and who started
 * it, so a teardown can decide whether stopping is safe.
 */
export function releaseClusterUser(opts: { stateDir?: string; pid?: number } = {}): { otherUsers: number[]; startedBy?: string } {
  const l = layout(path.resolve(opts.stateDir ?? defaultStateDir()));
  const me = opts.pid ?? process.pid;
  fs.rmSync(path.join(l.users, String(me)), { force: true });
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(l.users);
  } catch {
    /* nobody registered */
  }
  const otherUsers: number[] = [];
  for (const e of entries) {
    const pid = Number(e);
    if (pid && pid !== me && pidAlive(pid)) otherUsers.push(pid);
    else fs.rmSync(path.join(l.users, e), { force: true });
  }
  const startedBy = readState(l.stateFile)?.startedBy;
  return startedBy === undefined ? { otherUsers } : { otherUsers, startedBy };
}
