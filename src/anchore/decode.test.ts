import { describe, expect, it } from '@jest/globals';
import {
  addImageBody,
  graphqlDateTime,
  healthReportBody,
  isDigest,
  operationsInSpec,
  parseImage,
  readGraphqlPage,
  readImage,
  readImageList,
  readIntegrationUuid,
  readMetricInfo,
  readMetricPoint,
  readPolicy,
  readPolicyCheck,
  readPolicyList,
  readTokenResponse,
  readVersion,
  readVulnerabilities,
} from './decode.ts';
import { AnchoreError } from './errors.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;

/** The AnchoreError `fn` throws (failing the test when it throws nothing or something else). */
function thrown(fn: () => unknown): AnchoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AnchoreError);
    return err as AnchoreError;
  }
  throw new Error('expected an AnchoreError');
}

describe('isDigest', () => {
  it.each([
    [DIGEST, true],
    [`sha256:${'AB'.repeat(32)}`, false],
    [`sha256:${'ab'.repeat(31)}`, false],
    [`sha512:${'ab'.repeat(32)}`, false],
    [42, false],
    [undefined, false],
  ])('when the value is %p, then it is a digest: %p', (v, want) => {
    expect(isDigest(v)).toBe(want);
  });
});

describe('readVersion', () => {
  it('when every part is there, then service, api and db are read', () => {
    expect(readVersion({ service: { version: '5.12.0' }, api: { version: '2' }, db: { schema_version: '600' } }, 'version_check')).toEqual({
      service: '5.12.0',
      api: '2',
      db: '600',
    });
  });

  it('when parts are missing, empty or of the wrong type, then they are undefined', () => {
    expect(readVersion({ service: { version: '' }, api: 'v2', db: { schema_version: 600 } }, 'version_check')).toEqual({
      service: undefined,
      api: undefined,
      db: undefined,
    });
  });

  it('when the body is not an object, then it is a protocol error naming the operation', () => {
    const e = thrown(() => readVersion('v2', 'version_check'));
    expect(e.kind).toBe('protocol');
    expect(e.message).toBe('version_check: unexpected response: expected a JSON object, got the string "v2"');
  });
});

describe('operationsInSpec', () => {
  it('when a spec uses servers /v2 with bare paths or full /v2 paths, then operations are found either way', () => {
    const a = operationsInSpec({ servers: [{ url: '/v2' }], paths: { '/images/{image_digest}': { get: {} } } });
    const b = operationsInSpec({ paths: { '/v2/images/{digest}': { get: {} } } });
    expect([...a]).toEqual(['GET /images/{}']);
    expect([...b]).toEqual(['GET /images/{}']);
  });

  it('when a path item lists parameters next to its methods, then only the methods count', () => {
    const ops = operationsInSpec({ paths: { '/v2/images/{d}/check': { parameters: [], get: {}, post: {} }, '/v2': { get: {} } } });
    expect([...ops]).toEqual(['GET /images/{}/check', 'POST /images/{}/check', 'GET /']);
  });

  it.each([[null], ['spec'], [{}], [{ paths: 'x' }], [{ paths: { '/images': null } }]])('when the spec is %p, then no operation is found', (spec) => {
    expect(operationsInSpec(spec).size).toBe(0);
  });
});

