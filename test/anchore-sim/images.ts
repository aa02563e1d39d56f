// Images per account, with asynchronous analysis. Analysis is computed lazily from timestamps instead of timers:
// an image queued at T is `analyzing` from T+queued_ms and done at T+queued_ms+analyzing_ms. That keeps 2,000+
// images free of pending timers, makes stop()/reset() trivial, and gives exact, reproducible transition times.
import { ApiError } from './errors.ts';
import { hashUnit, sha256Hex } from './prng.ts';
import { fullTagOf, isDigest, parseRef } from './refs.ts';
import type { AnalysisStatus, AnchoreImageDetail, AnchoreImageRecord, SimConfig } from './types.ts';

interface ImageEntry {
  record: AnchoreImageRecord;
  /** When the current analysis finished (ms), null while not analyzed: the analyzed_since filter reads it. */
  analyzedAt: number | null;
  queuedAt: number;
  attempt: number;
  willFail: boolean;
}

interface AccountImages {
  byDigest: Map<string, ImageEntry>;
  byTag: Map<string, Set<string>>;
}

/** Filters of GET /v2/images. */
export interface ImageListFilter {
  full_tag?: string;
  image_status?: string;
  analysis_status?: string;
  image_id?: string;
  analyzed_since?: string;
}

/** Error message of the engine when a dockerfile is sent for an existing image without force. */
export const DOCKERFILE_WITHOUT_FORCE = 'Cannot specify dockerfile for an image that already exists unless using force=True';

const DISTROS: ReadonlyArray<readonly [string, string]> = [
  ['debian', '12'],
  ['alpine', '3.19'],
  ['ubuntu', '22.04'],
  ['rhel', '9'],
];
const ANALYSIS_STATUSES = new Set<string>(['not_analyzed', 'analyzing', 'analyzed', 'analysis_failed']);
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** True for an RFC 3339 date-time string. */
export function isRfc3339(v: unknown): v is string {
  return typeof v === 'string' && RFC3339_RE.test(v) && !Number.isNaN(Date.parse(v));
}

/** Anchore-style timestamp: ISO 8601 UTC, second precision. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(message: string, detail: Record<string, unknown> = {}): ApiError {
  return new ApiError(400, message, detail);
}

interface ParsedAdd {
  fullTag: string;
  registry: string;
  repo: string;
  tag: string;
  /** The digest the client named (tag source: derived from the tag). */
  requestedDigest: string;
  sourceKind: 'tag' | 'digest';
  dockerfile: string | undefined;
  tagDetectedAt: number | undefined;
  annotations: Record<string, string>;
}

/** Image records of every account, indexed by digest and by full tag. */
export class ImageStore {
  private readonly accounts = new Map<string, AccountImages>();
  private readonly config: SimConfig;
  private readonly now: () => number;

  constructor(config: SimConfig, now: () => number) {
    this.config = config;
    this.now = now;
  }

  private bucket(account: string): AccountImages {
    let b = this.accounts.get(account);
    if (b === undefined) {
      b = { byDigest: new Map(), byTag: new Map() };
      this.accounts.set(account, b);
    }
    return b;
  }

