import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ByteBudget } from '../runtime/limits.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AnchoreHttpClient, type AnchoreHttpConfig } from './anchore.http.ts';
import { AnchoreError } from './errors.ts';
import { processResponseBudget } from './transport.ts';
import { DEFAULT_RESPONSE_BUDGET, DEFAULT_RESPONSE_LIMIT, ERROR_BODY_LIMIT, RESPONSE_LIMITS, formatBytes } from './response-limits.ts';

const MiB = 1024 * 1024;
const log = createLogger({ level: 'silent', pretty: false });

/** How the local server answers one image's vulnerability read. */
interface Answer {
  bytes: number;
  /** No content-length: the body comes in 64 KiB chunks. */
  chunked?: boolean;
  /** Send the first byte, then wait this long before the rest. */
  stallMs?: number;
  /** Send half the body, then wait this long before the rest. */
  pauseAtHalfMs?: number;
}

/** A JSON document of exactly `bytes` bytes that reads as an empty vulnerability list. */
function vulnerabilityBody(bytes: number): Buffer {
  const head = '{"vulnerabilities":[],"pad":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail);
}

/**
 * A local stand-in for Anchore on 127.0.0.1 that answers GET /v2/images/<digest>/vuln/all with a body of the size set
 * for that digest, and GET /v2/version with `versionBytes` bytes; it records how many answers it was sending at once.
 */
class BigAnswers {
  readonly answers = new Map<string, Answer>();
  versionBytes = 100;
  versionChunked = false;
  sending = 0;
  maxSending = 0;
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#serve(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === '/v2/version') {
      await this.#send(
        res,
        { bytes: this.versionBytes, chunked: this.versionChunked },
        Buffer.from(JSON.stringify({ service: { version: '5.26.0' }, api: { version: '2' }, pad: 'x'.repeat(Math.max(0, this.versionBytes - 60)) })),
      );
      return;
    }
    const digest = /^\/v2\/images\/(sha256:[0-9a-f]{64})\/vuln\/all$/.exec(path)?.[1];
    const answer = digest ? this.answers.get(digest) : undefined;
    if (!answer) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
      return;
    }
    await this.#send(res, answer, vulnerabilityBody(answer.bytes));
  }

  async #send(res: ServerResponse, a: Answer, body: Buffer): Promise<void> {
    this.sending++;
    this.maxSending = Math.max(this.maxSending, this.sending);
    try {
      res.writeHead(200, { 'content-type': 'application/json', ...(a.chunked ? {} : { 'content-length': String(body.length) }) });
      let off = 0;
      if (a.stallMs) {
        res.write(body.subarray(0, 1));
        off = 1;
        await new Promise((r) => setTimeout(r, a.stallMs));
      }
      let paused = false;
      while (off < body.length && !res.destroyed) {
        if (a.pauseAtHalfMs && !paused && off >= body.length / 2) {
          paused = true;
          await new Promise((r) => setTimeout(r, a.pauseAtHalfMs));
        }
        const piece = body.subarray(off, off + 64 * 1024);
        off += piece.length;
        if (!res.write(piece)) await new Promise<void>((r) => (res.once('drain', r), res.once('close', r)));
      }
      res.end();
    } finally {
      this.sending--;
    }
  }
}

const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;

