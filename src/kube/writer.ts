import { API_VERSION, GROUP, VERSION } from '../crds/schema.ts';
import type { BindingInfo, BindingStatus } from '../crds/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { BindingStatusWriter, EventRecorder, ObjectRef } from './cluster.port.ts';
import type { KubeClient } from './client.ts';
import { isKubeError } from './errors.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';
import { TokenBucket } from '../runtime/limits.ts';
import { formatMicroTime } from '../runtime/time.ts';

function bindingPath(b: Pick<BindingInfo, 'kind' | 'name' | 'namespace'>): string {
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

  async patchStatus(binding: BindingInfo, status: BindingStatus, opts: { ifResourceVersion?: string } = {}): Promise<void> {
    const patch: Record<string, unknown> = { ...status };
    for (const k of Object.keys(binding.status ?? {})) if (!(k in status) || (status as Record<string, unknown>)[k] === undefined) patch[k] = null;
    const body: Record<string, unknown> = { apiVersion: API_VERSION, status: patch };
    // A resourceVersion in a merge patch is a precondition: the apiserver answers 409 if the object changed since.
    if (opts.ifResourceVersion) body['metadata'] = { resourceVersion: opts.ifResourceVersion };
    await this.#client.mergePatch(`${bindingPath(binding)}/status`, body, { fieldManager: 'anchore-operator' });
  }
}

/** The reporting controller of every Event this operator writes (and what it lists on start). */
const REPORTING_CONTROLLER = 'anchore.io/anchore-operator';
/** How long the apiserver keeps Events by default (kube-apiserver --event-ttl). */
const EVENT_TTL_MS = 3_600_000;

interface Queued {
  body: Record<string, unknown>;
  namespace: string;
  reason: string;
}

/**
 * Records Kubernetes Events (events.k8s.io/v1). At most one event per (object, reason) per `minIntervalMs`, and an
 * identical note is not repeated within `repeatMs`: a flapping verdict cannot flood the apiserver.
 *
 * Writes are paced (a token bucket, a few in flight). What waits for the pace is a backlog keyed by (object, reason):
 * a newer Event about the same object and reason replaces the waiting one (counted `coalesced`), so a burst — every
 * workload of a cluster failing at once — is told in full, one Event per object, never dropped for being many. Only a
 * backlog of `maxBacklog` distinct objects (far beyond any cluster's workloads) drops, counted and logged.
 *
 * `seed()` reads the Events this controller already wrote (any replica, any earlier process): an identical Event
 * that still exists is not written again after a restart or a failover.
 */
export class KubeEventRecorder implements EventRecorder {
  readonly #client: Pick<KubeClient, 'request'>;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #minIntervalMs: number;
  readonly #repeatMs: number;
  /** Last Event per (object, reason); `seeded`: when it was learned from the apiserver on start. */
  readonly #last = new Map<string, { at: number; note: string; seeded?: number }>();
  readonly #metrics: Pick<OperatorMetrics, 'kubeEvents'> | undefined;
  /** Paces Event writes across all objects (client-go's recorder is paced by its client's QPS too). */
  readonly #bucket: TokenBucket;
  readonly #maxBacklog: number;
  readonly #backlog = new Map<string, Queued>();
  #inflight = 0;
  static readonly MAX_IN_FLIGHT = 4;
  #seq = 0;
  sent = 0;
  suppressed = 0;
  /** Events replaced in the backlog by a newer one about the same object and reason. */
  coalesced = 0;
  /** Events dropped because the backlog held `maxBacklog` distinct objects. */
  dropped = 0;
  /** Events the apiserver refused (4xx). */
  rejected = 0;

  constructor(opts: {
    client: Pick<KubeClient, 'request'>;
    log: Logger;
    instance: string;
    minIntervalMs?: number;
    repeatMs?: number;
    /** Counts every Event by outcome (sent, rejected, failed, coalesced, dropped, suppressed). */
    metrics?: Pick<OperatorMetrics, 'kubeEvents'>;
    /** Event writes per second, all objects together (default 10, burst 25). */
    ratePerSecond?: number;
    burst?: number;
    /** Distinct (object, reason) pairs that may wait for the rate (default 100,000); beyond, dropped and counted. */
    maxBacklog?: number;
  }) {
    this.#bucket = new TokenBucket(opts.ratePerSecond ?? 10, opts.burst ?? 25);
    this.#maxBacklog = opts.maxBacklog ?? 100_000;
    this.#client = opts.client;
    this.#log = opts.log;
    this.#instance = opts.instance;
    this.#minIntervalMs = opts.minIntervalMs ?? 60_000;
    this.#repeatMs = opts.repeatMs ?? 10 * 60_000;
    this.#metrics = opts.metrics;
  }

  /** Events waiting for the rate limit. */
  get backlog(): number {
    return this.#backlog.size;
  }

