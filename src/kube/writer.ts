import { API_VERSION, GROUP, VERSION } from '../crds/schema.ts';
import type { BindingInfo, BindingStatus } from '../crds/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { BindingStatusWriter, EventRecorder, ObjectRef } from './cluster.port.ts';
import { type KubeClient, isKubeError } from './client.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { TokenBucket } from '../runtime/limits.ts';

export function bindingPath(b: Pick<BindingInfo, 'kind' | 'name' | 'namespace'>): string {
  return b.kind === 'AnchorePolicyBinding'
    ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(b.namespace ?? '')}/anchorepolicybindings/${encodeURIComponent(b.name)}`
    : `/apis/${GROUP}/${VERSION}/clusteranchorepolicybindings/${encodeURIComponent(b.name)}`;
}

/** Writes binding status with a JSON merge patch of the status subresource; keys no longer present are nulled. */
export class KubeBindingStatusWriter implements BindingStatusWriter {
  readonly #client: KubeClient;
  constructor(client: KubeClient) {
    this.#client = client;
  }

  async patchStatus(binding: BindingInfo, status: BindingStatus): Promise<void> {
    const patch: Record<string, unknown> = { ...status };
    for (const k of Object.keys(binding.status ?? {})) if (!(k in status) || (status as Record<string, unknown>)[k] === undefined) patch[k] = null;
    await this.#client.mergePatch(`${bindingPath(binding)}/status`, { apiVersion: API_VERSION, status: patch }, { fieldManager: 'anchore-operator' });
  }
}

/** events.k8s.io/v1 MicroTime: the apiserver rejects millisecond precision. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Records Kubernetes Events (events.k8s.io/v1). At most one event per (object, reason) per `minIntervalMs`, and an
 * identical note is not repeated within `repeatMs`: a flapping verdict cannot flood the apiserver.
 */
export class KubeEventRecorder implements EventRecorder {
  readonly #client: Pick<KubeClient, 'request'>;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #minIntervalMs: number;
  readonly #repeatMs: number;
  readonly #last = new Map<string, { at: number; note: string }>();
  readonly #metrics: Pick<OperatorMetrics, 'kubeEvents'> | undefined;
  /** Paces Event writes across all objects (client-go's recorder is paced by its client's QPS too). */
  readonly #bucket: TokenBucket;
  readonly #maxPending: number;
  #pending = 0;
  sent = 0;
  suppressed = 0;
  /** Events dropped because too many were waiting for the rate limit. */
  dropped = 0;
  /** Events the apiserver refused (4xx). */
  rejected = 0;

  constructor(opts: {
    client: Pick<KubeClient, 'request'>;
    log: Logger;
    instance: string;
    minIntervalMs?: number;
    repeatMs?: number;
    /** Counts every Event by outcome (sent, rejected, failed, dropped, suppressed). */
    metrics?: Pick<OperatorMetrics, 'kubeEvents'>;
    /** Event writes per second, all objects together (default 10, burst 25). */
    ratePerSecond?: number;
    burst?: number;
    /** Events waiting for the rate beyond this are dropped and counted (default 1,000). */
    maxPending?: number;
  }) {
    this.#bucket = new TokenBucket(opts.ratePerSecond ?? 10, opts.burst ?? 25);
    this.#maxPending = opts.maxPending ?? 1000;
    this.#client = opts.client;
    this.#log = opts.log;
    this.#instance = opts.instance;
    this.#minIntervalMs = opts.minIntervalMs ?? 60_000;
    this.#repeatMs = opts.repeatMs ?? 10 * 60_000;
    this.#metrics = opts.metrics;
  }

  event(regarding: ObjectRef, type: 'Normal' | 'Warning', reason: string, action: string, note: string): void {
    const key = `${regarding.kind}/${regarding.namespace ?? ''}/${regarding.name}/${reason}`;
    const now = Date.now();
    const prev = this.#last.get(key);
    if (prev && (now - prev.at < this.#minIntervalMs || (prev.note === note && now - prev.at < this.#repeatMs))) {
      this.suppressed++;
      this.#metrics?.kubeEvents.inc({ result: 'suppressed' });
      return;
    }
    this.#last.set(key, { at: now, note });
    if (this.#last.size > 10_000) this.#last.delete(this.#last.keys().next().value as string);
    // Events about cluster-scoped objects: the apiserver accepts them only in namespace default (events.k8s.io/v1 validation).
    const namespace = regarding.namespace ?? 'default';
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // client-go's naming (<object>.<hex time>): Event validation rejects a generateName ending in '.'.
      metadata: { name: `${regarding.name.slice(0, 200)}.${(BigInt(now) * 1_000_000n + BigInt(this.sent % 1_000_000)).toString(16)}`, namespace },
      eventTime: microTime(new Date(now)),
      type,
      reason,
      action,
      note: note.slice(0, 1024),
      regarding,
      reportingController: 'anchore.io/anchore-operator',
      reportingInstance: this.#instance.slice(0, 128),
    };
    if (this.#pending >= this.#maxPending) {
      // A burst (hundreds of workloads failing at once) must not flood the apiserver; Events are best effort.
      if (this.dropped++ === 0) this.#log.warn({ maxPending: this.#maxPending, reason }, 'too many Kubernetes Events waiting; dropping (counted; said once)');
      this.#metrics?.kubeEvents.inc({ result: 'dropped' });
      return;
    }
    this.sent++;
    this.#pending++;
    void this.#bucket
      .take()
      .then(() => this.#client.request('POST', `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`, { body }))
      .then(() => this.#metrics?.kubeEvents.inc({ result: 'sent' }))
      .catch((err: unknown) => {
        // 4xx: the apiserver refused this Event (validation, RBAC, a terminating namespace); anything else failed on the way.
        const rejected = isKubeError(err) && err.status >= 400 && err.status < 500;
        this.rejected += rejected ? 1 : 0;
        this.#metrics?.kubeEvents.inc({ result: rejected ? 'rejected' : 'failed' });
        this.#log.warn({ err: (err as Error).message, reason, object: key, namespace }, rejected ? 'the apiserver refused a Kubernetes Event' : 'could not record event');
      })
      .finally(() => this.#pending--);
  }
}
