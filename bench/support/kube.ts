// The benchmarks' own view of the cluster: a small raw HTTPS client (no code under test), bulk creation with bounded
// parallelism, and a streaming pod watch that timestamps when each pod is first seen Running.
import * as https from 'node:https';
import { type KubeConnection, connectionFromKubeconfig, kubeRequest } from '../../test/cluster/kube-api.ts';

export type { KubeConnection };
export { connectionFromKubeconfig };

/** Digest of an imageID "<repo>@sha256:<hex>" (undefined for a bare config id). */
export function digestOf(imageID: string): string | undefined {
  return /@(sha256:[a-f0-9]{64})$/.exec(imageID)?.[1];
}

/**
 * Keep-alive connections per apiserver: a TLS handshake per request (about 10 ms of CPU each) at 100 requests per
 * second kept the benchmark's own event loop busy, and its timestamps late with it.
 */
const agents = new WeakMap<KubeConnection, https.Agent>();
function agentFor(conn: KubeConnection): https.Agent {
  let a = agents.get(conn);
  if (!a) {
    a = new https.Agent({ keepAlive: true, maxSockets: 64, ...(conn.ca ? { ca: conn.ca } : {}), ...(conn.cert ? { cert: conn.cert } : {}), ...(conn.key ? { key: conn.key } : {}) });
    agents.set(conn, a);
  }
  return a;
}

export async function req(conn: KubeConnection, method: string, path: string, body?: unknown, okStatuses: number[] = [200, 201, 202]): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const res = await kubeRequest(conn, method, path, body, { timeoutMs: 60_000, ...(conn.server.startsWith('https:') ? { agent: agentFor(conn) } : {}) });
    if (okStatuses.includes(res.status)) return res.body;
    // The apiserver sheds load with 429 (and 5xx while restarting): back off and retry, as clients do.
    if ((res.status === 429 || res.status >= 500) && attempt < 20) {
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      continue;
    }
    throw new Error(`${method} ${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function parallel<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export async function createNamespace(conn: KubeConnection, name: string, labels: Record<string, string>): Promise<void> {
  await req(conn, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }, [201, 409]);
}

export function deploymentBody(namespace: string, name: string, replicas: number, image: string, labels: Record<string, string>): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...labels } },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image }] },
      },
    },
  };
}

export function podBody(namespace: string, name: string, image: string, labels: Record<string, string>): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image }] },
  };
}

/** Number of Running pods matching a label selector, paging through the list. */
export async function countRunning(conn: KubeConnection, labelSelector: string): Promise<number> {
  let n = 0;
  let cont = '';
  do {
    const q = new URLSearchParams({ labelSelector, fieldSelector: 'status.phase=Running', limit: '2000' });
    if (cont) q.set('continue', cont);
    const body = (await req(conn, 'GET', `/api/v1/pods?${q}`)) as { items: unknown[]; metadata: { continue?: string } };
    n += body.items.length;
    cont = body.metadata.continue ?? '';
  } while (cont);
  return n;
}

export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 500, progress?: () => string): Promise<number> {
  const t0 = Date.now();
  let lastReport = t0;
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${progress ? ` (${progress()})` : ''}`);
    if (progress && Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      process.stderr.write(`[bench]   … waiting for ${what}: ${progress()}\n`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface PodWatch {
  /** First time (ms since epoch) each pod (namespace/name) was seen Running, with its container imageIDs. */
  running: Map<string, { at: number; imageIDs: string[] }>;
  stop(): void;
}

/** Watches pods matching a selector from "now" and records when each is first seen Running. */
export async function watchRunning(conn: KubeConnection, labelSelector: string): Promise<PodWatch> {
  const list = (await req(conn, 'GET', `/api/v1/pods?${new URLSearchParams({ labelSelector, limit: '1' })}`)) as { metadata: { resourceVersion: string } };
  const running = new Map<string, { at: number; imageIDs: string[] }>();
  const url = new URL(`${conn.server}/api/v1/pods?${new URLSearchParams({ labelSelector, watch: '1', resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: 'false' })}`);
  let stopped = false;
  const request = https.request(url, {
    method: 'GET',
    headers: { Accept: 'application/json', ...(conn.token ? { Authorization: `Bearer ${conn.token}` } : {}) },
    ...(conn.ca ? { ca: conn.ca } : {}),
    ...(conn.cert ? { cert: conn.cert } : {}),
    ...(conn.key ? { key: conn.key } : {}),
    agent: false,
  });
  request.on('response', (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const at = Date.now();
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: { metadata: { namespace: string; name: string }; status?: { phase?: string; containerStatuses?: Array<{ imageID?: string }> } } };
        const o = ev.object;
        const key = `${o.metadata.namespace}/${o.metadata.name}`;
        if (ev.type !== 'DELETED' && o.status?.phase === 'Running' && !running.has(key)) {
          running.set(key, { at, imageIDs: (o.status.containerStatuses ?? []).map((c) => c.imageID ?? '') });
        }
      }
    });
    res.on('end', () => {
      if (!stopped) process.stderr.write('[bench] pod watch ended early\n');
    });
  });
  request.on('error', (err) => {
    if (!stopped) process.stderr.write(`[bench] pod watch error: ${err.message}\n`);
  });
  request.end();
  return {
    running,
    stop: () => {
      stopped = true;
      request.destroy();
    },
  };
}

/** Deletes namespaces and waits until they are gone (their pods with them). */
export async function deleteNamespaces(conn: KubeConnection, names: string[], timeoutMs = 300_000): Promise<void> {
  await parallel(names, 32, async (n) => {
    await req(conn, 'DELETE', `/api/v1/namespaces/${n}`, undefined, [200, 202, 404]);
  });
  await waitFor(
    'namespaces deleted',
    async () => {
      const body = (await req(conn, 'GET', '/api/v1/namespaces')) as { items: Array<{ metadata: { name: string } }> };
      const left = new Set(body.items.map((i) => i.metadata.name));
      return names.every((n) => !left.has(n));
    },
    timeoutMs,
    1000,
  );
}