describe('parseImage', () => {
  it('when an image has every field, then all are read and tags come from image_detail', () => {
    const raw = {
      image_digest: DIGEST,
      parent_digest: OTHER,
      analysis_status: 'analyzed',
      image_status: 'active',
      account_name: 'admin',
      created_at: '2026-01-01T00:00:00Z',
      last_updated: '2026-01-02T00:00:00Z',
      image_detail: [{ full_tag: 'docker.io/library/nginx:1.25' }, { full_tag: 7 }, null, { full_tag: 'docker.io/library/nginx:latest' }],
    };
    expect(parseImage(raw)).toEqual({
      image: {
        image_digest: DIGEST,
        parent_digest: OTHER,
        analysis_status: 'analyzed',
        image_status: 'active',
        account_name: 'admin',
        created_at: '2026-01-01T00:00:00Z',
        last_updated: '2026-01-02T00:00:00Z',
        full_tags: ['docker.io/library/nginx:1.25', 'docker.io/library/nginx:latest'],
      },
    });
  });

  it('when optional fields have the wrong types, then they are dropped and the image is still read', () => {
    expect(parseImage({ image_digest: DIGEST, analysis_status: 'analyzing', parent_digest: 5, image_status: null, image_detail: 'x' })).toEqual({
      image: { image_digest: DIGEST, analysis_status: 'analyzing', full_tags: [] },
    });
  });

  it.each([
    [[], 'expected an image object, got an array'],
    [null, 'expected an image object, got null'],
    [{ analysis_status: 'analyzed' }, 'image_digest is missing, not a sha256 digest'],
    [{ image_digest: 12, analysis_status: 'analyzed' }, 'image_digest is the number 12, not a sha256 digest'],
    [{ image_digest: 'sha256:xyz', analysis_status: 'analyzed' }, 'image_digest is the string "sha256:xyz", not a sha256 digest'],
    [{ image_digest: DIGEST }, `analysis_status of ${DIGEST} is missing, not a string`],
    [{ image_digest: DIGEST, analysis_status: 3 }, `analysis_status of ${DIGEST} is the number 3, not a string`],
  ])('when the image is %p, then the problem is %p', (raw, problem) => {
    expect(parseImage(raw)).toEqual({ problem });
  });

  it('when analysis_status is a value this operator does not know, then it reads as unknown and the value is returned', () => {
    expect(parseImage({ image_digest: DIGEST, analysis_status: 'queued_for_magic' })).toEqual({
      image: { image_digest: DIGEST, analysis_status: 'unknown', full_tags: [] },
      unknownStatus: 'queued_for_magic',
    });
  });

  it('when a string is very long, then the problem quotes at most 80 characters of it', () => {
    const r = parseImage({ image_digest: 'x'.repeat(500), analysis_status: 'analyzed' });
    expect(r.problem).toBe(`image_digest is the string "${'x'.repeat(80)}…", not a sha256 digest`);
  });
});

describe('readImage', () => {
  it('when the answer is an image or a one-element list (V1), then the image is read', () => {
    const raw = { image_digest: DIGEST, analysis_status: 'analyzed' };
    expect(readImage(raw, 'get_image')).toEqual({ image: { image_digest: DIGEST, analysis_status: 'analyzed', full_tags: [] } });
    expect(readImage([raw], 'get_image')).toEqual(readImage(raw, 'get_image'));
  });

  it('when the status is unknown, then it is returned for the client to warn about', () => {
    expect(readImage({ image_digest: DIGEST, analysis_status: 'new_state' }, 'add_image').unknownStatus).toBe('new_state');
  });

  it('when the answer is not a readable image, then it is a protocol error for the given operation', () => {
    const e = thrown(() => readImage({ image_digest: 1, analysis_status: 'analyzed' }, 'add_image'));
    expect(e.kind).toBe('protocol');
    expect(e.operation).toBe('add_image');
    expect(e.message).toBe('add_image: unexpected response: image_digest is the number 1, not a sha256 digest');
    expect(thrown(() => readImage([], 'get_image')).message).toBe('get_image: unexpected response: expected an image object, got missing');
  });
});

describe('readImageList', () => {
  const good = { image_digest: DIGEST, analysis_status: 'analyzed' };

  it('when the list is wrapped in items (V2) or bare (V1), then the images are read', () => {
    const want = { images: [{ image_digest: DIGEST, analysis_status: 'analyzed', full_tags: [] }], unknownStatuses: [], dropped: 0 };
    expect(readImageList({ items: [good] }, 'list_images')).toEqual(want);
    expect(readImageList([good], 'list_images')).toEqual(want);
  });

  it('when entries are unreadable or of unknown status, then the good ones are kept, the rest counted with the first problem', () => {
    const r = readImageList({ items: [7, good, { image_digest: 'nope', analysis_status: 'analyzed' }, { image_digest: OTHER, analysis_status: 'later' }] }, 'list_images');
    expect(r.images.map((i) => [i.image_digest, i.analysis_status])).toEqual([
      [DIGEST, 'analyzed'],
      [OTHER, 'unknown'],
    ]);
    expect(r.unknownStatuses).toEqual([{ digest: OTHER, value: 'later' }]);
    expect(r.dropped).toBe(2);
    expect(r.example).toBe('expected an image object, got the number 7');
  });

  it.each([
    [{ items: { a: 1 } }, '"items" is an object, not an array of images'],
    [{}, '"items" is missing, not an array of images'],
    [42, 'expected a JSON object, got the number 42'],
  ])('when the answer is %p, then it is a protocol error: %s', (body, message) => {
    const e = thrown(() => readImageList(body, 'list_images'));
    expect(e.kind).toBe('protocol');
    expect(e.message).toBe(`list_images: unexpected response: ${message}`);
  });
});

