import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { AnchoreImage, CallLimits, ImageListFilter } from '../anchore/anchore.port.ts';
import { systemClock } from '../runtime/clock.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AnchoreImages } from './anchore-images.ts';
import { ImageCatalog } from './image-catalog.ts';
import { digestKey } from './image-keys.ts';

const log = createLogger({ level: 'silent', pretty: false });
const dig = (c: string): string => `sha256:${c.repeat(64)}`;
const TAG = 'docker.io/acme/app:1.0';

/** An in-memory Anchore image list: what GET /v2/images answers, with and without full_tag. */
class Listing {
  images: AnchoreImage[] = [];
  calls: Array<{ filter: ImageListFilter | undefined; limits: CallLimits | undefined }> = [];
  down = false;
  listImages(_account: string, filter?: ImageListFilter, limits?: CallLimits): Promise<AnchoreImage[]> {
    this.calls.push({ filter, limits });
    if (this.down) return Promise.reject(new Error('503 Service Unavailable'));
    return Promise.resolve(filter?.fullTag ? this.images.filter((i) => i.full_tags.includes(filter.fullTag as string)) : [...this.images]);
  }
}

describe('AnchoreImages', () => {
  let anchore: Listing;
  let catalog: ImageCatalog;
  let images: AnchoreImages;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    anchore = new Listing();
    catalog = new ImageCatalog();
    images = new AnchoreImages({ anchore, catalog, refreshMs: 300_000, clock: systemClock, log });
  });
  afterEach(() => {
    images.stop();
    jest.useRealTimers();
  });

  it('when an account is loaded, then one list call is shared by concurrent callers and its tags become candidates', async () => {
    anchore.images = [{ image_digest: dig('a'), analysis_status: 'analyzed', full_tags: [TAG] }];
    await Promise.all([images.ensureAccount('admin'), images.ensureAccount('admin')]);
    expect(anchore.calls).toHaveLength(1);
    expect(catalog.tagCandidates('admin', TAG)).toEqual([dig('a')]);
  });

  it('when CI adds an image after the start, then the next refresh knows it, and a tag moved away from a digest stops naming it', async () => {
    anchore.images = [{ image_digest: dig('a'), analysis_status: 'analyzed', full_tags: [TAG] }];
    await images.ensureAccount('admin');
    images.start();
    anchore.images = [
      { image_digest: dig('a'), analysis_status: 'analyzed', full_tags: ['docker.io/acme/app:0.9'] },
      { image_digest: dig('b'), analysis_status: 'analyzing', full_tags: [TAG] },
    ];
    await jest.advanceTimersByTimeAsync(300_000);
    expect(anchore.calls).toHaveLength(2);
    expect(catalog.tagCandidates('admin', TAG)).toEqual([dig('b')]);
    expect(catalog.lookup(digestKey('admin', dig('b')))?.analysis).toBe('analyzing');
  });

  it('when a tag misses, then Anchore is asked with the caller limits; a tag it does not hold is not asked about again for a minute', async () => {
    const limits = { attempts: 2, deadlineAt: 1_003_000 };
    expect(await images.lookupTag('admin', TAG, limits)).toEqual([]);
    expect(await images.lookupTag('admin', TAG, limits)).toEqual([]);
    expect(anchore.calls).toEqual([{ filter: { fullTag: TAG }, limits }]);
    anchore.images = [{ image_digest: dig('c'), analysis_status: 'analyzed', full_tags: [TAG] }];
    await jest.advanceTimersByTimeAsync(60_001);
    expect(await images.lookupTag('admin', TAG, limits)).toEqual([dig('c')]);
    expect(anchore.calls).toHaveLength(2);
  });

  it('when a refresh no longer lists an image, then it is forgotten and told; a failed refresh, or one that lists it, forgets nothing', async () => {
    const gone: string[] = [];
    catalog.onVanished((v) => gone.push(...v.digests));
    anchore.images = [
      { image_digest: dig('a'), analysis_status: 'analyzed', full_tags: [TAG] },
      { image_digest: dig('b'), analysis_status: 'analyzed', full_tags: ['docker.io/acme/app:0.9'] },
    ];
    await images.ensureAccount('admin');
    images.start();
    anchore.down = true;
    await jest.advanceTimersByTimeAsync(300_000);
    expect(anchore.calls).toHaveLength(2);
    expect(gone).toEqual([]);
    expect(catalog.lookup(digestKey('admin', dig('a')))?.analysis).toBe('analyzed');
    anchore.down = false;
    anchore.images = [{ image_digest: dig('b'), analysis_status: 'analyzed', full_tags: ['docker.io/acme/app:0.9'] }];
    await jest.advanceTimersByTimeAsync(300_000);
    expect(gone).toEqual([dig('a')]);
    expect(catalog.lookup(digestKey('admin', dig('a')))).toBeUndefined();
    expect(catalog.tagCandidates('admin', TAG)).toEqual([]);
    expect(catalog.lookup(digestKey('admin', dig('b')))?.analysis).toBe('analyzed');
    // An empty list is believed too (a restored, empty database).
    anchore.images = [];
    await jest.advanceTimersByTimeAsync(300_000);
    expect(gone).toEqual([dig('a'), dig('b')]);
  });
});
