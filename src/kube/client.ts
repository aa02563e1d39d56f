import { KubeConfig, Watch } from '@kubernetes/client-node';
import { Agent, request } from 'undici';

/** A Kubernetes API error with the apiserver's Status reason, e.g. NotFound, Conflict, Forbidden, Gone. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export function isKubeError(err: unknown, status?: number): err is KubeApiError {
  return err instanceof KubeApiError && (status === undefined || err.status === status);
}

interface RequestContextLike {
  setDispatcher(d: unknown): void;
}

/**
 * client-node 2.0.1 builds a new undici Agent on every call (a new TLS connection each time). This subclass hands
 * every request — generated APIs and Watch alike — one shared keep-alive Agent built from the same TLS material.
 */
class SharedDispatcherKubeConfig extends KubeConfig {
  #agent: Agent | undefined;

  async sharedAgent(): Promise<Agent> {
    if (this.#agent) return this.#agent;
    const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string } = {};
    await this.applyToHTTPSOptions(opts as never);
    const connect: Record<string, unknown> = { keepAlive: true, keepAliveInitialDelay: 30_000, timeout: 10_000 };
    for (const k of ['ca', 'cert', 'key', 'rejectUnauthorized', 'servername'] as const) {
      if (opts[k] !== undefined) connect[k] = opts[k];
    }
    // Watches hold a connection each; leave room for them beside ordinary requests.
    this.#agent = new Agent({ connections: 64, keepAliveTimeout: 60_000, connect, headersTimeout: 60_000, bodyTimeout: 0 });
    return this.#agent;
  }

  override async applySecurityAuthentication(context: Parameters<KubeConfig['applySecurityAuthentication']>[0]): Promise<void> {
    await super.applySecurityAuthentication(context);
    (context as unknown as RequestContextLike).setDispatcher(await this.sharedAgent());
  }

  async close(): Promise<void> {
    await this.#agent?.close();
  }
}

export interface KubeClientOptions {
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
  readonly kc: SharedDispatcherKubeConfig;
  readonly server: string;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  #headers: { value: Record<string, string>; at: number } | undefined;

  constructor(opts: KubeClientOptions = {}) {
    const kc = new SharedDispatcherKubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    this.kc = kc;
    this.server = cluster.server.replace(/\/+$/, '');
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#userAgent = opts.userAgent ?? 'anchore-operator';
  }

  async close(): Promise<void> {
    await this.kc.close();
  }

  /** Auth headers, cached briefly: client-node re-reads token and CA files on every call. */
  async #authHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (this.#headers && now - this.#headers.at < 5000) return this.#headers.value;
    const opts: { headers?: Record<string, string>; auth?: string } = {};
    await this.kc.applyToHTTPSOptions(opts as never);
    const h: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.auth) h['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
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
    const res = await request(url, {
      method,
      headers,
      body,
      dispatcher: await this.kc.sharedAgent(),
      signal: AbortSignal.timeout(opts.timeoutMs ?? this.#timeoutMs),
    });
    const text = await res.body.text();
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
    throw new KubeApiError(res.statusCode, reason, `${method} ${path}: ${res.statusCode} ${reason}: ${message}`);
  }

  /** One page of a list. `metadataOnly` asks for PartialObjectMetadataList (far smaller for owners we only walk). */
  async listPage<T>(
    path: string,
    opts: { labelSelector?: string; fieldSelector?: string; limit?: number; continueToken?: string; metadataOnly?: boolean },
  ): Promise<ListPage<T>> {
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
   * Starts a watch. `onEvent` gets (type, object); `onDone` once when the stream ends for any reason (error, server
   * close, 30 s of silence — client-node's inactivity timeout — or abort).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err: unknown) => void,
    opts: { metadataOnly?: boolean } = {},
  ): Promise<WatchHandle> {
    const w = new Watch(this.kc);
    let kc = this.kc;
    if (opts.metadataOnly) {
      // Watch has no header option; wrap the config so this watch asks for metadata only.
      kc = Object.create(this.kc) as SharedDispatcherKubeConfig;
      const base = this.kc;
      kc.applySecurityAuthentication = async (ctx) => {
        await base.applySecurityAuthentication(ctx);
        ctx.setHeaderParam('Accept', 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json');
      };
      w.config = kc;
    }
    const controller = await w.watch(path, query, (type, obj) => onEvent(type, obj), onDone);
    return { abort: () => controller.abort() };
  }

  async mergePatch<T>(path: string, patch: unknown, opts: { fieldManager?: string } = {}): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: opts.fieldManager },
    });
  }
}
