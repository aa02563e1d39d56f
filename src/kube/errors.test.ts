import { describe, expect, it } from '@jest/globals';
import { KubeError, type KubeErrorKind, isKubeError, kubeErrorKind } from './errors.ts';

describe('KubeError kinds', () => {
  it.each<[number | undefined, string, KubeErrorKind]>([
    [404, 'NotFound', 'not-found'],
    [409, 'Conflict', 'conflict'],
    [409, 'AlreadyExists', 'conflict'],
    [410, 'Gone', 'gone'],
    [410, 'Unknown', 'gone'],
    [500, 'Expired', 'gone'],
    [422, 'Invalid', 'invalid'],
    [400, 'BadRequest', 'bad-request'],
    [401, 'Unauthorized', 'unauthorized'],
    [403, 'Forbidden', 'forbidden'],
    [405, 'MethodNotAllowed', 'rejected'],
    [413, 'RequestEntityTooLarge', 'rejected'],
    [415, 'UnsupportedMediaType', 'rejected'],
    [429, 'TooManyRequests', 'unavailable'],
    [500, 'InternalError', 'unavailable'],
    [503, 'ServiceUnavailable', 'unavailable'],
    [504, 'Timeout', 'unavailable'],
    [undefined, 'Unavailable', 'unavailable'],
    [0, 'Unknown', 'unavailable'],
    [302, 'Unknown', 'unknown'],
  ])('when the apiserver answers %s %s, then the kind is %s', (status, reason, kind) => {
    expect(kubeErrorKind(status, reason)).toBe(kind);
    const err = new KubeError(status, reason, `GET /x: ${status} ${reason}`);
    expect(err).toMatchObject({ name: 'KubeError', kind, status, reason, message: `GET /x: ${status} ${reason}` });
  });

  it('when a watch ERROR event carries a Status object, then its code and reason map the same way (410 Expired: gone)', () => {
    expect(kubeErrorKind(410, 'Expired')).toBe('gone');
    expect(kubeErrorKind(500, 'InternalError')).toBe('unavailable');
  });

  it('when the apiserver answered and refused (a 4xx but 429), then the error says refused; no answer, 429 and 5xx do not', () => {
    for (const s of [400, 403, 404, 409, 410, 413, 422]) expect(new KubeError(s, 'X', 'm').refused).toBe(true);
    for (const s of [undefined, 429, 500, 503]) expect(new KubeError(s, 'X', 'm').refused).toBe(false);
  });

  it('isKubeError matches KubeErrors only, and of the kinds asked for when given', () => {
    const gone = new KubeError(404, 'NotFound', 'm');
    expect(isKubeError(gone)).toBe(true);
    expect(isKubeError(gone, 'not-found')).toBe(true);
    expect(isKubeError(gone, 'conflict', 'not-found')).toBe(true);
    expect(isKubeError(gone, 'conflict')).toBe(false);
    // A look-alike (an error with a status field) is not one: nobody outside src/kube/ reads status codes.
    expect(isKubeError(Object.assign(new Error('m'), { status: 404, kind: 'not-found' }), 'not-found')).toBe(false);
    expect(isKubeError(undefined)).toBe(false);
  });

  it('keeps the cause of a request that got no answer', () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:6443');
    const err = new KubeError(undefined, 'Unavailable', 'GET /api/v1/pods: connect ECONNREFUSED 127.0.0.1:6443', { cause });
    expect(err.cause).toBe(cause);
    expect(err.kind).toBe('unavailable');
  });
});
