// A bounded request log: benchmarks push far more requests than tests ever read back, so the log is a ring that
// overwrites the oldest entries, and the request bodies it keeps have a byte budget (a 10,000-pod inventory is
// megabytes; thousands of them must not pile up in memory).
import type { RecordedRequest } from './types.ts';

/** Filter for {@link RequestLog.list}. */
export interface RequestFilter {
  method?: string;
  path?: string | RegExp;
  account?: string;
  /** Only entries with seq greater than this. */
  sinceSeq?: number;
}

/** Default byte budget for the bodies kept in the log. */
export const DEFAULT_BODY_BUDGET_BYTES = 256 * 1024 * 1024;

const droppedNote = (bytes: number): string => `[body of ${bytes} bytes dropped from the request log to bound memory]`;

/** Fixed-capacity ring of recorded requests, oldest first when listed. */
export class RequestLog {
  private readonly buf: Array<RecordedRequest | undefined>;
  private readonly sizes: Float64Array;
  private readonly bodyBudget: number;
  private readonly maxBody: number;
  private bodyBytes = 0;
  private start = 0;
  private size = 0;
  private nextSeq = 1;

  /**
   * @param capacity entries kept.
   * @param bodyBudget bytes of request bodies kept; beyond it the oldest bodies are replaced by a short note.
   * @param maxBody a larger body is never kept (replaced by the note at once).
   */
  constructor(capacity = 100_000, bodyBudget = DEFAULT_BODY_BUDGET_BYTES, maxBody = Infinity) {
    this.maxBody = maxBody;
    this.buf = new Array<RecordedRequest | undefined>(capacity);
    this.sizes = new Float64Array(capacity);
    this.bodyBudget = bodyBudget;
  }

  /** Allocates the next sequence number (taken when a request arrives, so seq follows arrival order). */
  takeSeq(): number {
    return this.nextSeq++;
  }

  /** Appends an entry; `bodyBytes` is the raw size of its body (what counts against the budget). */
  push(entry: RecordedRequest, bodyBytes = 0): void {
    if (bodyBytes > this.maxBody) {
      entry.body = droppedNote(bodyBytes);
      bodyBytes = 0;
    }
    const cap = this.buf.length;
    let slot: number;
    if (this.size < cap) {
      slot = (this.start + this.size) % cap;
      this.size++;
    } else {
      slot = this.start;
      this.start = (this.start + 1) % cap;
      this.bodyBytes -= this.sizes[slot]!;
    }
    this.buf[slot] = entry;
    this.sizes[slot] = bodyBytes;
    this.bodyBytes += bodyBytes;
    if (this.bodyBytes > this.bodyBudget) this.shedBodies();
  }

  /** Drops the oldest bodies until 3/4 of the budget is left, so shedding is rare (amortised O(1) per push). */
  private shedBodies(): void {
    const cap = this.buf.length;
    const target = this.bodyBudget * 0.75;
    for (let i = 0; i < this.size - 1 && this.bodyBytes > target; i++) {
      const slot = (this.start + i) % cap;
      const bytes = this.sizes[slot]!;
      if (bytes === 0) continue;
      const entry = this.buf[slot];
      if (entry !== undefined) entry.body = droppedNote(bytes);
      this.sizes[slot] = 0;
      this.bodyBytes -= bytes;
    }
  }

  /** Entries matching the filter, in the order they completed. */
  list(filter: RequestFilter = {}): RecordedRequest[] {
    const out: RecordedRequest[] = [];
    const cap = this.buf.length;
    const method = filter.method?.toUpperCase();
    for (let i = 0; i < this.size; i++) {
      const r = this.buf[(this.start + i) % cap];
      if (r === undefined) continue;
      if (method !== undefined && r.method !== method) continue;
      if (filter.account !== undefined && r.account !== filter.account) continue;
      if (filter.sinceSeq !== undefined && r.seq <= filter.sinceSeq) continue;
      if (filter.path !== undefined) {
        if (typeof filter.path === 'string' ? r.path !== filter.path : !testRegExp(filter.path, r.path)) continue;
      }
      out.push(r);
    }
    return out;
  }

  clear(): void {
    this.buf.fill(undefined);
    this.sizes.fill(0);
    this.bodyBytes = 0;
    this.start = 0;
    this.size = 0;
  }
}

/** RegExp.test without the lastIndex trap of global/sticky patterns. */
export function testRegExp(re: RegExp, text: string): boolean {
  re.lastIndex = 0;
  return re.test(text);
}