describe('readIntegrationUuid', () => {
  it('when the answer carries a uuid, then it is returned', () => {
    expect(readIntegrationUuid({ uuid: 'u-1', name: 'x' }, 'register_integration')).toBe('u-1');
  });

  it.each([[{}], [{ uuid: '' }], [{ uuid: 5 }]])('when the answer is %p, then it is a protocol error', (body) => {
    expect(thrown(() => readIntegrationUuid(body, 'register_integration')).message).toBe('register_integration: unexpected response: response has no uuid');
  });
});

describe('readPolicyList and readPolicy', () => {
  it('when policies come bare or in items, then entries without a policy_id are skipped and names default to the id', () => {
    const body = [
      { policy_id: 'p1', name: 'Default', active: true, last_updated: '2026-01-01T00:00:00Z' },
      { policy_id: 'p2', active: 'yes', last_updated: 3 },
      { name: 'no id' },
      { policy_id: '' },
      null,
    ];
    const want = [
      { policy_id: 'p1', name: 'Default', active: true, last_updated: '2026-01-01T00:00:00Z' },
      { policy_id: 'p2', name: 'p2', active: false },
    ];
    expect(readPolicyList(body, 'list_policies')).toEqual(want);
    expect(readPolicyList({ items: body }, 'list_policies')).toEqual(want);
  });

  it('when the policy list is not a list, then it is a protocol error', () => {
    expect(thrown(() => readPolicyList({ items: 'x' }, 'list_policies')).message).toBe('list_policies: unexpected response: expected an array of policies');
  });

  it('when one policy is read, then a one-element list is accepted and a record without policy_id is a protocol error', () => {
    expect(readPolicy([{ policy_id: 'p1', name: 'n', active: true }], 'get_policy')).toEqual({ policy_id: 'p1', name: 'n', active: true });
    expect(thrown(() => readPolicy({ name: 'n' }, 'get_policy')).message).toBe('get_policy: unexpected response: response is not a PolicyRecord');
  });
});

describe('readPolicyCheck', () => {
  const evaluation = (results: unknown[]): Record<string, unknown> => ({ policy_id: 'p1', image_digest: DIGEST, evaluated_tag: 'docker.io/x:1', evaluations: results });

  it('when the V2 evaluation fails, then the failing result decides and stop findings come first, go and allowlisted ones left out', () => {
    const check = readPolicyCheck(
      evaluation([
        { status: 'pass', final_action: 'go' },
        {
          status: 'fail',
          final_action: 'stop',
          final_action_reason: 'policy_evaluation',
          evaluation_time: '2026-01-01T00:00:00Z',
          details: {
            findings: [
              { gate: 'vulnerabilities', trigger: 'package', action: 'warn', message: 'w' },
              { gate: 'dockerfile', trigger: 'instruction', action: 'go', message: 'g' },
              { gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: 's', allowlisted: true },
              { gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: 'x'.repeat(2000) },
              'junk',
            ],
          },
        },
      ]),
      DIGEST,
      'docker.io/x:1',
    );
    expect(check).toEqual({
      policy_id: 'p1',
      image_digest: DIGEST,
      evaluated_tag: 'docker.io/x:1',
      status: 'fail',
      final_action: 'stop',
      final_action_reason: 'policy_evaluation',
      number_of_findings: 2,
      evaluation_time: '2026-01-01T00:00:00Z',
      findings: [
        { gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: 'x'.repeat(1024) },
        { gate: 'vulnerabilities', trigger: 'package', action: 'warn', message: 'w' },
      ],
    });
  });

  it('when no result fails, then the last one decides and number_of_findings is taken as sent', () => {
    const check = readPolicyCheck(
      evaluation([
        { status: 'pass', final_action: 'stop' },
        { status: 'pass', final_action: 'warn', number_of_findings: 9 },
      ]),
      DIGEST,
      't',
    );
    expect(check).toMatchObject({ status: 'pass', final_action: 'warn', number_of_findings: 9, findings: [] });
  });

  it('when the V1 list shape is answered, then the result under the digest is read and the ids come from the arguments', () => {
    const check = readPolicyCheck([{ [DIGEST]: { 'docker.io/x:1': [{ status: 'pass', final_action: 'go', policy_id: 'p9' }] } }], DIGEST, 'docker.io/x:1');
    expect(check).toMatchObject({ policy_id: 'p9', image_digest: DIGEST, evaluated_tag: 'docker.io/x:1', status: 'pass', final_action: 'go' });
  });

  it('when a finding has an action this operator does not know, then it is kept as unknown and the verdict stands', () => {
    const check = readPolicyCheck(evaluation([{ status: 'pass', final_action: 'warn', details: { findings: [{ gate: 'g', trigger: 't', action: 'shrug' }] } }]), DIGEST, 't');
    expect(check).toMatchObject({ final_action: 'warn', findings: [{ gate: 'g', trigger: 't', action: 'unknown', message: '' }] });
  });

  it('when status is neither pass nor fail, then it reads as unknown', () => {
    expect(readPolicyCheck(evaluation([{ status: 'weird', final_action: 'go' }]), DIGEST, 't')).toMatchObject({ status: 'unknown' });
  });

  it.each([
    [{ evaluations: [] }, 'response is not a PolicyEvaluation (no evaluations)'],
    [{}, 'response is not a PolicyEvaluation (no evaluations)'],
    [[{ [OTHER]: {} }], 'response is not a PolicyEvaluation (no evaluations)'],
    [{ evaluations: [null, 3] }, 'response is not a PolicyEvaluation (no evaluation objects)'],
    [{ evaluations: [{ status: 'pass', final_action: 'maybe' }] }, 'final_action is the string "maybe", not go, warn or stop; the verdict cannot be read'],
    [{ evaluations: [{ status: 'pass' }] }, 'final_action is missing, not go, warn or stop; the verdict cannot be read'],
  ])('when the answer is %p, then the verdict cannot be read: %s', (raw, problem) => {
    expect(readPolicyCheck(raw, DIGEST, 't')).toBe(problem);
  });
});

