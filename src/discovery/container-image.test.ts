import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { resolveContainerImage } from './container-image.ts';
import type { ImagePolicy, MissingTagPolicy, ResolvedImage } from './container-image.ts';
import { parseImageReference } from './image-ref.ts';

const HEX_A = 'a'.repeat(64);
const HEX_B = 'b'.repeat(64);
const SHA_A = `sha256:${HEX_A}`;
const SHA_B = `sha256:${HEX_B}`;
const digestPolicy: ImagePolicy = { missingTagPolicy: 'digest' };

type Input = { specImage: string; imageID?: string; statusImage?: string };

describe('resolveContainerImage', () => {
  const cases: { name: string; input: Input; policy?: ImagePolicy; want: ResolvedImage | null }[] = [
    {
      name: 'the spec image has a tag and the imageID a repo digest',
      input: { specImage: 'nginx:1.25', imageID: `docker-pullable://nginx@${SHA_A}` },
      want: { tag: 'docker.io/library/nginx:1.25', digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx' },
    },
    {
      name: 'the spec image has neither tag nor digest',
      input: { specImage: 'nginx', imageID: `docker.io/library/nginx@${SHA_A}` },
      want: { tag: 'docker.io/library/nginx:latest', digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx' },
    },
    {
      name: 'the imageID is not reported yet',
      input: { specImage: 'ghcr.io/org/app:v1', imageID: '' },
      want: { tag: 'ghcr.io/org/app:v1', repository: 'ghcr.io/org/app' },
    },
    {
      name: 'there is no imageID at all',
      input: { specImage: 'ghcr.io/org/app:v1' },
      want: { tag: 'ghcr.io/org/app:v1', repository: 'ghcr.io/org/app' },
    },
    {
      name: 'the imageID is a docker config id',
      input: { specImage: 'localhost:5000/app:dev', imageID: `docker://${SHA_A}` },
      want: { tag: 'localhost:5000/app:dev', repository: 'localhost:5000/app' },
    },
    {
      name: 'the imageID is a containerd config id and the spec pins a digest',
      input: { specImage: `app:1@${SHA_B}`, imageID: SHA_A },
      want: { tag: 'docker.io/library/app:1', digest: SHA_B, pullString: `docker.io/library/app@${SHA_B}`, repository: 'docker.io/library/app', pinned: true },
    },
    {
      name: 'the imageID is garbage',
      input: { specImage: 'nginx:1', imageID: 'garbage' },
      want: { tag: 'docker.io/library/nginx:1', repository: 'docker.io/library/nginx' },
    },
    {
      name: 'spec has tag and digest and the imageID agrees',
      input: { specImage: `nginx:1.25@${SHA_A}`, imageID: `docker.io/library/nginx@${SHA_A}` },
      want: { tag: 'docker.io/library/nginx:1.25', digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx', pinned: true },
    },
    {
      name: 'the imageID digest differs from the spec digest (the imageID is what runs)',
      input: { specImage: `nginx:1.25@${SHA_A}`, imageID: `docker.io/library/nginx@${SHA_B}` },
      want: { tag: 'docker.io/library/nginx:1.25', digest: SHA_B, pullString: `docker.io/library/nginx@${SHA_B}`, repository: 'docker.io/library/nginx', pinned: true },
    },
    {
      name: 'digest only, policy digest',
      input: { specImage: `nginx@${SHA_A}`, imageID: `docker-pullable://nginx@${SHA_A}` },
      want: { tag: `docker.io/library/nginx:${HEX_A}`, digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx', pinned: true },
    },
    {
      name: 'digest only, policy digest, no imageID yet',
      input: { specImage: `ghcr.io/o/a@sha256:${HEX_A.toUpperCase()}` },
      want: { tag: `ghcr.io/o/a:${HEX_A}`, digest: SHA_A, pullString: `ghcr.io/o/a@${SHA_A}`, repository: 'ghcr.io/o/a', pinned: true },
    },
    {
      name: 'digest only, policy digest, the imageID reports another digest (tag follows the registered digest, as k8s-inventory)',
      input: { specImage: `nginx@${SHA_A}`, imageID: `docker.io/library/nginx@${SHA_B}` },
      want: { tag: `docker.io/library/nginx:${HEX_B}`, digest: SHA_B, pullString: `docker.io/library/nginx@${SHA_B}`, repository: 'docker.io/library/nginx', pinned: true },
    },
    {
      name: 'digest only, policy insert',
      input: { specImage: `nginx@${SHA_A}`, imageID: `nginx@${SHA_A}` },
      policy: { missingTagPolicy: 'insert' },
      want: { tag: 'docker.io/library/nginx:UNKNOWN', digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx', pinned: true },
    },
    {
      name: 'digest only, policy drop',
      input: { specImage: `nginx@${SHA_A}`, imageID: `nginx@${SHA_A}` },
      policy: { missingTagPolicy: 'drop' },
      want: null,
    },
    {
      name: 'no tag and no digest, policy drop (implicit latest is a tag)',
      input: { specImage: 'nginx' },
      policy: { missingTagPolicy: 'drop' },
      want: { tag: 'docker.io/library/nginx:latest', repository: 'docker.io/library/nginx' },
    },
    {
      name: 'the node pulled through a mirror',
      input: { specImage: 'nginx:1.25', imageID: `mirror.example.com/library/nginx@${SHA_A}` },
      want: {
        tag: 'docker.io/library/nginx:1.25',
        digest: SHA_A,
        pullString: `mirror.example.com/library/nginx@${SHA_A}`,
        repository: 'docker.io/library/nginx',
      },
    },
    {
      name: 'a registry override applies to spec and imageID alike',
      input: { specImage: 'team/app:2', imageID: `docker-pullable://team/app@${SHA_A}` },
      policy: { missingTagPolicy: 'digest', registryOverride: 'registry.corp.example' },
      want: {
        tag: 'registry.corp.example/team/app:2',
        digest: SHA_A,
        pullString: `registry.corp.example/team/app@${SHA_A}`,
        repository: 'registry.corp.example/team/app',
      },
    },
    {
      name: 'the spec image is invalid but the status image is usable',
      input: { specImage: 'Nginx:1.25', statusImage: 'docker.io/library/nginx:1.25', imageID: `docker.io/library/nginx@${SHA_A}` },
      want: { tag: 'docker.io/library/nginx:1.25', digest: SHA_A, pullString: `docker.io/library/nginx@${SHA_A}`, repository: 'docker.io/library/nginx' },
    },
    {
      name: 'the spec image is missing and the status image is usable',
      input: { specImage: '', statusImage: 'quay.io/o/a:3' },
      want: { tag: 'quay.io/o/a:3', repository: 'quay.io/o/a' },
    },
    {
      name: 'the spec image is valid and the status image differs (spec wins)',
      input: { specImage: 'nginx:1.25', statusImage: 'docker.io/library/nginx:1.24' },
      want: { tag: 'docker.io/library/nginx:1.25', repository: 'docker.io/library/nginx' },
    },
    {
      name: 'an IPv6 registry with port',
      input: { specImage: '[fd00::1]:5000/app:1', imageID: `[fd00::1]:5000/app@${SHA_A}` },
      want: { tag: '[fd00::1]:5000/app:1', digest: SHA_A, pullString: `[fd00::1]:5000/app@${SHA_A}`, repository: '[fd00::1]:5000/app' },
    },
  ];

  it.each(cases)('when $name, then it resolves accordingly', ({ input, policy, want }) => {
    expect(resolveContainerImage(input, policy ?? digestPolicy)).toEqual({ ok: true, value: want });
  });

  const failures: { name: string; input: Input; policy: unknown; reason: string }[] = [
    { name: 'there is no image anywhere', input: { specImage: '' }, policy: digestPolicy, reason: 'container has no image in its spec or status' },
    {
      name: 'the spec image is invalid and there is no status image',
      input: { specImage: 'Nginx:1' },
      policy: digestPolicy,
      reason: 'invalid image reference "Nginx:1": repository must be lowercase',
    },
    {
      name: 'both images are invalid',
      input: { specImage: 'Nginx:1', statusImage: `sha256:${HEX_A}` },
      policy: digestPolicy,
      reason: 'invalid image reference "Nginx:1": repository must be lowercase; the status image is unusable too: invalid image reference "sha256:',
    },
    {
      name: 'only a broken status image exists',
      input: { specImage: '', statusImage: 'a b' },
      policy: digestPolicy,
      reason: 'container has no spec image, and its status image is unusable: invalid image reference "a b"',
    },
    { name: 'the policy is unknown', input: { specImage: 'nginx' }, policy: { missingTagPolicy: 'dummy' }, reason: 'invalid missing-tag policy "dummy"' },
    { name: 'the policy is missing', input: { specImage: 'nginx' }, policy: undefined, reason: 'invalid missing-tag policy "undefined"' },
    {
      name: 'the registry override is invalid',
      input: { specImage: 'nginx' },
      policy: { missingTagPolicy: 'digest', registryOverride: 'http://x.example' },
      reason: 'invalid registry override "http://x.example"',
    },
  ];

  it.each(failures)('when $name, then it fails saying "$reason"', ({ input, policy, reason }) => {
    const r = resolveContainerImage(input, policy as ImagePolicy);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when the input is not an object, then it fails instead of throwing', () => {
    expect(resolveContainerImage(null as unknown as Input, digestPolicy).ok).toBe(false);
  });
});

describe('resolveContainerImage properties', () => {
  const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
  const repo = fc.constantFrom('nginx', 'library/nginx', 'ghcr.io/o/a', 'localhost:5000/x/y', '[::1]/z', 'Bad', 'a b', '');
  const specImage = fc.tuple(repo, fc.option(fc.constantFrom('1', 'latest', 'v1.2', '-bad')), fc.option(hex)).map(([r, t, d]) => `${r}${t === null ? '' : `:${t}`}${d === null ? '' : `@sha256:${d}`}`);
  const imageID = fc.oneof(
    fc.constant(''),
    hex.map((h) => `sha256:${h}`),
    hex.map((h) => `docker://sha256:${h}`),
    fc.tuple(repo, hex).map(([r, h]) => `docker-pullable://${r}@sha256:${h}`),
    fc.string({ maxLength: 40 }),
  );
  const policy = fc.record({
    missingTagPolicy: fc.constantFrom<MissingTagPolicy>('digest', 'insert', 'drop'),
    registryOverride: fc.constantFrom(undefined, '', 'mirror.example.com'),
  });

  it('when given any combination, then it never throws and every resolved image is self-consistent', () => {
    fc.assert(
      fc.property(
        fc.oneof(specImage, fc.string({ unit: 'binary', maxLength: 60 })),
        fc.option(imageID, { nil: undefined }),
        fc.option(fc.oneof(specImage, fc.string({ maxLength: 30 })), { nil: undefined }),
        policy,
        (spec, id, status, pol) => {
          const r = resolveContainerImage({ specImage: spec, imageID: id, statusImage: status }, pol);
          if (!r.ok) {
            expect(r.reason.length).toBeGreaterThan(0);
            return;
          }
          if (r.value === null) {
            expect(pol.missingTagPolicy).toBe('drop');
            return;
          }
          const tag = parseImageReference(r.value.tag);
          expect(tag.ok).toBe(true);
          if (!tag.ok) return;
          expect(tag.value.tag).toBeTruthy();
          expect(tag.value.digest).toBeUndefined();
          expect(`${tag.value.registry}/${tag.value.repository}`).toBe(r.value.repository);
          expect(r.value.pullString === undefined).toBe(r.value.digest === undefined);
          if (r.value.pullString !== undefined) {
            const pull = parseImageReference(r.value.pullString);
            expect(pull.ok && pull.value.digest === r.value.digest && pull.value.tag === undefined).toBe(true);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});
