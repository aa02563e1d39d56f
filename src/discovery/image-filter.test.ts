import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { compileImageExclusions } from './image-filter.ts';
import { resolveContainerImage } from './container-image.ts';

const SHA = `sha256:${'c'.repeat(64)}`;
const nginx = { tag: 'docker.io/library/nginx:1.25', repository: 'docker.io/library/nginx', digest: SHA };
const pause = { tag: 'registry.k8s.io/pause:3.9', repository: 'registry.k8s.io/pause' };

describe('compileImageExclusions', () => {
  const cases: { globs: string[]; image: { tag: string; repository: string; digest?: string }; want: boolean }[] = [
    { globs: [], image: nginx, want: false },
    { globs: ['docker.io/library/nginx:1.25'], image: nginx, want: true },
    { globs: ['docker.io/library/nginx:1.24'], image: nginx, want: false },
    { globs: ['docker.io/library/nginx'], image: nginx, want: true },
    { globs: ['docker.io/library/nginx:*'], image: nginx, want: true },
    { globs: ['docker.io/library/*'], image: nginx, want: true },
    { globs: ['docker.io/**'], image: nginx, want: true },
    { globs: ['**/nginx'], image: nginx, want: true },
    { globs: ['**/nginx:1.*'], image: nginx, want: true },
    { globs: [`docker.io/library/nginx@${SHA}`], image: nginx, want: true },
    { globs: ['docker.io/library/nginx@sha256:*'], image: nginx, want: true },
    { globs: ['docker.io/library/nginx@sha256:*'], image: pause, want: false },
    { globs: ['registry.k8s.io/**'], image: pause, want: true },
    { globs: ['registry.k8s.io/*'], image: pause, want: true },
    { globs: ['registry.k8s.io/**'], image: nginx, want: false },
    { globs: ['ghcr.io/**', 'registry.k8s.io/pause:*'], image: pause, want: true },
    { globs: ['docker.io/library/ngin?'], image: nginx, want: true },
    { globs: ['docker.io/library/nginx:1.25@*'], image: nginx, want: false },
  ];

  it.each(cases)('when excluding $globs, then $image.tag is excluded: $want', ({ globs, image, want }) => {
    const r = compileImageExclusions(globs);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value(image)).toBe(want);
  });

  const invalid: { globs: unknown; reason: string }[] = [
    {
      globs: ['nginx'],
      reason:
        'invalid image exclusion "nginx": images are matched by normalised name such as "docker.io/library/nginx:1.25", so a pattern without \'/\' never matches; write e.g. "docker.io/library/nginx" or "**/nginx"',
    },
    { globs: ['nginx:*'], reason: 'never matches' },
    { globs: ['*'], reason: 'never matches' },
    { globs: ['docker.io/nginx'], reason: 'write "docker.io/library/nginx"' },
    { globs: ['docker.io/*'], reason: 'write "docker.io/library/*"' },
    { globs: ['index.docker.io/library/nginx'], reason: 'Docker Hub names are normalised to "docker.io"' },
    { globs: [''], reason: 'invalid image exclusions: invalid glob pattern at index 0: it is empty' },
    { globs: [null], reason: 'expected a string, got null' },
    { globs: 'docker.io/**', reason: 'expected a list of glob patterns' },
  ];

  it.each(invalid)('when excluding $globs, then compiling fails saying "$reason"', ({ globs, reason }) => {
    const r = compileImageExclusions(globs as string[]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when "**" is used without a slash, then it is accepted because it can cross slashes', () => {
    const r = compileImageExclusions(['**nginx*']);
    expect(r.ok && r.value(nginx)).toBe(true);
  });

  it('when the image is malformed, then the predicate answers false instead of throwing', () => {
    const r = compileImageExclusions(['docker.io/**']);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value(null as unknown as typeof nginx)).toBe(false);
    expect(r.value({} as unknown as typeof nginx)).toBe(false);
  });

  it('when a resolved container image is checked, then its normalised names are what the globs see', () => {
    const resolved = resolveContainerImage({ specImage: 'nginx', imageID: `docker-pullable://nginx@${SHA}` }, { missingTagPolicy: 'digest' });
    const r = compileImageExclusions(['docker.io/library/nginx:latest']);
    expect(resolved.ok && resolved.value !== null && r.ok && r.value(resolved.value)).toBe(true);
  });
});

describe('compileImageExclusions properties', () => {
  it('when an image is excluded by its exact tag or repository, then the predicate agrees', () => {
    const component = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    fc.assert(
      fc.property(fc.constantFrom('docker.io', 'ghcr.io', 'localhost:5000'), component, component, component, (registry, ns, name, tag) => {
        const repository = `${registry}/${ns}/${name}`;
        const image = { tag: `${repository}:${tag}`, repository };
        for (const glob of [image.tag, repository, `${registry}/**`, `${registry}/${ns}/*`]) {
          const r = compileImageExclusions([glob]);
          expect(r.ok).toBe(true);
          if (r.ok) expect(r.value(image)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('when given arbitrary globs, then compiling and checking never throw', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), fc.string({ maxLength: 40 }), (globs, s) => {
        const r = compileImageExclusions(globs);
        if (!r.ok) {
          expect(r.reason.length).toBeGreaterThan(0);
          return;
        }
        expect(typeof r.value({ tag: s, repository: s, digest: s })).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });
});
