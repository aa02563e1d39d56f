import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { KubeError } from './errors.ts';
import { type KubeEndpoint, loadKubeEndpoint } from './kubeconfig.ts';

interface KubeClientOptions {
  /** Path to a kubeconfig; when absent: in-cluster config if running in a pod, else the default loading rules. */
  kubeconfig?: string;
  /** Per-request deadline for non-watch calls. */
  requestTimeoutMs?: number;
  userAgent?: string;
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
  continueToken: string | undefined;
}

export interface WatchHandle {
  abort(): void;
}

/**
 * The operator's only door to the apiserver. Reads and writes JSON directly (no generated-model deserialisation:
 * it is slow and memory-hungry at 10,000 pods) over the shared agent; watches use client-node's Watch.
 */
export class KubeClient {
  readonly server: string;
  readonly endpoint: KubeEndpoint;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  #agent: Promise<Agent> | undefined;
  #headers: { value: Record<string, string>; at: number } | undefined;
  /** client-node's KubeConfig, loaded only for exec / auth-provider users (see kubeconfig.ts). */
  #plugin: Promise<{ applyToHTTPSOptions(o: unknown): Promise<void> }> | undefined;

  constructor(opts: KubeClientOptions = {}) {
    this.endpoint = loadKubeEndpoint(opts.kubeconfig);
    this.server = this.endpoint.server;
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#userAgent = opts.userAgent ?? 'anchore-operator';
  }

