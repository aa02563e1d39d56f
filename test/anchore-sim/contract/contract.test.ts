import { describe, expect, it } from '@jest/globals';
import { checkRequest, checkResponse, describeViolations, type RequestFacts } from './contract.ts';
import { healthReportConsistency, OPERATION_BY_ID } from './operations.ts';

const op = (id: string) => {
  const o = OPERATION_BY_ID.get(id);
  if (!o) throw new Error(`no operation ${id}`);
  return o;
};
const json = (body: unknown, extra: Partial<RequestFacts> = {}): RequestFacts => ({
  params: {},
  query: {},
  contentType: 'application/json',
  bodyBytes: body === undefined ? 0 : JSON.stringify(body).length,
  body,
  parsed: true,
  ...extra,
});
const msgs = (vs: { path: string; message: string }[]): string[] => vs.map((v) => `${v.path}: ${v.message}`);
const D = `sha256:${'a'.repeat(64)}`;

describe('checkRequest', () => {
  it('when a query names a parameter the spec does not have, or a boolean is not true/false, then both are reported', () => {
    const vs = checkRequest(op('add_image'), json({ source: { tag: { pull_string: 'nginx:1' } } }, { query: { force: 'yes', autosubscribe: 'true' } }));
    expect(msgs(vs)).toEqual(['query: Extra query parameter(s) autosubscribe not in spec', 'query.force: must be true or false, got "yes"']);
  });

  it('when a required query parameter is missing or a path parameter is malformed, then it is reported', () => {
    expect(msgs(checkRequest(op('get_image_policy_check_by_digest'), { ...json(undefined), bodyBytes: 0, params: { image_digest: D } }))).toEqual(['query.tag: is required']);
    expect(checkRequest(op('get_image'), { ...json(undefined), bodyBytes: 0, params: { image_digest: 'sha256:xyz' } })).toHaveLength(1);
    expect(checkRequest(op('get_image_policy_check_by_digest'), { ...json(undefined), bodyBytes: 0, params: { image_digest: D }, query: { tag: 'docker.io/nginx:1', detail: 'True' } })).toEqual([]);
  });

  it('when a body is missing, has the wrong media type, does not parse, or a GET carries one, then each is refused', () => {
    expect(msgs(checkRequest(op('add_image'), { ...json(undefined), bodyBytes: 0 }))).toEqual(['body: a application/json body is required']);
    expect(msgs(checkRequest(op('add_image'), json({}, { contentType: 'text/plain' })))).toEqual(['content-type: must be application/json, got text/plain']);
    expect(msgs(checkRequest(op('add_image'), json(undefined, { bodyBytes: 3, parsed: false })))).toEqual(['body: is not valid JSON']);
    expect(msgs(checkRequest(op('list_images'), json({ a: 1 })))).toEqual(['body: this operation takes no request body']);
  });

  it('when an image source sets two types or none, then the prose rule refuses it', () => {
    expect(msgs(checkRequest(op('add_image'), json({ source: { tag: { pull_string: 'a:1' }, digest: { pull_string: `a@${D}`, tag: 'a:1' } } })))).toEqual([
      '$.source: must set exactly one source type, got tag, digest',
    ]);
    expect(msgs(checkRequest(op('add_image'), json({ source: {} })))).toEqual(['$.source: must set exactly one source type, got none']);
  });

  it('when a registration interval is outside 30–600 or an inventory id is not a UUID, then it is refused', () => {
    const reg = { registration_id: 'r', registration_instance_id: 'i', type: 'k8s_inventory_agent', username: 'admin', health_report_interval: 10 };
    expect(msgs(checkRequest(op('register_integration'), json(reg)))).toEqual(['$.health_report_interval: must be ≥ 30, got 10']);
    const inv = { cluster_name: 'c', timestamp: '2026-12-01T10:00:00Z', namespaces: [{ uid: 'ns-1', name: 'shop' }] };
    // Too short and not the UUID pattern: both said, at the same path.
    expect(new Set(checkRequest(op('post_kubernetes_inventory'), json(inv)).map((v) => v.path))).toEqual(new Set(['$.namespaces[0].uid']));
  });
});

