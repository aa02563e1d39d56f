import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { parseImageId } from './image-id.ts';
import type { ImageId } from './image-id.ts';
import { parseImageReference } from './image-ref.ts';
import type { NormaliseOptions } from './image-ref.ts';

const HEX = 'ab'.repeat(32);
const SHA = `sha256:${HEX}`;

describe('parseImageId', () => {
  const valid: { runtime: string; input: string; opts?: NormaliseOptions; want: ImageId }[] = [
    { runtime: 'docker, short name', input: `docker-pullable://nginx@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    {
      runtime: 'docker, full name',
      input: `docker-pullable://docker.io/library/nginx@${SHA}`,
      want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA },
    },
    { runtime: 'docker, hub namespace', input: `docker-pullable://bitnami/redis@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/bitnami/redis', digest: SHA } },
    { runtime: 'docker, local image', input: `docker://${SHA}`, want: { kind: 'config-id', digest: SHA } },
    { runtime: 'containerd', input: `docker.io/library/nginx@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    { runtime: 'short repo digest', input: `nginx@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    { runtime: 'ghcr', input: `ghcr.io/x/y@${SHA}`, want: { kind: 'repo-digest', repository: 'ghcr.io/x/y', digest: SHA } },
    { runtime: 'private registry with port', input: `registry.local:5000/team/app@${SHA}`, want: { kind: 'repo-digest', repository: 'registry.local:5000/team/app', digest: SHA } },
    { runtime: 'IPv6 registry', input: `[::1]:5000/app@${SHA}`, want: { kind: 'repo-digest', repository: '[::1]:5000/app', digest: SHA } },
    { runtime: 'containerd config id (containerd#8408)', input: SHA, want: { kind: 'config-id', digest: SHA } },
    { runtime: 'old CRI-O bare image id', input: HEX, want: { kind: 'config-id', digest: SHA } },
    { runtime: 'uppercase hex', input: `docker-pullable://nginx@sha256:${HEX.toUpperCase()}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    { runtime: 'uppercase config id', input: `sha256:${HEX.toUpperCase()}`, want: { kind: 'config-id', digest: SHA } },
    { runtime: 'tagged repo digest', input: `docker.io/library/nginx:1.25@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    { runtime: 'index.docker.io', input: `index.docker.io/nginx@${SHA}`, want: { kind: 'repo-digest', repository: 'docker.io/library/nginx', digest: SHA } },
    {
      runtime: 'registry override',
      input: `docker-pullable://nginx@${SHA}`,
      opts: { registryOverride: 'mirror.example.com' },
      want: { kind: 'repo-digest', repository: 'mirror.example.com/nginx', digest: SHA },
    },
    { runtime: 'sha512 config id', input: `sha512:${HEX}${HEX}`, want: { kind: 'config-id', digest: `sha512:${HEX}${HEX}` } },
  ];

  it.each(valid)('when the imageID is $runtime ($input), then it is recognised', ({ input, opts, want }) => {
    expect(parseImageId(input, opts)).toEqual({ ok: true, value: want });
  });

  const invalid: { input: string; reason: string }[] = [
    { input: '', reason: 'no imageID reported yet' },
    { input: 'garbage', reason: 'invalid imageID "garbage": it carries no digest' },
    { input: 'docker://nginx:latest', reason: 'it carries no digest' },
    { input: 'docker-pullable://', reason: 'nothing follows the scheme' },
    { input: '://x', reason: "malformed '<scheme>://' prefix" },
    { input: `docker://sha256:${HEX.slice(2)}`, reason: 'exactly 64 hex characters, found 62' },
    { input: `SHA256:${HEX}`, reason: 'digest algorithm "SHA256" must be lowercase' },
    { input: `nginx@sha256:${HEX.slice(2)}`, reason: 'exactly 64 hex characters' },
    { input: `Nginx@${SHA}`, reason: 'repository must be lowercase' },
    { input: `docker-pullable://nginx@md5:${HEX}`, reason: 'unsupported digest algorithm "md5"' },
    { input: `@${SHA}`, reason: "the repository name before '@' is missing" },
    { input: `x`.repeat(5000), reason: 'the limit is 4096' },
  ];

  it.each(invalid)('when the imageID is $input, then it fails saying "$reason"', ({ input, reason }) => {
    const r = parseImageId(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('when the registry override is invalid, then the reason names the override', () => {
    const r = parseImageId(`nginx@${SHA}`, { registryOverride: 'nodots' });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('invalid registry override "nodots"') });
  });

  it.each([null, undefined, 7])('when the imageID is %p, then it fails instead of throwing', (input) => {
    expect(parseImageId(input as unknown as string).ok).toBe(false);
  });
});

describe('parseImageId properties', () => {
  const schemes = fc.constantFrom('', 'docker-pullable://', 'docker://', 'containerd://');
  const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 64, maxLength: 64 });
  const repo = fc.constantFrom('nginx', 'library/nginx', 'docker.io/library/nginx', 'ghcr.io/a/b', 'localhost:5000/x', 'Bad', 'a//b', '');
  const realistic = fc.tuple(schemes, fc.option(repo), hex, fc.constantFrom('sha256:', 'sha512:', 'SHA256:', '')).map(([scheme, r, h, alg]) => `${scheme}${r === null ? '' : `${r}@`}${alg}${h}`);
  const anything = fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ unit: fc.constantFrom(...'a:/@sh256.f-'), maxLength: 90 }), realistic);

  it('when given any string, then it never throws, failures have reasons, and repo digests name a parsable repository', () => {
    fc.assert(
      fc.property(anything, (input) => {
        const r = parseImageId(input);
        if (!r.ok) {
          expect(r.reason.length).toBeGreaterThan(0);
          return;
        }
        expect(r.value.digest).toMatch(/^sha(256:[0-9a-f]{64}|512:[0-9a-f]{128})$/);
        if (r.value.kind === 'repo-digest') {
          const again = parseImageReference(`${r.value.repository}@${r.value.digest}`);
          expect(again.ok).toBe(true);
          if (again.ok) expect(`${again.value.registry}/${again.value.repository}`).toBe(r.value.repository);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