  async close(): Promise<void> {
    await (await this.#agent)?.close();
  }

  #pluginConfig(): Promise<{ applyToHTTPSOptions(o: unknown): Promise<void> }> {
    const auth = this.endpoint.auth;
    if (auth.type !== 'plugin') throw new Error('not a plugin user');
    this.#plugin ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromFile(auth.kubeconfigPath);
      kc.setCurrentContext(auth.context);
      return kc;
    });
    return this.#plugin;
  }

  /** One keep-alive Agent for every request and watch of the process. */
  #sharedAgent(): Promise<Agent> {
    this.#agent ??= (async () => {
      const connect: Record<string, unknown> = { keepAlive: true, keepAliveInitialDelay: 30_000, timeout: 10_000 };
      const tls = this.endpoint.tls;
      for (const k of ['ca', 'cert', 'key', 'servername'] as const) if (tls[k] !== undefined) connect[k] = tls[k];
      connect['rejectUnauthorized'] = tls.rejectUnauthorized;
      if (this.endpoint.auth.type === 'plugin') {
        // Exec plugins may return client certificates too.
        const o: { cert?: Buffer; key?: Buffer } = {};
        await (await this.#pluginConfig()).applyToHTTPSOptions(o);
        if (o.cert) connect['cert'] = o.cert;
        if (o.key) connect['key'] = o.key;
      }
      // Watches hold a connection each; leave room for them beside ordinary requests.
      return new Agent({ connections: 64, keepAliveTimeout: 60_000, connect, headersTimeout: 60_000, bodyTimeout: 0 });
    })();
    return this.#agent;
  }

  /** Auth headers, cached briefly (token files rotate; exec plugins are slow to call). */
  async #authHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (this.#headers && now - this.#headers.at < 5000) return this.#headers.value;
    const auth = this.endpoint.auth;
    let h: Record<string, string> = {};
    if (auth.type === 'token') h = { authorization: `Bearer ${auth.token}` };
    else if (auth.type === 'tokenFile') h = { authorization: `Bearer ${readFileSync(auth.path, 'utf8').trim()}` };
    else if (auth.type === 'basic') h = { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
    else if (auth.type === 'plugin') {
      const opts: { headers?: Record<string, string>; auth?: string } = {};
      await (await this.#pluginConfig()).applyToHTTPSOptions(opts);
      h = { ...(opts.headers ?? {}) };
      if (opts.auth) h['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    }
    this.#headers = { value: h, at: now };
    return h;
  }

  async request<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: { query?: Record<string, string | number | boolean | undefined>; body?: unknown; contentType?: string; accept?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      ...(await this.#authHeaders()),
      accept: opts.accept ?? 'application/json',
      'user-agent': this.#userAgent,
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      body = JSON.stringify(opts.body);
    }
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    let res: Awaited<ReturnType<typeof request>>;
    let text: string;
    try {
      res = await request(url, { method, headers, body, dispatcher: await this.#sharedAgent(), signal: AbortSignal.timeout(timeoutMs) });
      text = await res.body.text();
    } catch (err) {
      // No answer (refused, reset, timed out): the apiserver or the path to it is down, a KubeError of kind unavailable.
      const e = err as { name?: string; code?: string; message?: string };
      const what = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.message || e.code || String(err);
      throw new KubeError(undefined, 'Unavailable', `${method} ${path}: ${what}`, { cause: err });
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return (text ? JSON.parse(text) : undefined) as T;
    let reason = 'Unknown';
    let message = text.slice(0, 500);
    try {
      const status = JSON.parse(text) as { reason?: string; message?: string };
      reason = status.reason ?? reason;
      message = status.message ?? message;
    } catch {
      // not a Status object; keep the excerpt
    }
    throw new KubeError(res.statusCode, reason, `${method} ${path}: ${res.statusCode} ${reason}: ${message}`);
  }

  /** One page of a list. `metadataOnly` asks for PartialObjectMetadataList (far smaller for owners we only walk). */
  async listPage<T>(path: string, opts: { labelSelector?: string; fieldSelector?: string; limit?: number; continueToken?: string; metadataOnly?: boolean }): Promise<ListPage<T>> {
    const res = await this.request<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>('GET', path, {
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit ?? 500,
        continue: opts.continueToken,
      },
      accept: opts.metadataOnly ? 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json' : undefined,
    });
    return {
      items: res.items ?? [],
      resourceVersion: res.metadata?.resourceVersion ?? '',
      continueToken: res.metadata?.continue || undefined,
    };
  }

  /**
   * Starts a watch. `onEvent` gets (type, object); `onDone` once when the stream ends for any reason: server close
   * (null), an error, 30 s without a byte (an error named TimeoutError: the server sends bookmarks, so silence means a
   * dead connection), or abort (AbortError). A non-200 answer ends it with a KubeError (410 Gone: kind `gone`).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err: unknown) => void,
    opts: { metadataOnly?: boolean; inactivityMs?: number } = {},
  ): Promise<WatchHandle> {
    const url = new URL(this.server + path);
    url.searchParams.set('watch', 'true');
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const controller = new AbortController();
    const inactivityMs = opts.inactivityMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = (err: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      controller.abort();
      onDone(err);
    };
    const touch = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const e = new Error(`watch ${path}: no data for ${inactivityMs} ms`);
        e.name = 'TimeoutError';
        finish(e);
      }, inactivityMs);
      timer.unref?.();
    };
    const handle: WatchHandle = {
      abort: () => {
        const e = new Error('watch aborted');
        e.name = 'AbortError';
        finish(e);
      },
    };
    touch();
    try {
      const res = await request(url, {
        method: 'GET',
        headers: {
          ...(await this.#authHeaders()),
          accept: opts.metadataOnly ? 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json' : 'application/json',
          'user-agent': this.#userAgent,
        },
        dispatcher: await this.#sharedAgent(),
        signal: controller.signal,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        let reason = 'WatchFailed';
        try {
          reason = (JSON.parse(text) as { reason?: string }).reason ?? reason;
        } catch {
          // not a Status object
        }
        finish(new KubeError(res.statusCode, reason, `watch ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
        return handle;
      }
      let buf = '';
      res.body.setEncoding('utf8');
      res.body.on('data', (chunk: string) => {
        if (done) return;
        touch();
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          let ev: { type?: string; object?: unknown };
          try {
            ev = JSON.parse(line) as { type?: string; object?: unknown };
          } catch {
            continue; // a torn line cannot happen on a healthy stream; the relist recovers anything missed
          }
          if (typeof ev.type === 'string') onEvent(ev.type, ev.object);
          if (done) return;
        }
      });
      res.body.on('end', () => finish(null));
      res.body.on('error', (err: Error) => finish(done ? null : err));
    } catch (err) {
      finish(err);
    }
    return handle;
  }

  async mergePatch<T>(path: string, patch: unknown, opts: { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: opts.fieldManager },
    });
  }
}