  /**
   * POST /v2/images.
   * @throws ApiError 400 for an invalid request, or a dockerfile on an existing image without force.
   */
  add(account: string, body: unknown, force: boolean): AnchoreImageRecord {
    const req = this.parseAddRequest(body);
    const manifestTarget = this.config.manifest_lists[req.requestedDigest];
    const imageDigest = manifestTarget ?? req.requestedDigest;
    const parentDigest = req.requestedDigest;
    const b = this.bucket(account);
    const now = this.now();
    const existing = b.byDigest.get(imageDigest);

    if (existing !== undefined) {
      this.advance(existing, now);
      if (req.dockerfile !== undefined && !force) throw bad(DOCKERFILE_WITHOUT_FORCE);
      const rec = existing.record;
      if (!rec.image_detail.some((d) => d.full_tag === req.fullTag)) {
        rec.image_detail.push(this.detail(account, req, imageDigest, now));
        this.indexTag(b, req.fullTag, imageDigest);
        rec.last_updated = isoSeconds(now);
      }
      Object.assign(rec.annotations, req.annotations);
      if (force || rec.analysis_status === 'analysis_failed') this.requeue(existing, now);
      this.advance(existing, now);
      return rec;
    }

    if (force && req.sourceKind === 'digest') {
      throw bad('image digest must already exist to force re-analyze using tag+digest', { image_digest: imageDigest });
    }
    const ts = isoSeconds(now);
    const entry: ImageEntry = {
      record: {
        image_digest: imageDigest,
        parent_digest: parentDigest,
        account_name: account,
        annotations: { ...req.annotations },
        image_status: 'active',
        analysis_status: 'not_analyzed',
        analysis_status_detail: [],
        created_at: ts,
        last_updated: ts,
        record_version: 'v1',
        image_detail: [this.detail(account, req, imageDigest, now)],
      },
      analyzedAt: null,
      queuedAt: now,
      attempt: 1,
      willFail: false,
    };
    entry.willFail = this.decideFailure(entry);
    b.byDigest.set(imageDigest, entry);
    this.indexTag(b, req.fullTag, imageDigest);
    this.advance(entry, now);
    return entry.record;
  }

  /** The current record (analysis advanced to now), or undefined. The object is live: do not hand it out. */
  get(account: string, digest: string): AnchoreImageRecord | undefined {
    const entry = this.accounts.get(account)?.byDigest.get(digest.toLowerCase());
    if (entry === undefined) return undefined;
    this.advance(entry, this.now());
    return entry.record;
  }

  /**
   * GET /v2/images, oldest first.
   * @throws ApiError 400 for an invalid filter value.
   */
  list(account: string, filter: ImageListFilter): AnchoreImageRecord[] {
    const imageStatus = filter.image_status ?? 'active';
    if (!['all', 'active', 'deleting'].includes(imageStatus)) throw bad(`Invalid image_status: ${imageStatus}. Must be one of all, active, deleting`);
    if (filter.analysis_status !== undefined && !ANALYSIS_STATUSES.has(filter.analysis_status)) {
      throw bad(`Invalid analysis_status: ${filter.analysis_status}`);
    }
    let since: number | undefined;
    if (filter.analyzed_since !== undefined) {
      if (!isRfc3339(filter.analyzed_since)) throw bad(`Invalid analyzed_since: ${filter.analyzed_since}`);
      since = Date.parse(filter.analyzed_since);
    }
    const b = this.accounts.get(account);
    if (b === undefined || imageStatus === 'deleting') return [];
    let entries: Iterable<ImageEntry>;
    if (filter.full_tag !== undefined) {
      const digests = b.byTag.get(filter.full_tag);
      if (digests === undefined) return [];
      entries = [...digests].map((d) => b.byDigest.get(d)).filter((e): e is ImageEntry => e !== undefined);
    } else {
      entries = b.byDigest.values();
    }
    const now = this.now();
    const out: AnchoreImageRecord[] = [];
    for (const e of entries) {
      this.advance(e, now);
      const r = e.record;
      if (filter.analysis_status !== undefined && r.analysis_status !== filter.analysis_status) continue;
      if (filter.image_id !== undefined && !r.image_detail.some((d) => d.image_id === filter.image_id)) continue;
      if (since !== undefined && (e.analyzedAt === null || e.analyzedAt < since)) continue;
      out.push(r);
    }
    return out;
  }

  /** Deep copies of an account's records, analysis advanced to now (for the programmatic API). */
  snapshot(account: string): AnchoreImageRecord[] {
    return this.list(account, { image_status: 'all' }).map((r) => structuredClone(r));
  }

