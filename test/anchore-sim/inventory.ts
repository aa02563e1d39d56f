// Kubernetes runtime inventory: every accepted report is kept (bounded), and the derived inventory items are
// indexed by context (<cluster>/<namespace>) and by image digest, so the GET filters never scan every item.
// Anchore's retention is modelled (docs/anchore-contract.md, the contract notes §7 "Retention and replacement"):
// per-namespace replacement with `inventory_ingest_overwrite`, adding only without it, and expiry after
// `inventory_ttl_days` of not being reported, judged on the simulator's clock.
import { ApiError } from './errors.ts';
import { isoSeconds, isRfc3339 } from './images.ts';
import type { InventoryItem, InventoryReport, KubernetesInventory } from './types.ts';

/** Reports kept per account; the oldest are dropped beyond this (benchmarks post thousands). */
export const MAX_REPORTS_PER_ACCOUNT = 10_000;

/** Raw bytes of reports kept per account; the oldest reports (never the newest) are dropped beyond this. */
export const MAX_REPORT_BYTES_PER_ACCOUNT = 256 * 1024 * 1024;

/** Anchore's chart default for `runtime_inventory.inventory_ttl_days`. */
export const DEFAULT_INVENTORY_TTL_DAYS = 120;

const DAY_MS = 86_400_000;

interface AccountInventory {
  reports: InventoryReport[];
  totalBytes: number;
  contexts: Map<string, Map<string, InventoryItem>>;
  byDigest: Map<string, Set<InventoryItem>>;
  /** No item's last_seen (ms) is older than this (a lower bound: refreshes only raise the true minimum). */
  oldestSeen: number;
}

/** Options of {@link InventoryStore}. */
export interface InventoryStoreOptions {
  /** Raw bytes of reports kept per account (the newest report is always kept). */
  maxReportBytes?: number;
  /** Anchore's `inventory_ingest_overwrite` (default true): a namespace in a report replaces that namespace's items. */
  overwrite?: boolean;
  /** Anchore's `inventory_ttl_days` (default 120): items not reported for longer are gone. */
  ttlDays?: number;
  /** The simulator's clock (ms since epoch): item timestamps and TTL expiry. Default Date.now. */
  clock?: () => number;
}

/** Filters of GET /v2/inventories. */
export interface InventoryFilter {
  inventory_type?: string;
  image_digest?: string;
  context?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}

function optionalList(body: Record<string, unknown>, key: string): Array<Record<string, unknown>> {
  const v = body[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`'${key}' must be an array`);
  return v.map((x, i) => {
    if (!isObject(x)) throw bad(`${key}[${i}] must be an object`);
    return x;
  });
}

/**
 * Validates a KubernetesInventory body.
 * @throws ApiError 400 naming the first problem.
 */
export function validateInventory(body: unknown): KubernetesInventory {
  if (!isObject(body)) throw bad('Request body must be a KubernetesInventory JSON object');
  if (typeof body.cluster_name !== 'string' || body.cluster_name.trim() === '') throw bad("'cluster_name' is a required property");
  if (body.timestamp === undefined || body.timestamp === null) throw bad("'timestamp' is a required property");
  if (!isRfc3339(body.timestamp)) throw bad(`'timestamp' must be an RFC3339 date-time: ${String(body.timestamp)}`);
  optionalList(body, 'namespaces');
  optionalList(body, 'nodes');
  optionalList(body, 'pods').forEach((p, i) => {
    if (typeof p.namespace_uid !== 'string' || p.namespace_uid === '') throw bad(`pods[${i}]: 'namespace_uid' is a required property`);
  });
  optionalList(body, 'containers').forEach((c, i) => {
    if (typeof c.image_tag !== 'string' || c.image_tag.trim() === '') throw bad(`containers[${i}]: 'image_tag' is a required property and must not be blank`);
  });
  return body as KubernetesInventory;
}

