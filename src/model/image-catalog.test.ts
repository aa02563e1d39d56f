import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { AnchoreImage } from '../anchore/anchore.port.ts';
import { type WorkloadRef, workloadKey } from '../kube/cluster.port.ts';
import { SLICE } from '../runtime/cooperative.ts';
import { ImageCatalog, type VanishedImage } from './image-catalog.ts';
import { digestKey, imageKey } from './image-keys.ts';
import type { ImageUse } from './running-images.ts';

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

  describe('forgetUnlisted (a full list read again)', () => {
    const other = `sha256:${'3'.repeat(64)}`;
    const workload = { kind: 'Deployment', name: 'web', namespace: 'shop' };
    /** A catalog that learned a multi-arch image (run by its manifest list digest) and another, not running, image. */
    function catalog(): { c: ImageCatalog; told: VanishedImage[] } {
      const c = new ImageCatalog();
      const told: VanishedImage[] = [];
      c.onVanished((v) => told.push(v));
      c.learn('admin', listed());
      c.learn('admin', listed({ image_digest: other, parent_digest: undefined, full_tags: ['docker.io/library/redis:7'] }));
      c.learn('team-a', listed({ parent_digest: undefined }));
      c.running.setSource('shop/web', [{ key: digestKey('admin', list), account: 'admin', image: { tag, digest: list }, workload } as never]);
      return { c, told };
    }

    it('when the list still names an image (by its digest or its parent digest), then nothing is forgotten', async () => {
      const { c, told } = catalog();
      const before = await c.held('admin');
      expect(before.size).toBe(3); // platform, manifest list, redis: not team-a's
      expect(await c.forgetUnlisted('admin', [listed({ parent_digest: undefined }), listed({ image_digest: other, parent_digest: undefined })], before)).toEqual([]);
      expect(await c.forgetUnlisted('admin', [listed(), listed({ image_digest: other, parent_digest: undefined })], before)).toEqual([]);
      expect(told).toEqual([]);
    });

    it('when the list leaves images out, then they are forgotten; the running one is re-registering, told with both its digests', async () => {
      const { c, told } = catalog();
      const before = await c.held('admin');
      const gone = await c.forgetUnlisted('admin', [listed({ image_digest: other, parent_digest: undefined })], before);
      expect(gone).toEqual([{ key: digestKey('admin', list), account: 'admin', digests: [platform, list], running: true }]);
      expect(told).toEqual(gone);
      expect(c.lookup(digestKey('admin', list))).toBeUndefined();
      expect(c.lookup(digestKey('admin', platform))).toBeUndefined();
      expect(c.reRegistering(digestKey('admin', list))).toBe(true);
      expect(c.lookup(digestKey('team-a', platform))?.analysis).toBe('analyzed');
      // Listed again, analysed (this replica may not lead: no controller tells it settled()): no longer re-registering.
      c.learn('admin', listed());
      expect(c.reRegistering(digestKey('admin', list))).toBe(false);
    });

    it('when the list comes back empty, then it is believed (a restored empty database): everything held is forgotten', async () => {
      const { c, told } = catalog();
      const gone = await c.forgetUnlisted('admin', [], await c.held('admin'));
      expect(gone.map((g) => [g.digests[0], g.running]).sort()).toEqual([
        [platform, true],
        [other, false],
      ]);
      expect(told).toHaveLength(2);
      expect(c.reRegistering(digestKey('admin', other))).toBe(false);
      expect(c.lookup(digestKey('admin', other))).toBeUndefined();
    });

    it('when an entry was filed anew while the list was on its way, then that list does not judge it', async () => {
      const { c, told } = catalog();
      const before = await c.held('admin');
      const key = digestKey('admin', list);
      c.registered(key, { digest: platform, analysis: 'not_analyzed', polls: 0, tags: new Set([tag]) });
      const gone = await c.forgetUnlisted('admin', [], before);
      // The older entries are judged (they are re-learned from the next list if Anchore holds them); the new one is not.
      expect(gone.map((g) => [g.key, g.running]).sort()).toEqual([
        [digestKey('admin', platform), false],
        [digestKey('admin', other), false],
      ]);
      expect(c.entry(key)?.analysis).toBe('not_analyzed');
      expect(c.reRegistering(key)).toBe(false);
      expect(told).toHaveLength(2);
    });
  });
});

