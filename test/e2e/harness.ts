// Runs the operator the way the Helm chart would, but as local processes: the Deployment the chart rendered gives the
// environment, the mounted Secrets/ConfigMaps become files, and the kube identity is the chart's ServiceAccount
// (a TokenRequest token) — so the RBAC the chart grants is exactly what the process has. Used on the local control
// plane (where kwok only pretends to run pods) and on kind alike.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { freePorts } from '../cluster/local-cluster.ts';
import { eventually, getJson, kubectl, testCluster } from '../support/k8s.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = join(ROOT, 'deploy', 'helm', 'anchore-operator');

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Runs helm against the test cluster; throws with helm's stderr. */
export async function helm(args: string[]): Promise<string> {
  const { helm: bin, kubeconfig } = testCluster();
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(bin, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === 'object' && typeof m.kind === 'string');
}

export async function releaseManifests(release: string, namespace: string): Promise<Manifest[]> {
  return parseManifests(await helm(['get', 'manifest', release, '-n', namespace]));
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: unknown;
}
interface Container {
  name: string;
  env?: EnvVar[];
  envFrom?: Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  ports?: Array<{ name?: string; containerPort: number }>;
}
interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  volumes?: Volume[];
}

/** The pieces of the rendered Deployment a local process needs. */
export interface RenderedOperator {
  namespace: string;
  serviceAccount: string;
  container: Container;
  podSpec: PodSpec;
  deployment: Manifest;
}

export function renderedOperator(manifests: Manifest[], namespace: string): RenderedOperator {
  const deployment = manifests.find((m) => m.kind === 'Deployment');
  if (!deployment) throw new Error('the chart rendered no Deployment');
  const podSpec = (deployment.spec as { template: { spec: PodSpec } }).template.spec;
  const container = podSpec.containers.find((c) => c.name === 'operator') ?? podSpec.containers[0]!;
  return { namespace, serviceAccount: podSpec.serviceAccountName ?? 'default', container, podSpec, deployment };
}

function decode(data: Record<string, string> | undefined, binary: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = binary ? Buffer.from(v, 'base64').toString('utf8') : v;
  return out;
}

async function secretData(namespace: string, name: string): Promise<Record<string, string>> {
  const s = await getJson<{ data?: Record<string, string> }>(['secret', name, '-n', namespace]);
  return decode(s.data, true);
}
async function configMapData(namespace: string, name: string): Promise<Record<string, string>> {
  const c = await getJson<{ data?: Record<string, string> }>(['configmap', name, '-n', namespace]);
  return decode(c.data, false);
}

/** A kubeconfig for the ServiceAccount: the test cluster's server and CA, a short-lived TokenRequest token. */
export async function serviceAccountKubeconfig(namespace: string, serviceAccount: string, dir: string): Promise<{ path: string; token: string }> {
  const token = (await kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=1h'])).trim();
  const view = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json'])) as {
    clusters: Array<{ cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string; 'insecure-skip-tls-verify'?: boolean } }>;
  };
  const cluster = view.clusters[0]!.cluster;
  const kc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster }],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: serviceAccount, namespace } }],
    'current-context': 'e2e',
  };
  const path = join(dir, `${serviceAccount}.kubeconfig`);
  writeFileSync(path, JSON.stringify(kc), { mode: 0o600 });
  return { path, token };
}

/**
 * The process environment the rendered container would get, with files from its Secret/ConfigMap volumes written
 * under `dir` (env values naming a mounted path are rewritten to the local copy). Ports are replaced by free local ones.
 */