describe('the response byte budget, against a local server answering big bodies', () => {
  const server = new BigAnswers();
  const clients: AnchoreHttpClient[] = [];
  beforeAll(() => server.start());
  beforeEach(() => {
    server.answers.clear();
    server.versionBytes = 100;
    server.versionChunked = false;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  });

  function client(budget: ByteBudget, over: Partial<AnchoreHttpConfig> = {}): AnchoreHttpClient {
    const c = new AnchoreHttpClient({
      url: server.url,
      auth: { type: 'basic', username: 'admin', password: 'foobar' },
      log,
      proxyEnv: {},
      concurrency: 16,
      responseBudget: budget,
      retry: { attempts: 1 },
      ...over,
    });
    clients.push(c);
    return c;
  }

  it('when 8 answers of 6 MiB with a content-length come at once, then all are read while the bytes held never exceed the 16 MiB budget, and all are given back', async () => {
    const budget = new ByteBudget(16 * MiB);
    for (let i = 0; i < 8; i++) server.answers.set(digest(i), { bytes: 6 * MiB });
    const c = client(budget);
    const lists = await Promise.all(Array.from({ length: 8 }, (_, i) => c.vulnerabilities('admin', digest(i))));
    expect(lists).toEqual(Array.from({ length: 8 }, () => []));
    expect(budget.peak).toBeLessThanOrEqual(16 * MiB);
    // Two answers at a time fit (12 MiB), never a third (18 MiB).
    expect(budget.peak).toBeGreaterThan(6 * MiB);
    expect(budget.used).toBe(0);
    expect(budget.waiting).toBe(0);
  });

  it('when 4 answers of 8 MiB come without a content-length, each pausing halfway, then the budget grows chunk by chunk and never exceeds 16 MiB; the reader refused to break the standstill is retried (costing no attempt) and every call succeeds', async () => {
    const budget = new ByteBudget(16 * MiB);
    // About 4 × 4 MiB held at the pause: the whole budget. Then all four want more: a standstill.
    for (let i = 0; i < 4; i++) server.answers.set(digest(i), { bytes: 8 * MiB, chunked: true, pauseAtHalfMs: 300 });
    const events: Array<{ status: number; errorKind?: string }> = [];
    // One attempt per call: a standstill in this process is not Anchore failing, so its retries are extra.
    const c = client(budget, { retry: { attempts: 1, backoff: { baseMs: 50, maxMs: 200, jitter: 0.5 } }, onRequest: (e) => events.push(e) });
    const lists = await Promise.all(Array.from({ length: 4 }, (_, i) => c.vulnerabilities('admin', digest(i))));
    expect(lists).toEqual(Array.from({ length: 4 }, () => []));
    expect(budget.peak).toBeLessThanOrEqual(16 * MiB);
    expect(budget.peak).toBeGreaterThan(12 * MiB); // all four were being read at once
    expect(budget.used).toBe(0);
    // The failed attempts on the way were protocol errors (a standstill broken), never a crash or a lost answer.
    const failed = events.filter((e) => e.errorKind !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((e) => e.errorKind === 'protocol' && e.status === 200)).toBe(true);
    expect(events.filter((e) => e.errorKind === undefined)).toHaveLength(4);
  });

  it.each([
    ['with a content-length', false, /^version_check: unexpected response: response body of 20971\d\d bytes \(content-length\) exceeds the 1 MiB limit for version_check; not read$/],
    ['without a content-length', true, /^version_check: unexpected response: response body exceeds the 1 MiB limit for version_check; stopped reading there$/],
  ])('when an answer is larger than its operation allows (%s), then the call fails with kind protocol naming the limit, and holds nothing afterwards', async (_name, chunked, message) => {
    const budget = new ByteBudget(16 * MiB);
    server.versionBytes = 2 * MiB;
    server.versionChunked = chunked;
    const err = await client(budget)
      .version()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnchoreError);
    expect((err as AnchoreError).kind).toBe('protocol');
    expect((err as AnchoreError).message).toMatch(message);
    expect(budget.peak).toBeLessThanOrEqual(1 * MiB + 64 * 1024);
    expect(budget.used).toBe(0);
  });

  it.each([
    [
      'with a content-length',
      false,
      /^get_image_vulnerabilities_by_digest: unexpected response: response body of 6291456 bytes \(content-length\) exceeds the whole 4 MiB response budget \(shared by all answers being read at once\); not read$/,
    ],
    [
      'without a content-length',
      true,
      /^get_image_vulnerabilities_by_digest: unexpected response: response body exceeds the whole 4 MiB response budget \(shared by all answers being read at once\); not read$/,
    ],
  ])('when one answer is larger than the whole budget (%s), then it fails at once with kind protocol naming the budget', async (_name, chunked, message) => {
    const budget = new ByteBudget(4 * MiB);
    server.answers.set(digest(1), { bytes: 6 * MiB, chunked });
    const err = await client(budget)
      .vulnerabilities('admin', digest(1))
      .catch((e: unknown) => e);
    expect((err as AnchoreError).kind).toBe('protocol');
    expect((err as AnchoreError).message).toMatch(message);
    expect(budget.used).toBe(0);
  });

  it('when an answer waits for room in the budget past its deadline, then it fails with kind protocol saying so, and the answer holding the budget still arrives', async () => {
    const budget = new ByteBudget(8 * MiB);
    server.answers.set(digest(1), { bytes: 6 * MiB, stallMs: 800 });
    server.answers.set(digest(2), { bytes: 6 * MiB });
    const c = client(budget);
    const slow = c.vulnerabilities('admin', digest(1));
    await new Promise((r) => setTimeout(r, 200)); // the slow answer now holds 6 MiB
    const waiting = await client(budget, { timeouts: { requestMs: 300 } })
      .vulnerabilities('admin', digest(2))
      .catch((e: unknown) => e);
    expect((waiting as AnchoreError).kind).toBe('protocol');
    expect((waiting as AnchoreError).message).toBe(
      'get_image_vulnerabilities_by_digest: unexpected response: timed out waiting for room in the 8 MiB response budget (answers being read by other calls)',
    );
    await expect(slow).resolves.toEqual([]);
    expect(budget.used).toBe(0);
  });

  it('when no budget is given, then every client of the process counts its answers in one budget of DEFAULT_RESPONSE_BUDGET', async () => {
    const shared = processResponseBudget();
    expect(shared.limit).toBe(DEFAULT_RESPONSE_BUDGET);
    server.answers.set(digest(1), { bytes: 3 * MiB });
    const plain = (): AnchoreHttpClient => {
      const c = new AnchoreHttpClient({ url: server.url, auth: { type: 'basic', username: 'admin', password: 'foobar' }, log, proxyEnv: {} });
      clients.push(c);
      return c;
    };
    await Promise.all([plain().vulnerabilities('admin', digest(1)), plain().vulnerabilities('admin', digest(1))]);
    expect(shared.peak).toBeGreaterThanOrEqual(3 * MiB);
    expect(shared.peak).toBeLessThanOrEqual(6 * MiB);
    expect(shared.used).toBe(0);
  });
});

