import { describe, expect, it } from '@jest/globals';
import { parseErrorBody } from './errors.ts';

describe('parseErrorBody', () => {
  it.each([
    [
      'the engine shape',
      '{"message":"Not authorized. Requires permissions: domain=a action=listImages target=","detail":{},"httpcode":403}',
      'Not authorized. Requires permissions: domain=a action=listImages target=',
    ],
    ['the spec shape', '{"code":400,"error_type":"ValidationError","message":"tag is required","detail":{"field":"tag"}}', 'tag is required'],
    ['problem+json', '{"type":"about:blank","title":"Not Found","status":404,"detail":"The requested URL was not found on the server."}', 'Not Found: The requested URL was not found on the server.'],
    ['an OAuth error', '{"error":"invalid_grant"}', 'invalid_grant'],
    ['an HTML page', '<html><body><h1>Sign in</h1></body></html>', 'Sign in'],
    ['a JSON string', '"v2"', 'v2'],
  ])('when the body is %s, then the message is extracted', (_n, body, message) => {
    expect(parseErrorBody(body).message).toBe(message);
  });

  it('when the body is empty, numeric or huge, then parsing never throws and stays short', () => {
    expect(parseErrorBody('').message).toBeUndefined();
    expect(parseErrorBody('42').message).toBeUndefined();
    expect(parseErrorBody('x'.repeat(100_000)).message?.length).toBeLessThanOrEqual(301);
  });

  it('when the engine body carries a request id, then it is kept', () => {
    expect(parseErrorBody('{"message":"m","anchore_request_id":"abc-1"}').requestId).toBe('abc-1');
  });
});
