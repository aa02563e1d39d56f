// The benchmarks' own view of the cluster: a small raw HTTPS client (no code under test), bulk creation with bounded
// parallelism, and a streaming pod watch that timestamps when each pod is first seen Running (and resumes, as informers
// do, when the apiserver ends it).
import * as http from 'node:http';
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

export interface RunningSeen {
  /** ms since the epoch: when this process handled the event (or the re-list) that first showed the pod Running. */
  at: number;
  imageIDs: string[];
  /**
   * First seen Running by a re-list after the watch had lost its place (410 Gone): `at` is only when the list was
   * read, later than the pod turned Running, so latencies from it are not measured.
   */
  viaRelist?: boolean;
}

/** How the benchmark's own pod watch fared (its figures come from it). */
export interface PodWatchHealth {
  /** Watch requests started again from the last resourceVersion after the apiserver (or the network) ended one. */
  resumes: number;
  /** Full re-lists after the resourceVersion had become too old (410 Gone, as a response status or an ERROR event). */
  relists: number;
  /** ERROR events received (each carries a Status: 410 leads to a re-list, anything else to a resume). */
  errorEvents: number;
  /** The last problem seen (an ERROR event's message, an HTTP status, a transport error). */
  lastError?: string;
}

export interface PodWatch {
  /** First time (ms since epoch) each pod (namespace/name) was seen Running, with its container imageIDs. */
  running: Map<string, RunningSeen>;
  /** When each pod was seen deleted (a DELETED event, or gone from a re-list), ms since the epoch. */
  deleted: Map<string, number>;
  health(): PodWatchHealth;
  stop(): void;
}

export interface WatchOptions {
  /** timeoutSeconds of each watch request: the apiserver ends it then, and it is resumed. Default 1800. */
  timeoutSeconds?: number;
  /** Where the watch says it resumed or re-listed (default: stderr, prefixed [bench]). */
  log?: (line: string) => void;
  /**
   * Delay before resuming a watch request that ended without delivering any event (doubled, up to 5 s, while that
   * repeats); one that delivered events is resumed at once. Default 100 ms.
   */
  retryDelayMs?: number;
}

interface PodObject {
  metadata: { namespace: string; name: string; resourceVersion?: string };
  status?: { phase?: string; containerStatuses?: Array<{ imageID?: string }> };
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: PodObject & { code?: number; reason?: string; message?: string };
}

/** 410 Gone / Expired: the resourceVersion is no longer in the apiserver's watch cache. */
const isGone = (o: { code?: number; reason?: string }): boolean => o.code === 410 || o.reason === 'Expired' || o.reason === 'Gone';

/**
 * Watches pods matching a selector from "now" and records when each is first seen Running, and when each is deleted.
 * Like a client-go informer, it never gives up: when the apiserver ends the watch (its timeout, a restart, a dropped
 * connection, an ERROR event) it resumes from the last resourceVersion it saw (bookmarks keep that fresh), and when
 * that version is gone (410) it lists again and goes on from the list. Pods first seen Running by such a list are
 * marked `viaRelist`: when they turned Running is not known.
 */