describe('readVulnerabilities', () => {
  it('when vulnerabilities are listed, then severities are normalised, unknown ones counted as Unknown, and "None" is no fix', () => {
    const body = {
      vulnerabilities: [
        { vuln: 'CVE-1', severity: 'CRITICAL', package: 'openssl', fix: '3.0.1' },
        { vuln: 'CVE-2', severity: 'medium', package_name: 'zlib', fix: 'None' },
        { vuln: 'CVE-3', severity: 'catastrophic' },
        { vuln: 'CVE-4', severity: 4, fix: '' },
        null,
        'junk',
      ],
    };
    expect(readVulnerabilities(body, 'get_image_vulnerabilities_by_digest')).toEqual([
      { id: 'CVE-1', severity: 'Critical', package: 'openssl', fix: '3.0.1' },
      { id: 'CVE-2', severity: 'Medium', package: 'zlib' },
      { id: 'CVE-3', severity: 'Unknown', package: '' },
      { id: 'CVE-4', severity: 'Unknown', package: '' },
    ]);
  });

  it.each([
    [{}, 'response has no vulnerabilities array'],
    [{ vulnerabilities: {} }, 'response has no vulnerabilities array'],
    [[], 'expected a JSON object, got an array'],
  ])('when the answer is %p, then it is a protocol error: %s', (body, message) => {
    expect(thrown(() => readVulnerabilities(body, 'get_image_vulnerabilities_by_digest')).message).toBe(`get_image_vulnerabilities_by_digest: unexpected response: ${message}`);
  });
});

