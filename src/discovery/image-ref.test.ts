import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { parseImageReference, repositoryOf } from './image-ref.ts';
import { formatImageReference } from '../testing/image-refs.ts';
import type { ImageReference, NormaliseOptions } from './image-ref.ts';

const HEX = '0123456789abcdef'.repeat(4);
const SHA = `sha256:${HEX}`;

describe('parseImageReference', () => {
  const valid: { input: string; opts?: NormaliseOptions; want: ImageReference }[] = [
    { input: 'nginx', want: { registry: 'docker.io', repository: 'library/nginx' } },
    { input: 'nginx:1.25', want: { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' } },
    { input: 'library/nginx:1.25', want: { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' } },
    { input: 'bitnami/redis:7', want: { registry: 'docker.io', repository: 'bitnami/redis', tag: '7' } },
    { input: 'docker.io/nginx', want: { registry: 'docker.io', repository: 'library/nginx' } },
    { input: 'docker.io/library/nginx', want: { registry: 'docker.io', repository: 'library/nginx' } },
    { input: 'index.docker.io/nginx:latest', want: { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' } },
    { input: 'index.docker.io/bitnami/redis', want: { registry: 'docker.io', repository: 'bitnami/redis' } },
    { input: 'ghcr.io/org/app:v1.2.3', want: { registry: 'ghcr.io', repository: 'org/app', tag: 'v1.2.3' } },
    { input: 'ghcr.io/app', want: { registry: 'ghcr.io', repository: 'app' } },
    { input: 'quay.io/a/b/c/d:e', want: { registry: 'quay.io', repository: 'a/b/c/d', tag: 'e' } },
    { input: 'localhost/app', want: { registry: 'localhost', repository: 'app' } },
    { input: 'localhost:5000/app:dev', want: { registry: 'localhost:5000', repository: 'app', tag: 'dev' } },
    { input: 'registry:5000/team/app', want: { registry: 'registry:5000', repository: 'team/app' } },
    { input: '10.0.0.1:5000/app', want: { registry: '10.0.0.1:5000', repository: 'app' } },
    { input: '10.0.0.1/app:1', want: { registry: '10.0.0.1', repository: 'app', tag: '1' } },
    { input: '[::1]:5000/app:1', want: { registry: '[::1]:5000', repository: 'app', tag: '1' } },
    { input: '[fe80::1:2]/team/app', want: { registry: '[fe80::1:2]', repository: 'team/app' } },
    { input: 'My-Registry.Example.com/app', want: { registry: 'My-Registry.Example.com', repository: 'app' } },
    // A lone "localhost:5000" is Docker Hub's library/localhost with tag 5000, as in Docker.
    { input: 'localhost:5000', want: { registry: 'docker.io', repository: 'library/localhost', tag: '5000' } },
    { input: 'localhost', want: { registry: 'docker.io', repository: 'library/localhost' } },
    { input: `nginx@${SHA}`, want: { registry: 'docker.io', repository: 'library/nginx', digest: SHA } },
    { input: `nginx:1.25@${SHA}`, want: { registry: 'docker.io', repository: 'library/nginx', tag: '1.25', digest: SHA } },
    { input: `ghcr.io/org/app@sha256:${HEX.toUpperCase()}`, want: { registry: 'ghcr.io', repository: 'org/app', digest: SHA } },
    {
      input: `ghcr.io/org/app@sha512:${HEX}${HEX}`,
      want: { registry: 'ghcr.io', repository: 'org/app', digest: `sha512:${HEX}${HEX}` },
    },
    { input: 'a_b/c__d/e.f/g-h/i---j:T_a.g-1', want: { registry: 'docker.io', repository: 'a_b/c__d/e.f/g-h/i---j', tag: 'T_a.g-1' } },
    { input: `app:${'t'.repeat(128)}`, want: { registry: 'docker.io', repository: 'library/app', tag: 't'.repeat(128) } },
    { input: 'app:_x', want: { registry: 'docker.io', repository: 'library/app', tag: '_x' } },
    // The registry override replaces the default, k8s-inventory's missing-registry-override.
    { input: 'nginx', opts: { registryOverride: 'mirror.example.com' }, want: { registry: 'mirror.example.com', repository: 'nginx' } },
    { input: 'team/app:1', opts: { registryOverride: 'mirror.example.com:8443' }, want: { registry: 'mirror.example.com:8443', repository: 'team/app', tag: '1' } },
    { input: 'nginx', opts: { registryOverride: 'mirror.example.com/hub/' }, want: { registry: 'mirror.example.com', repository: 'hub/nginx' } },
    { input: 'ghcr.io/org/app', opts: { registryOverride: 'mirror.example.com' }, want: { registry: 'ghcr.io', repository: 'org/app' } },
    { input: 'nginx', opts: { registryOverride: '', defaultRegistry: 'quay.io' }, want: { registry: 'quay.io', repository: 'nginx' } },
    { input: 'nginx', opts: { defaultRegistry: 'index.docker.io' }, want: { registry: 'docker.io', repository: 'library/nginx' } },
    { input: 'nginx', opts: { defaultRegistry: 'quay.io', registryOverride: 'localhost:5000' }, want: { registry: 'localhost:5000', repository: 'nginx' } },
  ];

  it.each(valid)('when given $input, then it normalises it', ({ input, opts, want }) => {
    expect(parseImageReference(input, opts)).toEqual({ ok: true, value: want });
  });

  const invalid: { input: string; opts?: NormaliseOptions; reason: string }[] = [
    { input: 'Nginx:1', reason: 'invalid image reference "Nginx:1": repository must be lowercase' },
    { input: 'docker.io/Library/nginx', reason: 'repository must be lowercase' },
    { input: 'MyOrg/app', reason: 'repository must be lowercase' },
    { input: '', reason: 'invalid image reference "": it is empty' },
    { input: 'nginx ', reason: 'whitespace' },
    { input: ' nginx', reason: 'whitespace' },
    { input: 'nginx\n', reason: 'whitespace' },
    { input: 'nginx:', reason: "the tag after ':' is empty" },
    { input: 'nginx:-1', reason: "must start with a letter, digit or '_'" },
    { input: 'nginx:1+2', reason: 'tags may only contain' },
    { input: `nginx:${'t'.repeat(129)}`, reason: 'the limit is 128' },
    { input: 'nginx:a:b', reason: 'tags may only contain' },
    { input: 'nginx@', reason: 'digest "" must look like' },
    { input: 'nginx@sha256', reason: 'must look like "sha256:<64 hex characters>"' },
    { input: 'nginx@sha256:abc', reason: 'exactly 64 hex characters, found 3' },
    { input: `nginx@sha256:${HEX}0`, reason: 'exactly 64 hex characters, found 65' },
    { input: `nginx@sha256:${HEX.slice(1)}g`, reason: 'not a hexadecimal digit' },
    { input: `nginx@md5:${HEX}`, reason: 'unsupported digest algorithm "md5"' },
    { input: `nginx@SHA256:${HEX}`, reason: 'digest algorithm "SHA256" must be lowercase' },
    { input: `nginx@sha512:${HEX}`, reason: 'exactly 128 hex characters' },
    { input: `@${SHA}`, reason: "the repository name before '@' is missing" },
    { input: `a@${SHA}@${SHA}`, reason: "more than one '@'" },
    { input: ':tag', reason: 'the repository name is missing' },
    { input: '/nginx', reason: 'empty component' },
    { input: 'nginx/', reason: 'empty component' },
    { input: 'a//b', reason: 'empty component' },
    { input: 'ghcr.io/', reason: 'is not followed by a repository' },
    { input: '-a/b', reason: 'must start with a lowercase letter or digit' },
    { input: 'a-/b', reason: 'must end with a lowercase letter or digit' },
    { input: 'a.-b', reason: 'separator ".-"' },
    { input: 'a___b', reason: 'separator "___"' },
    { input: 'a..b', reason: 'separator ".."' },
    { input: 'a%b', reason: 'repository contains "%"' },
    { input: 'ngïnx', reason: 'repository contains "ï"' },
    { input: 'ex_ample.com/app', reason: 'registry host "ex_ample.com" contains "_"' },
    { input: '-example.com/app', reason: "starting or ending with '-'" },
    { input: 'example..com/app', reason: 'empty DNS label' },
    { input: 'example.com:/app', reason: 'no port number' },
    { input: 'example.com:x/app', reason: 'non-numeric port "x"' },
    { input: 'example.com:0/app', reason: 'outside 1-65535' },
    { input: 'example.com:65536/app', reason: 'outside 1-65535' },
    { input: ':5000/app', reason: 'has no host name' },
    { input: '[::1/app', reason: "missing ']'" },
    { input: '[]:5000/app', reason: 'invalid IPv6 address' },
    { input: '[zz::1]/app', reason: 'in its IPv6 address' },
    { input: '[::1]x/app', reason: 'not a port' },
    { input: '[::1]:5000', reason: 'must be followed by "/" and a repository' },
    { input: HEX, reason: '64-character hexadecimal image ID' },
    { input: SHA, reason: 'image ID ("sha256:<hex>")' },
    { input: `example.com/${'a/'.repeat(130)}b`, reason: 'the limit is 255' },
    { input: 'x'.repeat(4097), reason: 'the limit is 4096' },
    { input: 'nginx', opts: { registryOverride: 'myreg' }, reason: 'invalid registry override "myreg": "myreg" does not look like a registry host' },
    { input: 'nginx', opts: { registryOverride: 'https://mirror.example.com' }, reason: 'without a scheme' },
    { input: 'nginx', opts: { registryOverride: 'mirror.example.com/Hub' }, reason: 'invalid registry override "mirror.example.com/Hub": repository must be lowercase' },
    { input: 'nginx', opts: { defaultRegistry: 'bad_host.com' }, reason: 'invalid default registry "bad_host.com"' },
  ];

  it.each(invalid)('when given $input, then it fails saying "$reason"', ({ input, opts, reason }) => {
    const r = parseImageReference(input, opts);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it.each([null, undefined, 42, {}, ['nginx']])('when given the non-string %p, then it fails instead of throwing', (input) => {
    const r = parseImageReference(input as string);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/expected a string/);
  });

  it('when the reference is enormous, then the reason quotes only its beginning', () => {
    const r = parseImageReference('A'.repeat(4000));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeLessThan(300);
  });

  it('when the reference contains control characters, then the reason escapes them', () => {
    const r = parseImageReference('nginx\u001b[31m');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).not.toContain('\u001b');
  });
});

describe('formatImageReference and repositoryOf', () => {
  const ref: ImageReference = { registry: 'docker.io', repository: 'library/nginx', tag: '1.25', digest: SHA };
  it.each([
    { parts: undefined, want: `docker.io/library/nginx:1.25@${SHA}` },
    { parts: { tag: true, digest: true }, want: `docker.io/library/nginx:1.25@${SHA}` },
    { parts: { digest: false }, want: 'docker.io/library/nginx:1.25' },
    { parts: { tag: false }, want: `docker.io/library/nginx@${SHA}` },
    { parts: { tag: false, digest: false }, want: 'docker.io/library/nginx' },
  ])('when formatting with parts $parts, then it gives $want', ({ parts, want }) => {
    expect(formatImageReference(ref, parts)).toBe(want);
  });

  it('when a reference has neither tag nor digest, then formatting gives registry/repository', () => {
    expect(formatImageReference({ registry: 'ghcr.io', repository: 'org/app' })).toBe('ghcr.io/org/app');
  });

  it('when asked for the repository, then it joins registry and repository', () => {
    expect(repositoryOf(ref)).toBe('docker.io/library/nginx');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const alnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 6 });
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
const pathComponent = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 })).map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
const path = fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((cs) => cs.join('/'));
const dnsLabel = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/);
const registry = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'ghcr.io', 'localhost', 'localhost:5000', '[::1]:5000', '[fe80::1]', '10.1.2.3:443'),
  fc.tuple(dnsLabel, dnsLabel, fc.option(fc.integer({ min: 1, max: 65535 }))).map(([a, b, port]) => `${a}.${b}${port === null ? '' : `:${port}`}`),
);
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 64, maxLength: 64 });
/** Without a registry, a first component containing '.' would be read as a registry host, so name one. */
const registryPrefix = (r: string | null, p: string): string => {
  if (r !== null) return `${r}/`;
  const first = p.split('/')[0] ?? '';
  return p.includes('/') && first.includes('.') ? 'docker.io/' : '';
};
const validReference = fc
  .record({ registry: fc.option(registry), path, tag: fc.option(tag), digest: fc.option(hex64) })
  .map(({ registry: r, path: p, tag: t, digest: d }) => `${registryPrefix(r, p)}${p}${t === null ? '' : `:${t}`}${d === null ? '' : `@sha256:${d}`}`);

