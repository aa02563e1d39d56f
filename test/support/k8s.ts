// Small helpers the integration and e2e suites use to drive the cluster the way a user does: with kubectl.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A discovery cache of our own: kubectl's shared one (10 min TTL) does not know CRDs installed moments ago.
const discoveryCache = mkdtempSync(join(tmpdir(), 'kubectl-cache-'));

export function testCluster(): { kubeconfig: string; kubectl: string; helm: string; kind: string } {
  const kubeconfig = process.env['TEST_KUBECONFIG'];
  const kubectl = process.env['TEST_KUBECTL'];
  if (!kubeconfig || !kubectl) throw new Error('TEST_KUBECONFIG/TEST_KUBECTL unset: run through the integration project (global setup)');
  return { kubeconfig, kubectl, helm: process.env['TEST_HELM'] ?? 'helm', kind: process.env['TEST_CLUSTER_KIND'] ?? 'local' };
}

/** A DNS-1123 name unique to this run. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl against the test cluster; never throws (the caller asserts on code/stderr). */
export function kubectlRaw(args: string[], input?: string): Promise<KubectlResult> {
  const { kubeconfig, kubectl } = testCluster();
  return new Promise((resolve) => {
    const child = execFile(kubectl, ['--kubeconfig', kubeconfig, '--cache-dir', discoveryCache, ...args], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs kubectl and returns stdout; throws with stderr on failure. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await kubectlRaw(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export async function apply(yaml: string): Promise<void> {
  await kubectl(['apply', '-f', '-'], yaml);
}

export async function getJson<T = unknown>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T;
}

/** Polls `fn` until it returns a truthy value; throws with the last error/value after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Waits until a reading (a request count, an Event list…) has stayed the same for `quietMs`, and returns it: a
 * baseline for "nothing more happens" checks must not be taken while work already started is still landing.
 */
export async function quiet<T>(read: () => Promise<T> | T, quietMs = 1000, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  let last: string | undefined;
  let since = 0;
  const held = await eventually(
    async () => {
      const value = await read();
      const now = JSON.stringify(value);
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since >= quietMs) return { value };
      return undefined;
    },
    timeoutMs,
    intervalMs,
  );
  return held.value;
}

export interface PodSummary {
  name: string;
  uid: string;
  phase: string;
  containers: Array<{ name: string; image: string; imageID: string; containerID: string }>;
}

export async function runningPods(namespace: string, selector?: string): Promise<PodSummary[]> {
  const list = await getJson<{
    items: Array<{ metadata: { name: string; uid: string }; status?: { phase?: string; containerStatuses?: Array<{ name: string; image: string; imageID?: string; containerID?: string }> } }>;
  }>(['pods', '-n', namespace, ...(selector ? ['-l', selector] : [])]);
  return list.items
    .filter((p) => p.status?.phase === 'Running')
    .map((p) => ({
      name: p.metadata.name,
      uid: p.metadata.uid,
      phase: p.status?.phase ?? '',
      containers: (p.status?.containerStatuses ?? []).map((c) => ({ name: c.name, image: c.image, imageID: c.imageID ?? '', containerID: c.containerID ?? '' })),
    }));
}

/** Waits for `count` Running pods carrying imageIDs. */
export async function waitForRunningPods(namespace: string, selector: string, count: number, timeoutMs = 60_000): Promise<PodSummary[]> {
  return eventually(
    async () => {
      const pods = await runningPods(namespace, selector);
      return pods.length === count && pods.every((p) => p.containers.length > 0 && p.containers.every((c) => c.imageID)) ? pods : undefined;
    },
    timeoutMs,
    200,
  );
}

/** A Deployment manifest whose pods run both under kwok and on a real cluster (kind). */
export function deployment(namespace: string, name: string, replicas: number, containers: Array<{ name: string; image: string; command?: string[] }>): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: containers.map((c) => ({ name: c.name, image: c.image, ...(c.command ? { command: c.command } : {}) })),
        },
      },
    },
  });
}

/** A List of `n` bare pods labelled batch=<label>, each with its own image (so `n` new digests), for one apply. */
export function podList(ns: string, prefix: string, n: number, label: string, registry: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: Array.from({ length: n }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${prefix}-${i}`, namespace: ns, labels: { batch: label } },
      spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: `${registry}/${label}/img-${i}:1.0` }] },
    })),
  });
}

export function namespaceManifest(name: string, labels: Record<string, string> = {}): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

/** Digest part of an imageID ("…@sha256:…"), or undefined for a bare config id. */
export function digestOf(imageID: string): string | undefined {
  const m = /@(sha256:[a-f0-9]{64})$/.exec(imageID);
  return m?.[1];
}

/** Installs (or updates) the generated CRDs and waits until the apiserver serves them. */
export async function ensureCrds(): Promise<void> {
  const { dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'crds');
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', dir]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/anchorepolicybindings.anchore.io', 'crd/clusteranchorepolicybindings.anchore.io']);
  // Established is not yet "in discovery": wait until kubectl can resolve the short names, clearing its cache of
  // the earlier miss each time.
  await eventually(
    async () => {
      rmSync(discoveryCache, { recursive: true, force: true });
      mkdirSync(discoveryCache, { recursive: true });
      const r = await kubectlRaw(['api-resources', '--api-group=anchore.io', '-o', 'name']);
      return r.stdout.includes('anchorepolicybindings') && r.stdout.includes('clusteranchorepolicybindings');
    },
    30_000,
    250,
  );
}