  /** Removes an image and its tags, as `DELETE /v2/images/{digest}?force=true` ends up; false when there was none. */
  remove(account: string, digest: string): boolean {
    const b = this.accounts.get(account);
    const entry = b?.byDigest.get(digest.toLowerCase());
    if (b === undefined || entry === undefined) return false;
    b.byDigest.delete(entry.record.image_digest);
    for (const [tag, set] of b.byTag) {
      set.delete(entry.record.image_digest);
      if (set.size === 0) b.byTag.delete(tag);
    }
    return true;
  }

  /** Number of images of an account. */
  count(account: string): number {
    return this.accounts.get(account)?.byDigest.size ?? 0;
  }

  reset(): void {
    this.accounts.clear();
  }

  private parseAddRequest(body: unknown): ParsedAdd {
    if (!isObject(body)) throw bad('Request body must be an ImageAnalysisRequest JSON object');
    const imageType = body.image_type === undefined || body.image_type === null ? 'docker' : body.image_type;
    if (imageType !== 'docker') throw bad(`Unsupported image_type: ${String(imageType)}`);
    const annotations: Record<string, string> = {};
    if (body.annotations !== undefined && body.annotations !== null) {
      if (!isObject(body.annotations)) throw bad('annotations must be an object of string values');
      for (const [k, v] of Object.entries(body.annotations)) {
        if (typeof v !== 'string') throw bad(`annotation "${k}" must be a string`);
        annotations[k] = v;
      }
    }
    const source = body.source;
    if (!isObject(source)) throw bad("'source' is a required property");
    const kinds = (['tag', 'digest', 'archive', 'import'] as const).filter((k) => source[k] !== undefined && source[k] !== null);
    if (kinds.length !== 1) throw bad('Must specify exactly one source type: tag, digest, archive or import', { source_types: kinds });
    const kind = kinds[0]!;
    if (kind === 'archive' || kind === 'import') throw bad(`Source type "${kind}" is not supported by this server; use tag or digest`);
    const src = source[kind];
    if (!isObject(src)) throw bad(`source.${kind} must be an object`);
    let dockerfile: string | undefined;
    if (src.dockerfile !== undefined && src.dockerfile !== null) {
      if (typeof src.dockerfile !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(src.dockerfile)) throw bad('dockerfile must be a base64-encoded string');
      dockerfile = src.dockerfile;
    }
    if (typeof src.pull_string !== 'string' || src.pull_string === '') throw bad(`'pull_string' is a required property of source.${kind}`);

    if (kind === 'tag') {
      const ref = parseRef(src.pull_string);
      if (ref === undefined) throw bad(`Invalid pull_string: ${src.pull_string}`);
      if (ref.digest !== undefined) throw bad('A tag source pull_string must not contain a digest; use a digest source');
      const fullTag = fullTagOf(ref);
      return {
        fullTag,
        registry: ref.registry,
        repo: ref.repo,
        tag: ref.tag ?? 'latest',
        requestedDigest: `sha256:${sha256Hex(`${this.config.seed}\u0000${fullTag}`)}`,
        sourceKind: 'tag',
        dockerfile,
        tagDetectedAt: undefined,
        annotations,
      };
    }

    const ref = parseRef(src.pull_string);
    if (ref === undefined || ref.digest === undefined) throw bad(`Invalid pull_string for a digest source (want repo@sha256:<64 hex>): ${src.pull_string}`);
    if (typeof src.tag !== 'string' || src.tag === '') throw bad("'tag' is a required property of source.digest");
    const tagRef = parseRef(src.tag);
    if (tagRef === undefined || tagRef.digest !== undefined) throw bad(`Invalid tag: ${src.tag}`);
    let tagDetectedAt: number | undefined;
    if (src.creation_timestamp_override !== undefined && src.creation_timestamp_override !== null) {
      if (!isRfc3339(src.creation_timestamp_override)) throw bad(`Invalid creation_timestamp_override: ${String(src.creation_timestamp_override)}`);
      tagDetectedAt = Date.parse(src.creation_timestamp_override);
    }
    return {
      fullTag: fullTagOf(tagRef),
      registry: tagRef.registry,
      repo: tagRef.repo,
      tag: tagRef.tag ?? 'latest',
      requestedDigest: ref.digest,
      sourceKind: 'digest',
      dockerfile,
      tagDetectedAt,
      annotations,
    };
  }