/** Characters that make near-miss references: the grammar's own punctuation, case and oddities. */
const referenceish = fc.string({ unit: fc.constantFrom(...'aAz09./:@_-[]%é \n'), maxLength: 80 });
const anything = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  referenceish,
  validReference,
  validReference.chain((v) => fc.nat(v.length).map((i) => v.slice(0, i) + v.slice(i + 1))), // one character deleted
);
const options = fc.constantFrom<NormaliseOptions | undefined>(
  undefined,
  {},
  { registryOverride: 'mirror.example.com' },
  { registryOverride: 'mirror.example.com:5000/hub' },
  { defaultRegistry: 'quay.io' },
);

describe('parseImageReference properties', () => {
  it('when given any string, then it never throws, failures have reasons and successes round-trip', () => {
    fc.assert(
      fc.property(anything, options, (input, opts) => {
        const r = parseImageReference(input, opts);
        if (!r.ok) {
          expect(typeof r.reason).toBe('string');
          expect(r.reason.length).toBeGreaterThan(0);
          return;
        }
        const again = parseImageReference(formatImageReference(r.value), opts);
        expect(again).toEqual(r);
        // Round-trips whatever the options, because the formatted form always names its registry.
        expect(parseImageReference(formatImageReference(r.value))).toEqual(r);
      }),
      { numRuns: 5000 },
    );
  });

  it('when given a grammatical reference, then it parses with a lowercase repository and lowercase digest', () => {
    fc.assert(
      fc.property(validReference, options, (input, opts) => {
        const r = parseImageReference(input, opts);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.value.repository).toBe(r.value.repository.toLowerCase());
        if (r.value.digest !== undefined) expect(r.value.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(r.value.registry).not.toBe('index.docker.io');
        if (r.value.registry === 'docker.io') expect(r.value.repository).toContain('/');
        expect(formatImageReference(r.value, { tag: false, digest: false })).toBe(repositoryOf(r.value));
      }),
      { numRuns: 3000 },
    );
  });

  it('when given adversarial long inputs, then parsing stays fast', () => {
    const inputs = [
      'a'.repeat(4096),
      'a-'.repeat(2048),
      'a.'.repeat(2048),
      '/'.repeat(4096),
      ':'.repeat(4096),
      '@'.repeat(4096),
      `${'a/'.repeat(2047)}a`,
      `${'a-'.repeat(2040)}a@sha256:${'f'.repeat(64)}`,
      `[${':'.repeat(4000)}]/a`,
      `${'a.'.repeat(1000)}com/${'b__'.repeat(300)}c`,
    ];
    const start = performance.now();
    for (let i = 0; i < 100; i++) for (const input of inputs) parseImageReference(input);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});