export async function watchRunning(conn: KubeConnection, labelSelector: string, opts: WatchOptions = {}): Promise<PodWatch> {
  const running = new Map<string, RunningSeen>();
  const deleted = new Map<string, number>();
  const health: PodWatchHealth = { resumes: 0, relists: 0, errorEvents: 0 };
  const log = opts.log ?? ((line: string) => void process.stderr.write(`[bench] ${line}\n`));
  const baseDelay = opts.retryDelayMs ?? 100;
  let delay = baseDelay;
  let rv = '';
  let stopped = false;
  let current: http.ClientRequest | undefined;
  let timer: NodeJS.Timeout | undefined;

  const keyOf = (o: PodObject): string => `${o.metadata.namespace}/${o.metadata.name}`;
  const seen = (o: PodObject, at: number, viaRelist: boolean): void => {
    const key = keyOf(o);
    if (o.status?.phase === 'Running' && !running.has(key) && !deleted.has(key)) {
      running.set(key, { at, imageIDs: (o.status.containerStatuses ?? []).map((c) => c.imageID ?? ''), ...(viaRelist ? { viaRelist } : {}) });
    }
  };

  /** Lists every matching pod (paged): records the Running ones not seen yet and the ones gone, and takes its version. */
  const relist = async (): Promise<void> => {
    const at = Date.now();
    const present = new Set<string>();
    let cont = '';
    let version = '';
    do {
      const q = new URLSearchParams({ labelSelector, limit: '500' });
      if (cont) q.set('continue', cont);
      const page = (await req(conn, 'GET', `/api/v1/pods?${q}`)) as { items: PodObject[]; metadata: { resourceVersion: string; continue?: string } };
      if (!version) version = page.metadata.resourceVersion;
      for (const o of page.items) {
        present.add(keyOf(o));
        seen(o, at, true);
      }
      cont = page.metadata.continue ?? '';
    } while (cont);
    // A pod seen before and missing from the list was deleted while the watch was away.
    for (const key of running.keys()) if (!present.has(key) && !deleted.has(key)) deleted.set(key, at);
    rv = version;
  };

  /** After a watch request ended: resume at once if it had delivered events, else after a growing delay. */
  const again = (why: string, gone: boolean, delivered: boolean): void => {
    if (stopped) return;
    health.lastError = why;
    if (gone) health.relists++;
    else health.resumes++;
    log(`pod watch ${gone ? 're-listing' : 'resuming'} (${why})`);
    const wait = delivered ? 0 : delay;
    delay = delivered ? baseDelay : Math.min(5000, delay * 2);
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      (gone ? relist() : Promise.resolve()).then(watch, (err: unknown) => again(`re-list failed: ${(err as Error).message}`, true, false));
    }, wait);
  };

  const watch = (): void => {
    if (stopped) return;
    const q = new URLSearchParams({ labelSelector, watch: '1', resourceVersion: rv, allowWatchBookmarks: 'true', timeoutSeconds: String(opts.timeoutSeconds ?? 1800) });
    const url = new URL(`${conn.server}/api/v1/pods?${q}`);
    const isHttps = url.protocol === 'https:';
    let ended = false;
    let gone = false;
    let delivered = false;
    let why = 'the apiserver ended the watch';
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (current === request) current = undefined;
      again(why, gone, delivered);
    };
    const request = (isHttps ? https : http).request(url, {
      method: 'GET',
      headers: { Accept: 'application/json', ...(conn.token ? { Authorization: `Bearer ${conn.token}` } : {}) },
      ...(isHttps ? { ...(conn.ca ? { ca: conn.ca } : {}), ...(conn.cert ? { cert: conn.cert } : {}), ...(conn.key ? { key: conn.key } : {}) } : {}),
      agent: false,
    });
    current = request;
    request.on('response', (res) => {
      if (res.statusCode !== 200) {
        gone = res.statusCode === 410;
        why = `watch answered HTTP ${res.statusCode ?? 0}`;
        res.resume();
        res.on('end', end);
        res.on('close', end);
        return;
      }
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
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line) as WatchEvent;
          } catch {
            why = `unparsable watch line: ${line.slice(0, 100)}`;
            request.destroy();
            return;
          }
          if (ev.type === 'ERROR') {
            health.errorEvents++;
            gone = isGone(ev.object);
            why = `ERROR event: ${ev.object.code ?? '?'} ${ev.object.reason ?? ''} ${ev.object.message ?? ''}`.trim();
            // The apiserver ends the stream after an ERROR event; do not wait for it.
            request.destroy();
            return;
          }
          delivered = true;
          const o = ev.object;
          if (o.metadata.resourceVersion) rv = o.metadata.resourceVersion;
          if (ev.type === 'BOOKMARK') continue;
          if (ev.type === 'DELETED') {
            if (!deleted.has(keyOf(o))) deleted.set(keyOf(o), at);
          } else seen(o, at, false);
        }
      });
      res.on('end', end);
      res.on('close', end);
      res.on('error', (err) => (why = `watch stream error: ${err.message}`));
    });
    request.on('error', (err) => {
      if (!ended) why = `watch request error: ${err.message}`;
      end();
    });
    request.on('close', end);
    request.end();
  };

  // "From now": only the list's version is taken, not its pods.
  const first = (await req(conn, 'GET', `/api/v1/pods?${new URLSearchParams({ labelSelector, limit: '1' })}`)) as { metadata: { resourceVersion: string } };
  rv = first.metadata.resourceVersion;
  watch();
  return {
    running,
    deleted,
    health: () => ({ ...health }),
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.destroy();
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
