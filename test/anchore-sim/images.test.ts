import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DOCKERFILE_WITHOUT_FORCE, startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { call, digestOf, digestSource, tagSource, waitFor } from './test-client.ts';

const QUEUED_MS = 40;
const ANALYZING_MS = 80;
const FAILING = digestOf('f');

let sim: AnchoreSimulator;

beforeAll(async () => {
  sim = await startSimulator({ config: { analysis: { queued_ms: QUEUED_MS, analyzing_ms: ANALYZING_MS, fail_digests: [FAILING], fail_rate: 0 } } });
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

async function add(body: unknown, query = ''): Promise<{ status: number; body: any }> {
  return call(sim.url, 'POST', `/v2/images${query}`, { json: body });
}

async function statusOf(digest: string): Promise<string> {
  return (await call(sim.url, 'GET', `/v2/images/${digest}`)).body.analysis_status;
}

describe('POST /v2/images', () => {
  it('when adding by digest with a tag, then 200 with a single AnchoreImage keyed by that digest', async () => {
    const d = digestOf('a');
    const res = await add(digestSource('docker.io/library/nginx', d, 'docker.io/library/nginx:1.25'));
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(false);
    expect(res.body).toMatchObject({
      image_digest: d,
      parent_digest: d,
      account_name: 'admin',
      image_status: 'active',
      analysis_status: 'not_analyzed',
      image_detail: [{ full_tag: 'docker.io/library/nginx:1.25', registry: 'docker.io', repo: 'library/nginx', tag: '1.25', full_digest: `docker.io/library/nginx@${d}` }],
    });
  });

  it('when adding by digest without a tag, then 400', async () => {
    const res = await add({ source: { digest: { pull_string: `nginx@${digestOf('a')}` } } });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('tag');
  });

  it('when the digest pull string has no valid digest, then 400', async () => {
    const res = await add({ source: { digest: { pull_string: 'nginx@sha256:1234', tag: 'nginx:1' } } });
    expect(res.status).toBe(400);
  });

  it('when a creation_timestamp_override is given, then it becomes tag_detected_at', async () => {
    const body = digestSource('nginx', digestOf('a'), 'nginx:1');
    (body.source as any).digest.creation_timestamp_override = '2024-02-03T04:05:06Z';
    const res = await add(body);
    expect(res.body.image_detail[0].tag_detected_at).toBe('2024-02-03T04:05:06Z');
  });

  it('when adding by tag, then the digest is derived deterministically from the normalised tag', async () => {
    const a = await add(tagSource('nginx:1.25'));
    expect(a.status).toBe(200);
    expect(a.body.image_digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(a.body.image_detail[0].full_tag).toBe('docker.io/nginx:1.25');
    const again = await add(tagSource('docker.io/nginx:1.25'));
    expect(again.body.image_digest).toBe(a.body.image_digest);
    const other = await add(tagSource('nginx:1.26'));
    expect(other.body.image_digest).not.toBe(a.body.image_digest);
  });

  it('when the same seed runs in another simulator, then tag digests are identical', async () => {
    const other = await startSimulator({ config: { seed: sim.config.seed } });
    try {
      const here = await add(tagSource('redis:7'));
      const there = await call(other.url, 'POST', '/v2/images', { json: tagSource('redis:7') });
      expect(there.body.image_digest).toBe(here.body.image_digest);
    } finally {
      await other.stop();
    }
  });

  it('when the source has two kinds, or none, or an unsupported kind, then 400', async () => {
    expect((await add({ source: { tag: { pull_string: 'a:1' }, digest: { pull_string: `a@${digestOf('a')}`, tag: 'a:1' } } })).status).toBe(400);
    expect((await add({ source: {} })).status).toBe(400);
    expect((await add({})).status).toBe(400);
    expect((await add({ source: { archive: { digest: digestOf('a') } } })).status).toBe(400);
    expect((await add({ source: { tag: {} } })).status).toBe(400);
  });

  it('when the body is not JSON, then 400', async () => {
    const res = await call(sim.url, 'POST', '/v2/images', { raw: '{not json', contentType: 'application/json' });
    expect(res.status).toBe(400);
  });

  it('when an image is re-added, then the same record comes back with the new tag and annotations merged', async () => {
    const d = digestOf('b');
    const first = await add({ ...digestSource('nginx', d, 'nginx:1'), annotations: { requestor: 'op' } });
    const second = await add({ ...digestSource('nginx', d, 'nginx:stable'), annotations: { team: 'a' } });
    expect(second.status).toBe(200);
    expect(second.body.image_digest).toBe(first.body.image_digest);
    expect(second.body.created_at).toBe(first.body.created_at);
    expect(second.body.image_detail.map((x: any) => x.full_tag)).toEqual(['docker.io/nginx:1', 'docker.io/nginx:stable']);
    expect(second.body.annotations).toEqual({ requestor: 'op', team: 'a' });
    const third = await add(digestSource('nginx', d, 'nginx:1'));
    expect(third.body.image_detail).toHaveLength(2);
    expect(sim.images('admin')).toHaveLength(1);
  });

  it('when a dockerfile is sent for an existing image without force, then 400 with the engine message', async () => {
    const d = digestOf('c');
    await add(digestSource('nginx', d, 'nginx:1'));
    const body = digestSource('nginx', d, 'nginx:1');
    (body.source as any).digest.dockerfile = Buffer.from('FROM scratch').toString('base64');
    const res = await add(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(DOCKERFILE_WITHOUT_FORCE);
    expect((await add(body, '?force=true')).status).toBe(200);
  });

  it('when force=true is sent for a new digest, then 400 (the digest must already exist)', async () => {
    const res = await add(digestSource('nginx', digestOf('d'), 'nginx:1'), '?force=true');
    expect(res.status).toBe(400);
  });
});

describe('analysis', () => {
  it('when an image is added, then it goes not_analyzed -> analyzing -> analyzed within the configured time', async () => {
    const d = digestOf('1');
    const started = Date.now();
    expect((await add(digestSource('nginx', d, 'nginx:1'))).body.analysis_status).toBe('not_analyzed');
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const s = await statusOf(d);
        seen.add(s);
        return s === 'analyzed' ? s : undefined;
      },
      2000,
      5,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(QUEUED_MS + ANALYZING_MS);
    expect(seen.has('analyzing')).toBe(true);
    const rec = (await call(sim.url, 'GET', `/v2/images/${d}`)).body;
    expect(rec.analysis_status_detail.map((x: any) => `${x.from_status}>${x.to_status}`)).toEqual(['not_analyzed>analyzing', 'analyzing>analyzed']);
    expect(rec.analysis_status_detail[1].source).toEqual({ host_id: expect.any(String), service_name: 'analyzer' });
    expect(rec.image_content.metadata).toMatchObject({ dockerfile_mode: 'Guessed', layer_count: expect.any(Number) });
    expect(rec.last_updated).toBe(rec.analysis_status_detail[1].timestamp);
  });

  it('when a digest is configured to fail, then it ends in analysis_failed and a re-add re-queues it', async () => {
    await add(digestSource('bad', FAILING, 'bad:1'));
    await waitFor(async () => ((await statusOf(FAILING)) === 'analysis_failed' ? true : undefined), 2000);
    const readd = await add(digestSource('bad', FAILING, 'bad:1'));
    expect(readd.body.analysis_status).toBe('not_analyzed');
    expect(readd.body.analysis_status_detail.at(-1)).toMatchObject({ from_status: 'analysis_failed', to_status: 'not_analyzed' });
  });

  it('when fail_rate is 1, then every analysis fails', async () => {
    const failing = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0, fail_rate: 1 } } });
    try {
      const res = await call(failing.url, 'POST', '/v2/images', { json: tagSource('busybox:1') });
      expect(res.body.analysis_status).toBe('analysis_failed');
    } finally {
      await failing.stop();
    }
  });

  it('when an image is re-added with force=true, then its analysis is re-queued', async () => {
    const instant = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 60_000 } } });
    try {
      const d = digestOf('2');
      await call(instant.url, 'POST', '/v2/images', { json: digestSource('nginx', d, 'nginx:1') });
      const forced = await call(instant.url, 'POST', '/v2/images?force=true', { json: digestSource('nginx', d, 'nginx:1') });
      expect(forced.body.analysis_status_detail.map((x: any) => x.to_status)).toEqual(['analyzing', 'not_analyzed', 'analyzing']);
    } finally {
      await instant.stop();
    }
  });

  it('when a manifest-list digest is configured, then the image is stored under the platform digest with parent_digest set', async () => {
    const list = digestOf('e');
    const platform = digestOf('7');
    const multi = await startSimulator({ config: { manifest_lists: { [list]: platform } } });
    try {
      const res = await call(multi.url, 'POST', '/v2/images', { json: digestSource('nginx', list, 'nginx:1') });
      expect(res.body).toMatchObject({ image_digest: platform, parent_digest: list });
      expect((await call(multi.url, 'GET', `/v2/images/${platform}`)).status).toBe(200);
    } finally {
      await multi.stop();
    }
  });
});