describe('response limits', () => {
  it('when the limits are chosen, then no operation may answer more than the whole budget, and error answers are read less far than any 2xx', () => {
    for (const [op, bytes] of Object.entries(RESPONSE_LIMITS)) expect(`${op} ${bytes <= DEFAULT_RESPONSE_BUDGET}`).toBe(`${op} true`);
    expect(DEFAULT_RESPONSE_LIMIT).toBeLessThanOrEqual(DEFAULT_RESPONSE_BUDGET);
    expect(ERROR_BODY_LIMIT).toBeLessThanOrEqual(Math.min(...Object.values(RESPONSE_LIMITS)));
  });

  it('when docs/anchore-contract.md lists the limits, then its table is exactly RESPONSE_LIMITS, the default and the budget', () => {
    const doc = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'anchore-contract.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## How large an answer may be'));
    const rows = new Map([...section.matchAll(/^ *\| `([a-z_]+)` \| ([0-9]+ MiB) \|/gm)].map((m) => [m[1] as string, m[2] as string]));
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(Object.entries(RESPONSE_LIMITS).map(([op, b]) => [op, formatBytes(b)])));
    expect(section).toContain(`any other operation: ${formatBytes(DEFAULT_RESPONSE_LIMIT)}`);
    expect(section).toContain(`**${formatBytes(DEFAULT_RESPONSE_BUDGET)}** budget`);
    expect(section).toContain(`Error answers (not 2xx) are read up to ${formatBytes(ERROR_BODY_LIMIT)}`);
  });
});