/** Stored reports and the inventory derived from them. */
export class InventoryStore {
  private readonly accounts = new Map<string, AccountInventory>();
  private readonly maxReportBytes: number;
  private readonly overwrite: boolean;
  private readonly ttlMs: number;
  private readonly clock: () => number;
  /** Called with every accepted report (e.g. a benchmark keeping only what it measures, `bytes` included). */
  onReport: ((report: InventoryReport) => void) | undefined;

  constructor(opts: InventoryStoreOptions = {}) {
    this.maxReportBytes = opts.maxReportBytes ?? MAX_REPORT_BYTES_PER_ACCOUNT;
    this.overwrite = opts.overwrite ?? true;
    this.ttlMs = (opts.ttlDays ?? DEFAULT_INVENTORY_TTL_DAYS) * DAY_MS;
    this.clock = opts.clock ?? Date.now;
  }

  private bucket(account: string): AccountInventory {
    let b = this.accounts.get(account);
    if (b === undefined) {
      b = { reports: [], totalBytes: 0, contexts: new Map(), byDigest: new Map(), oldestSeen: Infinity };
      this.accounts.set(account, b);
    }
    return b;
  }

  /**
   * Stores an accepted report. With overwrite on, the report replaces the stored items of every namespace it
   * contains (listed in `namespaces` or referenced by a pod): a namespace's items not in the report are gone (all of
   * them when it is listed without pods), those of namespaces absent from it stay. With overwrite off it only adds
   * and refreshes items. Either way an item's `last_seen` becomes the report's `timestamp`, and items whose last_seen
   * is more than the TTL before the clock are gone. Containers whose pod is not in the report are ignored, as KI
   * drops them.
   * @param receivedAt wall-clock arrival (ms), kept on the report; item timestamps come from the simulator's clock.
   * @param bytes raw bytes of the request body: kept on the report, counted against the retention budget.
   */
  accept(account: string, inv: KubernetesInventory, receivedAt: number, bytes = 0): void {
    const b = this.bucket(account);
    const report: InventoryReport = { account, receivedAt, bytes, body: inv };
    b.reports.push(report);
    this.onReport?.(report);
    b.totalBytes += bytes;
    let drop = 0;
    let dropped = 0;
    while (b.reports.length - drop > 1 && (b.reports.length - drop > MAX_REPORTS_PER_ACCOUNT || b.totalBytes - dropped > this.maxReportBytes)) {
      dropped += b.reports[drop]!.bytes ?? 0;
      drop++;
    }
    if (drop > 0) {
      b.reports.splice(0, drop);
      b.totalBytes -= dropped;
    }

    const cluster = inv.cluster_name;
    const nsName = new Map<string, string>();
    const contexts = new Set<string>();
    for (const ns of inv.namespaces ?? []) {
      const name = typeof ns.name === 'string' && ns.name !== '' ? ns.name : typeof ns.uid === 'string' ? ns.uid : undefined;
      if (name === undefined) continue;
      if (typeof ns.uid === 'string') nsName.set(ns.uid, name);
      contexts.add(`${cluster}/${name}`);
    }
    const podContext = new Map<string, string>();
    for (const pod of inv.pods ?? []) {
      const ctx = `${cluster}/${nsName.get(pod.namespace_uid) ?? pod.namespace_uid}`;
      contexts.add(ctx);
      if (typeof pod.uid === 'string') podContext.set(pod.uid, ctx);
    }
    const fresh = new Map<string, Map<string, { tag: string; digest: string }>>();
    for (const ctx of contexts) fresh.set(ctx, new Map());
    for (const c of inv.containers ?? []) {
      const ctx = typeof c.pod_uid === 'string' ? podContext.get(c.pod_uid) : undefined;
      if (ctx === undefined) continue;
      const digest = typeof c.image_digest === 'string' ? c.image_digest : '';
      fresh.get(ctx)!.set(`${c.image_tag}\u0000${digest}`, { tag: c.image_tag, digest });
    }

    const now = this.clock();
    const ts = isoSeconds(now);
    const seenMs = isRfc3339(inv.timestamp) ? Date.parse(inv.timestamp) : now;
    const seen = isoSeconds(seenMs);
    if (fresh.size > 0) b.oldestSeen = Math.min(b.oldestSeen, Date.parse(seen));
    for (const [ctx, entries] of fresh) {
      const old = b.contexts.get(ctx) ?? new Map<string, InventoryItem>();
      const next = new Map<string, InventoryItem>();
      for (const [key, e] of entries) {
        const prev = old.get(key);
        if (prev !== undefined) {
          prev.last_updated = ts;
          prev.last_seen = seen;
          next.set(key, prev);
          old.delete(key);
        } else {
          const created: InventoryItem = { inventory_type: 'kubernetes', context: ctx, image_tag: e.tag, image_digest: e.digest, created_at: ts, last_updated: ts, last_seen: seen };
          next.set(key, created);
          this.indexDigest(b, created);
        }
      }
      if (this.overwrite) for (const gone of old.values()) this.unindexDigest(b, gone);
      else for (const [key, kept] of old) next.set(key, kept);
      if (next.size === 0) b.contexts.delete(ctx);
      else b.contexts.set(ctx, next);
    }
    this.expire(b, now);
  }

