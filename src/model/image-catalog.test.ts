import { describe, expect, it } from '@jest/globals';
import type { AnchoreImage } from '../anchore/anchore.port.ts';
import { ImageCatalog } from './image-catalog.ts';
import { digestKey, imageKey } from './image-keys.ts';

const platform = `sha256:${'1'.repeat(64)}`;
const list = `sha256:${'2'.repeat(64)}`;
const tag = 'docker.io/library/nginx:1.25';

function listed(over: Partial<AnchoreImage> = {}): AnchoreImage {
  return { image_digest: platform, parent_digest: list, analysis_status: 'analyzed', image_status: 'active', full_tags: [tag], ...over };
}

describe('ImageCatalog', () => {
  it('when Anchore lists a multi-arch image, then it is found under its platform digest, its manifest list digest and its tag', () => {
    const c = new ImageCatalog();
    c.learn('admin', listed());
    expect(c.lookup(digestKey('admin', platform))?.analysis).toBe('analyzed');
    expect(c.lookup(digestKey('admin', list))?.digest).toBe(platform);
    expect(c.lookup(imageKey('admin', { tag }))?.digest).toBe(platform);
    expect(c.lookup(imageKey('team-a', { tag }))).toBeUndefined();
    expect(c.tagCandidates('admin', tag)).toEqual([platform]);
  });

  it('when a tag-only key is adopted, then it is filed under the listed digest with that tag', () => {
    const c = new ImageCatalog();
    expect(c.adoptListedTag(imageKey('admin', { tag }))).toBeUndefined();
    c.learn('admin', listed());
    const key = imageKey('admin', { tag });
    expect(c.adoptListedTag(key)).toMatchObject({ digest: platform, analysis: 'analyzed', tags: new Set([tag]) });
    expect(c.entry(key)?.digest).toBe(platform);
  });

  it('when an image vanished from Anchore, then it is forgotten and re-registering until it settles', () => {
    const c = new ImageCatalog();
    c.learn('admin', listed({ parent_digest: undefined }));
    const key = digestKey('admin', platform);
    const entry = c.entry(key);
    if (!entry) throw new Error('not learned');
    c.vanished(key, 'admin', entry);
    expect(c.lookup(key)).toBeUndefined();
    expect(c.tagCandidates('admin', tag)).toEqual([]);
    expect(c.reRegistering(key)).toBe(true);
    c.settled(key);
    expect(c.reRegistering(key)).toBe(false);
  });

  it('when pods run images, then workloads list their keys and the counts say what Anchore holds', () => {
    const c = new ImageCatalog();
    c.learn('admin', listed({ parent_digest: undefined }));
    const workload = { kind: 'Deployment', name: 'web', namespace: 'shop' };
    const known = { key: digestKey('admin', platform), account: 'admin', image: { tag, digest: platform }, workload };
    const unknown = { key: imageKey('admin', { tag: 'docker.io/library/redis:7' }), account: 'admin', image: { tag: 'docker.io/library/redis:7' }, workload };
    for (const [pod, uses] of [
      ['shop/web-1', [known, unknown]],
      ['shop/web-2', [known]],
    ] as const) {
      c.setPodUses(pod, [...uses] as never);
      c.running.setSource(pod, [...uses] as never);
    }
    expect([...(c.workloadImages().get('shop/Deployment/web')?.keys ?? [])].sort()).toEqual([known.key, unknown.key].sort());
    expect([...c.countByStatus()].sort()).toEqual([
      [{ account: 'admin', analysis_status: 'analyzed' }, 1],
      [{ account: 'admin', analysis_status: 'not_registered' }, 1],
    ]);
    c.setPodUses('shop/web-1', undefined);
    c.setPodUses('shop/web-2', []);
    expect(c.workloadImages().size).toBe(0);
  });

  it('when pods pin tag@digest, then their digest is no evidence for the tag; a tag-only spec the kubelet resolved is, while it runs', () => {
    const c = new ImageCatalog();
    const workload = { kind: 'Pod', name: 'p', namespace: 'free' };
    const pinned = { key: digestKey('admin', platform), account: 'admin', image: { tag, digest: platform, pinned: true as const, repository: 'docker.io/library/nginx' }, workload };
    const pulled = { key: digestKey('admin', list), account: 'admin', image: { tag, digest: list, repository: 'docker.io/library/nginx' }, workload };
    c.running.setSource('free/pinned', [pinned]);
    expect(c.tagCandidates('admin', tag)).toEqual([]);
    c.running.setSource('shop/pulled', [pulled]);
    expect(c.tagCandidates('admin', tag)).toEqual([list]);
    // The same digest used pinned by one pod and pulled by another: evidence while the pulling pod runs.
    c.running.setSource('free/pinned-too', [{ ...pinned, key: digestKey('admin', list), image: { ...pinned.image, digest: list } }]);
    c.running.setSource('shop/pulled', undefined);
    expect(c.tagCandidates('admin', tag)).toEqual([]);
  });
});