describe('checkResponse', () => {
  it('when a status is not a success status of the operation, or a body is missing/extra, then it is reported', () => {
    expect(msgs(checkResponse(op('post_kubernetes_inventory'), 200, undefined))).toEqual(['status: 200 is not a success status of post_kubernetes_inventory (spec: 201, 204)']);
    expect(checkResponse(op('post_kubernetes_inventory'), 201, undefined)).toEqual([]);
    expect(msgs(checkResponse(op('post_kubernetes_inventory'), 204, {}))).toEqual(['body: post_kubernetes_inventory answers 204 without a body']);
    expect(msgs(checkResponse(op('get_image'), 200, undefined))).toEqual(['body: get_image answers 200 with a body']);
  });

  it('when an error answers, then it must have one of the error shapes', () => {
    expect(checkResponse(op('get_image'), 404, { message: 'Image not found', httpcode: 404, detail: {} })).toEqual([]);
    expect(checkResponse(op('get_image'), 404, { oops: true }).length).toBeGreaterThan(0);
  });

  it('describeViolations names the first few and counts the rest', () => {
    const vs = [1, 2, 3, 4, 5].map((i) => ({ path: `$.a${i}`, message: 'bad' }));
    expect(describeViolations(vs)).toBe('$.a1 bad; $.a2 bad; $.a3 bad (and 2 more)');
    expect(describeViolations(vs.slice(0, 1))).toBe('$.a1 bad');
  });
});

describe('healthReportConsistency', () => {
  const report = (info: Record<string, unknown>, account = 'admin') => ({
    health_data: { account_k8s_inventory_reports: { [account]: { account_name: account, report_timestamp: 't', sent_as_user: 'admin', ...info } } },
  });
  const b = (i: number, error?: string) => ({ batch_index: i, send_timestamp: '2026-12-01T10:00:00Z', ...(error ? { error } : {}) });

  it('when every batch got through and all are listed from 1, then it is consistent', () => {
    expect(healthReportConsistency(report({ batch_size: 2, last_successful_index: 2, has_errors: false, batches: [b(1), b(2)] }))).toEqual([]);
  });

  it('when batches are numbered from 0, then each wrong index is reported (the bug k8s-inventory does not have)', () => {
    const vs = healthReportConsistency(report({ batch_size: 2, last_successful_index: 1, has_errors: false, batches: [b(0), b(1)] }));
    expect(vs.map((v) => v.message)).toEqual([
      'must be 1 (batches are numbered from 1, in the order sent), got 0',
      'must be 2 (batches are numbered from 1, in the order sent), got 1',
      'must be 2 (every batch got through), got 1',
    ]);
  });

  it('when only failed batches are listed, or has_errors disagrees with the batches, then it is reported', () => {
    expect(healthReportConsistency(report({ batch_size: 3, last_successful_index: 3, has_errors: false, batches: [] })).map((v) => v.message)).toEqual([
      'must list every batch sent: 0 listed, batch_size 3, none failed',
    ]);
    expect(healthReportConsistency(report({ batch_size: 1, last_successful_index: -1, has_errors: false, batches: [b(1, 'HTTP 500')] })).map((v) => v.message)).toEqual([
      'must be true (1 of the listed batches carry an error)',
    ]);
  });

  it('when last_successful_index names no listed batch, or the account name differs from its key, then it is reported', () => {
    expect(healthReportConsistency(report({ batch_size: 2, last_successful_index: 5, has_errors: true, batches: [b(1), b(2, 'x')] })).map((v) => v.message)).toEqual([
      'must be -1 or the batch_index of a listed batch, got 5',
    ]);
    const wrongName = { health_data: { account_k8s_inventory_reports: { admin: { account_name: 'team-a', batch_size: 1, last_successful_index: 1, has_errors: false, batches: [b(1)] } } } };
    expect(healthReportConsistency(wrongName).map((v) => v.path)).toEqual(['$.health_data.account_k8s_inventory_reports["admin"].account_name']);
  });
});