describe('ImageCatalog workload index', () => {
  /** What workloadImages() answered before it kept an index: one pass over every running pod's uses. */
  function onePass(podUses: Map<string, ImageUse[]>): Map<string, { workload: WorkloadRef; keys: Set<string> }> {
    const out = new Map<string, { workload: WorkloadRef; keys: Set<string> }>();
    for (const uses of podUses.values()) {
      for (const u of uses) {
        const wk = workloadKey(u.workload);
        let w = out.get(wk);
        if (!w) out.set(wk, (w = { workload: u.workload, keys: new Set() }));
        w.keys.add(u.key);
      }
    }
    return out;
  }
  const sorted = (m: Map<string, { workload: WorkloadRef; keys: Set<string> }>) =>
    [...m].map(([k, w]) => [k, w.workload, [...w.keys].sort()] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  it('for any sequence of pods starting, changing and stopping, then the workloads and their image keys equal one pass over the pods', () => {
    const workloads: WorkloadRef[] = [
      { kind: 'Deployment', namespace: 'shop', name: 'web' },
      { kind: 'Deployment', namespace: 'shop', name: 'api' },
      { kind: 'StatefulSet', namespace: 'data', name: 'web' },
    ];
    const use = (w: number, k: number): ImageUse => ({
      key: `admin|sha256:${k}`,
      account: 'admin',
      image: { tag: `docker.io/library/app-${k}:1`, repository: `docker.io/library/app-${k}` },
      workload: workloads[w]!,
    });
    const step = fc.record({
      pod: fc.integer({ min: 0, max: 5 }),
      // Several containers of one pod may run the same image (a duplicate use).
      uses: fc.option(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 })), { maxLength: 3 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const c = new ImageCatalog();
        const reference = new Map<string, ImageUse[]>();
        for (const s of steps) {
          const uses = s.uses?.map(([w, k]) => use(w, k));
          c.setPodUses(`p${s.pod}`, uses);
          if (uses?.length) reference.set(`p${s.pod}`, uses);
          else reference.delete(`p${s.pod}`);
          expect(sorted(c.workloadImages())).toEqual(sorted(onePass(reference)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('when the caller changes the answer, then the index is not changed', () => {
    const c = new ImageCatalog();
    const workload = { kind: 'Deployment', namespace: 'shop', name: 'web' };
    c.setPodUses('shop/web-1', [{ key: 'admin|sha256:1', account: 'admin', image: { tag, repository: 'docker.io/library/nginx' }, workload }]);
    c.workloadImages().get('shop/Deployment/web')?.keys.clear();
    expect([...(c.workloadImages().get('shop/Deployment/web')?.keys ?? [])]).toEqual(['admin|sha256:1']);
  });
});

describe('ImageCatalog learnList (a full list, in slices)', () => {
  const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;
  const image = (n: number, tags: string[], parent?: number): AnchoreImage => ({
    image_digest: digest(n),
    ...(parent === undefined ? {} : { parent_digest: digest(parent) }),
    analysis_status: n % 3 ? 'analyzed' : 'not_analyzed',
    full_tags: tags,
  });
  const tagOf = (t: number): string => `docker.io/library/app:${t}`;
  const arbImages = fc.array(
    fc.record({
      n: fc.integer({ min: 1, max: 30 }),
      tags: fc.uniqueArray(fc.integer({ min: 0, max: 8 }), { maxLength: 3 }),
      parent: fc.option(fc.integer({ min: 100, max: 105 }), { nil: undefined }),
    }),
    { maxLength: 25 },
  );
  /** What a catalog says of every tag, and of every digest key, a test can name. */
  const tagsOf = (c: ImageCatalog) => ['admin', 'team-a'].flatMap((account) => Array.from({ length: 9 }, (_, t) => [account, t, c.tagCandidates(account, tagOf(t))]));
  const entriesOf = (c: ImageCatalog) =>
    ['admin', 'team-a'].flatMap((account) =>
      Array.from({ length: 105 }, (_, i) => {
        const e = c.lookup(digestKey(account, digest(i + 1)));
        return [account, i + 1, e && { digest: e.digest, analysis: e.analysis, tags: [...e.tags] }];
      }),
    );

  it("for any lists learned before and now, then the catalog says what forgetting the account's tags and learning each image said", async () => {
    await fc.assert(
      fc.asyncProperty(arbImages, arbImages, arbImages, async (earlier, other, now) => {
        const toImages = (xs: typeof earlier) => xs.map((x) => image(x.n, x.tags.map(tagOf), x.parent));
        const sliced = new ImageCatalog();
        const entries = new ImageCatalog();
        for (const c of [sliced, entries]) {
          for (const i of toImages(earlier)) c.learn('admin', i);
          for (const i of toImages(other)) c.learn('team-a', i);
        }
        await sliced.learnList('admin', toImages(now));
        // The one-pass result, in two parts: entries are learned whatever the tags (each image learned once more)...
        for (const i of toImages(now)) entries.learn('admin', i);
        expect(entriesOf(sliced)).toEqual(entriesOf(entries));
        // ...and the account's tags are only the new list's (what the earlier lists said was forgotten first).
        const tags = new ImageCatalog();
        for (const i of toImages(other)) tags.learn('team-a', i);
        for (const i of toImages(now)) tags.learn('admin', i);
        expect(tagsOf(sliced)).toEqual(tagsOf(tags));
      }),
      { numRuns: 200 },
    );
  });

  it("while a long list is learned, then readers find the previous list's tags, other callbacks run, and a lookup learned meanwhile is kept", async () => {
    const c = new ImageCatalog();
    c.learn('admin', image(1, [tagOf(1)]));
    const list = Array.from({ length: SLICE * 3 }, (_, i) => image(1000 + i, [tagOf(2)]));
    const seen: string[][] = [];
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
      seen.push(c.tagCandidates('admin', tagOf(1)));
      if (ticks === 1) c.learn('admin', image(7, [tagOf(3)]));
    }, 0);
    await c.learnList('admin', list);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual([digest(1)]);
    // Tag 1 is not in the new list: gone now; the lookup's tag 3 stays; the list's tag 2 names every image.
    expect(c.tagCandidates('admin', tagOf(1))).toEqual([]);
    expect(c.tagCandidates('admin', tagOf(3))).toEqual([digest(7)]);
    expect(c.tagCandidates('admin', tagOf(2))).toHaveLength(SLICE * 3);
  });
});