  /**
   * GET /v2/inventories.
   * @throws ApiError 400 for an unknown inventory_type.
   */
  list(account: string, filter: InventoryFilter): InventoryItem[] {
    if (filter.inventory_type !== undefined && filter.inventory_type !== 'kubernetes' && filter.inventory_type !== 'ecs') {
      throw bad(`Invalid inventory_type: ${filter.inventory_type}. Must be one of ecs, kubernetes`);
    }
    const b = this.accounts.get(account);
    if (b === undefined || filter.inventory_type === 'ecs') return [];
    this.expire(b, this.clock());
    let items: Iterable<InventoryItem>;
    if (filter.image_digest !== undefined) items = b.byDigest.get(filter.image_digest) ?? [];
    else if (filter.context !== undefined) items = b.contexts.get(filter.context)?.values() ?? [];
    else items = [...b.contexts.values()].flatMap((m) => [...m.values()]);
    const out: InventoryItem[] = [];
    for (const it of items) {
      if (filter.context !== undefined && it.context !== filter.context) continue;
      out.push({ ...it });
    }
    return out;
  }

  /** Every accepted report of an account, oldest first (bounded by count and bytes, see the constants above). */
  reports(account: string): InventoryReport[] {
    return [...(this.accounts.get(account)?.reports ?? [])];
  }

  reset(): void {
    this.accounts.clear();
  }

  /**
   * Removes the items whose last_seen is more than the TTL before `now` (Anchore prunes them; an item exactly the
   * TTL old stays). Scans only when the oldest last_seen may have passed the cutoff, so reads stay indexed.
   */
  private expire(b: AccountInventory, now: number): void {
    const cutoff = now - this.ttlMs;
    if (b.oldestSeen >= cutoff) return;
    let oldest = Infinity;
    for (const [ctx, items] of b.contexts) {
      for (const [key, item] of items) {
        const seen = Date.parse(item.last_seen);
        if (seen < cutoff) {
          items.delete(key);
          this.unindexDigest(b, item);
        } else if (seen < oldest) oldest = seen;
      }
      if (items.size === 0) b.contexts.delete(ctx);
    }
    b.oldestSeen = oldest;
  }

  private indexDigest(b: AccountInventory, item: InventoryItem): void {
    if (item.image_digest === '') return;
    let set = b.byDigest.get(item.image_digest);
    if (set === undefined) {
      set = new Set();
      b.byDigest.set(item.image_digest, set);
    }
    set.add(item);
  }

  private unindexDigest(b: AccountInventory, item: InventoryItem): void {
    const set = b.byDigest.get(item.image_digest);
    if (set === undefined) return;
    set.delete(item);
    if (set.size === 0) b.byDigest.delete(item.image_digest);
  }
}
