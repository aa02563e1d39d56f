import { describe, expect, it } from '@jest/globals';
import { RequestLog } from './request-log.ts';
import type { RecordedRequest } from './types.ts';

function entry(log: RequestLog, path: string, body?: unknown): RecordedRequest {
  return { seq: log.takeSeq(), time: 0, method: 'GET', path, query: {}, account: undefined, user: undefined, status: 200, body, durationMs: 0, inFlight: 1 };
}

describe('request log', () => {
  it('when more entries arrive than the capacity, then the oldest are overwritten and order is kept', () => {
    const log = new RequestLog(3);
    for (const p of ['/a', '/b', '/c', '/d', '/e']) log.push(entry(log, p));
    expect(log.list().map((r) => r.path)).toEqual(['/c', '/d', '/e']);
    expect(log.list({ path: /^\/[de]$/ }).map((r) => r.seq)).toEqual([4, 5]);
  });

  it('when kept bodies exceed the byte budget, then the oldest bodies are replaced by a note and the newest kept', () => {
    const log = new RequestLog(10, 100);
    for (let i = 0; i < 5; i++) log.push(entry(log, `/p${i}`, { i }), 40);
    // 5 x 40 bytes against a budget of 100: each shed goes down to 75 bytes, so only the newest body survives.
    const bodies = log.list().map((r) => (typeof r.body === 'string' && r.body.includes('dropped') ? 'dropped' : r.body));
    expect(bodies).toEqual(['dropped', 'dropped', 'dropped', 'dropped', { i: 4 }]);
  });

  it('when cleared, then nothing is listed and sequence numbers keep increasing', () => {
    const log = new RequestLog(3);
    log.push(entry(log, '/a'));
    log.clear();
    expect(log.list()).toEqual([]);
    log.push(entry(log, '/b'));
    expect(log.list()[0]?.seq).toBe(2);
  });
});