  private detail(account: string, req: ParsedAdd, digest: string, now: number): AnchoreImageDetail {
    const ts = isoSeconds(now);
    return {
      full_tag: req.fullTag,
      full_digest: `${req.registry}/${req.repo}@${digest}`,
      account_name: account,
      image_digest: digest,
      dockerfile: req.dockerfile ?? null,
      registry: req.registry,
      repo: req.repo,
      tag: req.tag,
      image_id: sha256Hex(`${this.config.seed}\u0000image_id\u0000${digest}`),
      tag_detected_at: isoSeconds(req.tagDetectedAt ?? now),
      created_at: ts,
      last_updated: ts,
    };
  }

  private indexTag(b: AccountImages, fullTag: string, digest: string): void {
    let set = b.byTag.get(fullTag);
    if (set === undefined) {
      set = new Set();
      b.byTag.set(fullTag, set);
    }
    set.add(digest);
  }

  private decideFailure(entry: ImageEntry): boolean {
    const r = entry.record;
    const listed = this.config.analysis.fail_digests;
    if (listed.length > 0 && (listed.includes(r.image_digest) || listed.includes(r.parent_digest) || r.image_detail.some((d) => listed.includes(d.full_tag)))) {
      return true;
    }
    return this.config.analysis.fail_rate > 0 && hashUnit(this.config.seed, 'analysis', r.image_digest, String(entry.attempt)) < this.config.analysis.fail_rate;
  }

  private requeue(entry: ImageEntry, now: number): void {
    const r = entry.record;
    if (r.analysis_status !== 'not_analyzed') this.transition(entry, 'not_analyzed', now, 'apiext');
    entry.queuedAt = now;
    entry.attempt++;
    entry.willFail = this.decideFailure(entry);
  }

  private advance(entry: ImageEntry, now: number): void {
    const { queued_ms, analyzing_ms } = this.config.analysis;
    const startAt = entry.queuedAt + queued_ms;
    const doneAt = startAt + analyzing_ms;
    if (entry.record.analysis_status === 'not_analyzed' && now >= startAt) this.transition(entry, 'analyzing', startAt, 'analyzer');
    if (entry.record.analysis_status === 'analyzing' && now >= doneAt) {
      this.transition(entry, entry.willFail ? 'analysis_failed' : 'analyzed', doneAt, 'analyzer');
    }
  }

  private transition(entry: ImageEntry, to: AnalysisStatus, at: number, service: 'apiext' | 'analyzer'): void {
    const r = entry.record;
    const ts = isoSeconds(at);
    r.analysis_status_detail.push({ from_status: r.analysis_status, to_status: to, timestamp: ts, source: { host_id: `anchore-sim-${service}`, service_name: service } });
    r.analysis_status = to;
    r.last_updated = ts;
    if (to === 'analyzed') {
      entry.analyzedAt = at;
      const h = parseInt(r.image_digest.slice(7, 15), 16);
      r.image_content = {
        metadata: {
          arch: 'amd64',
          distro: DISTROS[h % DISTROS.length]![0],
          distro_version: DISTROS[h % DISTROS.length]![1],
          dockerfile_mode: 'Guessed',
          image_size: 5_000_000 + (h % 200_000_000),
          layer_count: 1 + (h % 12),
        },
      };
    } else if (to === 'not_analyzed') {
      entry.analyzedAt = null;
      delete r.image_content;
    }
  }
}

/** Validates the `{image_digest}` path parameter. */
export function assertDigestParam(digest: string): string {
  if (!isDigest(digest)) throw bad(`Invalid image_digest: ${digest}. Must match ^sha256:[a-fA-F0-9]{64}$`);
  return digest.toLowerCase();
}