  event(regarding: ObjectRef, type: 'Normal' | 'Warning', reason: string, action: string, note: string, related?: ObjectRef): void {
    const key = eventKey(regarding, reason);
    const now = Date.now();
    const prev = this.#last.get(key);
    const text = note.slice(0, 1024);
    // An identical Event found on start (seed) still stands: it is not written again — once, and only while the
    // apiserver keeps Events (1 h by default); later transitions follow the normal rules.
    const standing = prev?.seeded !== undefined && prev.note === text && now - prev.seeded < EVENT_TTL_MS;
    if (prev?.seeded !== undefined) delete prev.seeded;
    if (prev && (standing || now - prev.at < this.#minIntervalMs || (prev.note === text && now - prev.at < this.#repeatMs))) {
      this.suppressed++;
      this.#metrics?.kubeEvents.inc({ result: 'suppressed' });
      return;
    }
    this.#last.set(key, { at: now, note: text });
    if (this.#last.size > 200_000) this.#last.delete(this.#last.keys().next().value as string);
    // Events about cluster-scoped objects: the apiserver accepts them only in namespace default (events.k8s.io/v1 validation).
    const namespace = regarding.namespace ?? 'default';
    const body: Record<string, unknown> = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // client-go's naming (<object>.<hex time>): Event validation rejects a generateName ending in '.'.
      metadata: { name: `${regarding.name.slice(0, 200)}.${(BigInt(now) * 1_000_000n + BigInt(this.#seq++ % 1_000_000)).toString(16)}`, namespace },
      eventTime: formatMicroTime(new Date(now)),
      type,
      reason,
      action,
      note: text,
      regarding,
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance.slice(0, 128),
    };
    if (related) body['related'] = related;
    if (this.#backlog.has(key)) {
      // Still waiting: the newer Event says what is true now.
      this.#backlog.set(key, { body, namespace, reason });
      this.coalesced++;
      this.#metrics?.kubeEvents.inc({ result: 'coalesced' });
      return;
    }
    if (this.#backlog.size >= this.#maxBacklog) {
      if (this.dropped++ % 1000 === 0)
        this.#log.warn({ maxBacklog: this.#maxBacklog, reason, dropped: this.dropped }, 'Kubernetes Event backlog full; dropping (counted in anchore_operator_kube_events_total{result="dropped"})');
      this.#metrics?.kubeEvents.inc({ result: 'dropped' });
      return;
    }
    this.#backlog.set(key, { body, namespace, reason });
    this.#drain();
  }

  #drain(): void {
    while (this.#inflight < KubeEventRecorder.MAX_IN_FLIGHT && this.#inflight < this.#backlog.size) {
      this.#inflight++;
      void this.#sendNext().finally(() => {
        this.#inflight--;
        this.#drain();
      });
    }
  }

  async #sendNext(): Promise<void> {
    await this.#bucket.take();
    const next = this.#backlog.entries().next();
    if (next.done) return;
    const [key, q] = next.value;
    this.#backlog.delete(key);
    this.sent++;
    try {
      await this.#client.request('POST', `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(q.namespace)}/events`, { body: q.body });
      this.#metrics?.kubeEvents.inc({ result: 'sent' });
    } catch (err) {
      // The apiserver refused this Event (validation, RBAC, a terminating namespace); anything else failed on the way.
      const rejected = isKubeError(err) && err.refused;
      this.rejected += rejected ? 1 : 0;
      this.#metrics?.kubeEvents.inc({ result: rejected ? 'rejected' : 'failed' });
      this.#log.warn({ err: (err as Error).message, reason: q.reason, object: key, namespace: q.namespace }, rejected ? 'the apiserver refused a Kubernetes Event' : 'could not record event');
    }
  }

  /**
   * Learns the Events this controller already wrote, so an identical one is not written again after a restart.
   * Best effort: without list permission (or with the apiserver away) Events may repeat once; the cause is logged.
   */
  async seed(): Promise<number> {
    let n = 0;
    let cont: string | undefined;
    try {
      do {
        const q = new URLSearchParams({ limit: '500', fieldSelector: `reportingController=${REPORTING_CONTROLLER}` });
        if (cont) q.set('continue', cont);
        const page = await this.#client.request<{ metadata?: { continue?: string }; items?: SeenEvent[] }>('GET', `/apis/events.k8s.io/v1/events?${q.toString()}`);
        for (const e of page?.items ?? []) {
          if (e.reportingController !== REPORTING_CONTROLLER || !e.regarding?.name || !e.reason) continue;
          const key = eventKey(e.regarding, e.reason);
          const at = Date.parse(e.series?.lastObservedTime ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '') || 0;
          const prev = this.#last.get(key);
          if (!prev || prev.at <= at) this.#last.set(key, { at, note: e.note ?? '', seeded: Date.now() });
          n++;
        }
        cont = page?.metadata?.continue || undefined;
      } while (cont);
      this.#log.info({ events: n }, 'learned the Kubernetes Events already recorded (not repeated after a restart)');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not list existing Kubernetes Events; some may be recorded again after this restart');
    }
    return n;
  }
}

interface SeenEvent {
  metadata?: { creationTimestamp?: string };
  reason?: string;
  note?: string;
  eventTime?: string;
  reportingController?: string;
  series?: { lastObservedTime?: string };
  regarding?: { kind?: string; namespace?: string; name?: string };
}

function eventKey(regarding: { kind?: string; namespace?: string; name?: string }, reason: string): string {
  return `${regarding.kind ?? ''}/${regarding.namespace ?? ''}/${regarding.name ?? ''}/${reason}`;
}