export async function processEnv(r: RenderedOperator, podName: string, dir: string): Promise<{ env: Record<string, string>; healthPort: number; metricsPort: number }> {
  const env: Record<string, string> = {};
  for (const from of r.container.envFrom ?? []) {
    if (from.secretRef) Object.assign(env, await secretData(r.namespace, from.secretRef.name));
    if (from.configMapRef) Object.assign(env, await configMapData(r.namespace, from.configMapRef.name));
  }
  for (const e of r.container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const vf = e.valueFrom;
    if (!vf) continue;
    if (vf.fieldRef) {
      const f = vf.fieldRef.fieldPath;
      env[e.name] = f === 'metadata.name' ? podName : f === 'metadata.namespace' ? r.namespace : f === 'spec.serviceAccountName' ? r.serviceAccount : '';
    } else if (vf.secretKeyRef) {
      const v = (await secretData(r.namespace, vf.secretKeyRef.name))[vf.secretKeyRef.key];
      if (v !== undefined) env[e.name] = v;
    } else if (vf.configMapKeyRef) {
      const v = (await configMapData(r.namespace, vf.configMapKeyRef.name))[vf.configMapKeyRef.key];
      if (v !== undefined) env[e.name] = v;
    }
  }
  // Materialise mounted Secrets and ConfigMaps, and point env values at the copies.
  const mounts: Array<{ from: string; to: string }> = [];
  for (const m of r.container.volumeMounts ?? []) {
    const vol = r.podSpec.volumes?.find((v) => v.name === m.name);
    if (!vol || (!vol.secret && !vol.configMap)) continue;
    const local = join(dir, `${podName}-${m.name}`);
    mkdirSync(local, { recursive: true });
    const data = vol.secret ? await secretData(r.namespace, vol.secret.secretName) : await configMapData(r.namespace, vol.configMap!.name);
    const items = (vol.secret ?? vol.configMap)!.items;
    for (const [key, value] of Object.entries(data)) {
      const path = items ? items.find((i) => i.key === key)?.path : key;
      if (path === undefined) continue;
      mkdirSync(dirname(join(local, path)), { recursive: true });
      writeFileSync(join(local, path), value, { mode: 0o600 });
    }
    mounts.push({ from: m.mountPath.replace(/\/+$/, ''), to: local });
  }
  for (const [k, v] of Object.entries(env)) {
    const m = mounts.find((x) => v === x.from || v.startsWith(`${x.from}/`));
    if (m) env[k] = m.to + v.slice(m.from.length);
  }
  const [healthPort, metricsPort] = (await freePorts(2)) as [number, number];
  env['HEALTH_PORT'] = String(healthPort);
  env['METRICS_PORT'] = String(metricsPort);
  env['BIND_ADDRESS'] = '127.0.0.1';
  return { env, healthPort, metricsPort };
}

/** One operator replica as a child process (`node src/main.ts`). */
export class Replica {
  readonly name: string;
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly output: string[] = [];
  readonly env: Record<string, string>;
  #child: ChildProcess;
  #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(name: string, env: Record<string, string>, ports: { healthPort: number; metricsPort: number }) {
    this.name = name;
    this.env = env;
    this.healthPort = ports.healthPort;
    this.metricsPort = ports.metricsPort;
    // Only what the container would have: no inherited KUBECONFIG or credentials from the test process.
    const base: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' };
    this.#child = spawn(process.execPath, [join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child.stdout?.on('data', (b: Buffer) => this.output.push(b.toString()));
    this.#child.stderr?.on('data', (b: Buffer) => this.output.push(b.toString()));
    this.#exit = new Promise((resolve) =>
      this.#child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      }),
    );
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  log(): string {
    return this.output.join('');
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    await eventually(
      async () => {
        if (this.exited) throw new Error(`replica ${this.name} exited (${JSON.stringify(this.exited)}):\n${this.log().slice(-3000)}`);
        const res = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
      200,
    );
  }

  /** Whether the replica's leader gauge says it leads (undefined when the scrape fails). */
  async leads(token?: string): Promise<boolean | undefined> {
    const text = await this.metrics(token).catch(() => undefined);
    const m = text === undefined ? null : /^anchore_operator_leader(?:\{[^}]*\})? (\d+)/m.exec(text);
    return m ? m[1] === '1' : undefined;
  }

  async metrics(token?: string): Promise<string> {
    const secure = this.env['METRICS_SECURE'] === 'true';
    if (!secure) {
      const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
      if (res.status !== 200) throw new Error(`metrics: HTTP ${res.status}`);
      return res.text();
    }
    const { Agent, request } = await import('undici');
    const { readFileSync } = await import('node:fs');
    const ca = readFileSync(this.env['METRICS_CERT_FILE']!, 'utf8');
    // The chain is verified against the chart's certificate; the name is the Service's, not 127.0.0.1.
    const dispatcher = new Agent({ connect: { ca, checkServerIdentity: () => undefined } });
    try {
      const res = await request(`https://127.0.0.1:${this.metricsPort}/metrics`, { dispatcher, headers: token ? { authorization: `Bearer ${token}` } : {} });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`metrics: HTTP ${res.statusCode}: ${body.trim()}`);
      return body;
    } finally {
      await dispatcher.close();
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child.kill(signal);
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exited) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    const r = await this.#exit;
    clearTimeout(timer);
    return r;
  }

  wait(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exit;
  }
}

/** Starts one replica with the release's rendered config and ServiceAccount identity. */
export async function startReplica(release: string, namespace: string, podName: string, work: string, extraEnv: Record<string, string> = {}): Promise<Replica> {
  const r = renderedOperator(await releaseManifests(release, namespace), namespace);
  const kc = await serviceAccountKubeconfig(namespace, r.serviceAccount, work);
  const { env, healthPort, metricsPort } = await processEnv(r, podName, work);
  env['KUBECONFIG'] = kc.path;
  return new Replica(podName, { ...env, ...extraEnv }, { healthPort, metricsPort });
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
