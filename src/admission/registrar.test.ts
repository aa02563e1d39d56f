import { describe, expect, it } from '@jest/globals';
import { internalHost } from './registrar.ts';

describe('internalHost', () => {
  it.each([
    ['10.0.0.7:5000/acme/x', true],
    ['127.0.0.1/x', true],
    ['localhost:5000/x', true],
    ['registry.localhost/x', true],
    ['[::1]:5000/x', true],
    ['2130706433/x', true],
    ['0x7f000001/x', true],
    ['docker.io/library/nginx', false],
    ['registry.example:5000/acme/x', false],
    ['ghcr.io/acme/x', false],
  ])('when the repository is %s, then internal is %s', (repo, internal) => {
    expect(internalHost(repo)).toBe(internal);
  });
});