describe('Reports GraphQL', () => {
  it('when a page has results and a next token, then the object results and the token are returned', () => {
    const body = { data: { metrics: { pageInfo: { nextToken: 'n2', count: 2 }, results: [{ id: 'm1' }, null, { id: 'm2' }] } } };
    expect(readGraphqlPage(body, 'metrics', 'reports_graphql')).toEqual({ results: [{ id: 'm1' }, { id: 'm2' }], nextToken: 'n2' });
  });

  it('when it is the last page (no or empty token, no results), then nextToken is undefined', () => {
    expect(readGraphqlPage({ data: { metrics: { pageInfo: { nextToken: '' } } } }, 'metrics', 'reports_graphql')).toEqual({ results: [], nextToken: undefined });
    expect(readGraphqlPage({ data: { metrics: {} } }, 'metrics', 'reports_graphql')).toEqual({ results: [], nextToken: undefined });
  });

  it('when GraphQL reports errors, then an unknown metric is not-found and anything else rejected', () => {
    const unknown = thrown(() => readGraphqlPage({ data: { metricData: null }, errors: [{ message: 'Unknown metric id: x' }] }, 'metricData', 'reports_graphql'));
    expect([unknown.kind, unknown.message]).toEqual(['not-found', 'reports_graphql: Unknown metric id: x']);
    const other = thrown(() => readGraphqlPage({ errors: [{ message: 'bad' }, {}] }, 'metrics', 'reports_graphql'));
    expect([other.kind, other.message]).toEqual(['rejected', 'reports_graphql: bad; error']);
  });

  it('when the field is missing, then it is a protocol error naming it', () => {
    const e = thrown(() => readGraphqlPage({ data: {} }, 'metrics', 'reports_graphql'));
    expect([e.kind, e.message]).toEqual(['protocol', 'reports_graphql: unexpected response: no data.metrics in the response']);
  });

  it('when metric results are read, then one without an id is skipped and the name defaults to the id', () => {
    expect(readMetricInfo({ id: 'm1', name: 'Criticals', metricType: 'count' })).toEqual({ id: 'm1', name: 'Criticals', metricType: 'count' });
    expect(readMetricInfo({ id: 'm2' })).toEqual({ id: 'm2', name: 'm2', metricType: '' });
    expect(readMetricInfo({ name: 'no id' })).toBeUndefined();
  });

  it('when data points are read, then a numeric string counts and a point without time or number is skipped', () => {
    expect(readMetricPoint({ collectedAt: '2026-01-01T00:00:00Z', value: 3 })).toEqual({ collectedAt: '2026-01-01T00:00:00Z', value: 3 });
    expect(readMetricPoint({ collectedAt: '2026-01-01T00:00:00Z', value: '4.5' })).toEqual({ collectedAt: '2026-01-01T00:00:00Z', value: 4.5 });
    expect(readMetricPoint({ collectedAt: '2026-01-01T00:00:00Z', value: 'many' })).toBeUndefined();
    expect(readMetricPoint({ value: 1 })).toBeUndefined();
  });

  it('when a filter time is formatted, then it is UTC to the second without a zone suffix', () => {
    expect(graphqlDateTime(new Date('2026-12-06T04:43:49.123Z'))).toBe('2026-12-06T04:43:49');
  });
});

describe('readTokenResponse', () => {
  it('when the token answer is complete, then all three fields are read', () => {
    expect(readTokenResponse({ access_token: 'a', expires_in: 3600, refresh_token: 'r', token_type: 'bearer' }, 'get_oauth_token')).toEqual({
      access_token: 'a',
      expires_in: 3600,
      refresh_token: 'r',
    });
  });

  it('when expiry or refresh token have the wrong type, then they are absent', () => {
    expect(readTokenResponse({ access_token: 'a', expires_in: '3600', refresh_token: 1 }, 'get_oauth_token')).toEqual({
      access_token: 'a',
      expires_in: undefined,
      refresh_token: undefined,
    });
  });

  it('when there is no access_token, then it is a protocol error', () => {
    expect(thrown(() => readTokenResponse({ token: 'a' }, 'get_oauth_token')).message).toBe('get_oauth_token: unexpected response: token response has no access_token');
  });
});

describe('request bodies', () => {
  it('when an image is added with a digest, then the source is a digest source carrying the tag; without one, a tag source', () => {
    expect(addImageBody({ tag: 'docker.io/x:1', digestPullString: `docker.io/x@${DIGEST}`, annotations: { a: 'b' } })).toEqual({
      source: { digest: { pull_string: `docker.io/x@${DIGEST}`, tag: 'docker.io/x:1' } },
      annotations: { a: 'b' },
      image_type: 'docker',
    });
    expect(addImageBody({ tag: 'docker.io/x:1', force: true })).toEqual({ source: { tag: { pull_string: 'docker.io/x:1' } }, annotations: {}, image_type: 'docker' });
  });

  it('when a health report is built, then each account is filed under its name, sent as the user, at a whole-second UTC time', () => {
    const batch = { batch_index: 1, send_timestamp: '2026-01-01T00:00:00Z' };
    const report = {
      uptime: 12,
      health_report_interval: 60,
      errors: ['e'],
      accounts: { team: { report_timestamp: '2026-01-01T00:00:00Z', batch_size: 1, last_successful_index: 1, has_errors: false, batches: [batch] } },
    };
    expect(healthReportBody(report, 'admin', new Date('2026-01-01T00:00:05.678Z'), 'id-1')).toEqual({
      uuid: 'id-1',
      protocol_version: 1,
      timestamp: '2026-01-01T00:00:05Z',
      uptime: 12,
      health_report_interval: 60,
      health_data: {
        type: 'k8s_inventory_agent',
        version: 1,
        errors: ['e'],
        account_k8s_inventory_reports: {
          team: { report_timestamp: '2026-01-01T00:00:00Z', account_name: 'team', sent_as_user: 'admin', batch_size: 1, last_successful_index: 1, has_errors: false, batches: [batch] },
        },
      },
    });
  });
});