describe('GET /v2/images', () => {
  it('when filtering by full_tag, then only images carrying that tag are listed', async () => {
    await add(digestSource('nginx', digestOf('a'), 'nginx:1'));
    await add(digestSource('redis', digestOf('b'), 'redis:7'));
    const res = await call(sim.url, 'GET', `/v2/images?full_tag=${encodeURIComponent('docker.io/redis:7')}`);
    expect(res.body.items.map((i: any) => i.image_digest)).toEqual([digestOf('b')]);
    const none = await call(sim.url, 'GET', `/v2/images?full_tag=${encodeURIComponent('docker.io/redis:8')}`);
    expect(none).toMatchObject({ status: 200, body: { items: [] } });
  });

  it('when empty_full_tag_404 is set, then an unknown full_tag answers 404', async () => {
    const strict = await startSimulator({ config: { empty_full_tag_404: true } });
    try {
      const res = await call(strict.url, 'GET', `/v2/images?full_tag=${encodeURIComponent('docker.io/redis:8')}`);
      expect(res.status).toBe(404);
    } finally {
      await strict.stop();
    }
  });

  it('when filtering by analysis_status, then only images in that state are listed', async () => {
    await add(digestSource('nginx', digestOf('a'), 'nginx:1'));
    await add(digestSource('bad', FAILING, 'bad:1'));
    await waitFor(async () => ((await statusOf(FAILING)) === 'analysis_failed' ? true : undefined), 2000);
    const failed = await call(sim.url, 'GET', '/v2/images?analysis_status=analysis_failed');
    expect(failed.body.items.map((i: any) => i.image_digest)).toEqual([FAILING]);
    const analyzed = await call(sim.url, 'GET', '/v2/images?analysis_status=analyzed');
    expect(analyzed.body.items.map((i: any) => i.image_digest)).toEqual([digestOf('a')]);
  });

  it('when filtering by image_status, then active and all list images and deleting lists none', async () => {
    await add(digestSource('nginx', digestOf('a'), 'nginx:1'));
    expect((await call(sim.url, 'GET', '/v2/images?image_status=all')).body.items).toHaveLength(1);
    expect((await call(sim.url, 'GET', '/v2/images?image_status=active')).body.items).toHaveLength(1);
    expect((await call(sim.url, 'GET', '/v2/images?image_status=deleting')).body.items).toHaveLength(0);
  });

  it('when a filter value is invalid, then 400', async () => {
    expect((await call(sim.url, 'GET', '/v2/images?image_status=bogus')).status).toBe(400);
    expect((await call(sim.url, 'GET', '/v2/images?analysis_status=bogus')).status).toBe(400);
  });

  it('when getting an unknown digest, then 404; a malformed digest, then 400', async () => {
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('9')}`)).status).toBe(404);
    expect((await call(sim.url, 'GET', '/v2/images/sha256:xyz')).status).toBe(400);
  });
});
