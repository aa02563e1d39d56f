import { describe, expect, it } from '@jest/globals';
import { AnchoreUrlError, parseAnchoreUrl } from './url.ts';

describe('parseAnchoreUrl', () => {
  it.each([
    ['https://a:8228', 'https://a:8228'],
    ['https://a:8228/', 'https://a:8228'],
    ['https://a:8228/v2', 'https://a:8228'],
    ['https://a:8228/v2/', 'https://a:8228'],
    ['http://gw/anchore/v2', 'http://gw/anchore'],
    ['https://a:443/', 'https://a'],
  ])('when the URL is %s, then the base is %s', (raw, base) => {
    expect(parseAnchoreUrl(raw)).toBe(base);
  });

  it.each([
    ['not a url', 'ANCHORE_URL "not a url" is not an http(s) URL'],
    ['ftp://x', 'ANCHORE_URL "ftp://x" is not an http(s) URL'],
    ['https://u:p@x', 'ANCHORE_URL must not contain credentials; use ANCHORE_USERNAME/ANCHORE_PASSWORD'],
    ['https://anchore.example?x=1', 'ANCHORE_URL "https://anchore.example?x=1" must not carry a query or fragment'],
    ['https://anchore.example/#top', 'ANCHORE_URL "https://anchore.example/#top" must not carry a query or fragment'],
    [
      'https://anchore.example:8228/v1',
      'ANCHORE_URL "https://anchore.example:8228/v1" ends in /v1, but the operator uses Anchore\'s V2 API: give the base URL (https://anchore.example:8228) or https://anchore.example:8228/v2',
    ],
    [
      'https://proxy.example/anchore/V1/',
      'ANCHORE_URL "https://proxy.example/anchore/V1/" ends in /v1, but the operator uses Anchore\'s V2 API: give the base URL (https://proxy.example/anchore) or https://proxy.example/anchore/v2',
    ],
  ])('when the URL is %s, then it is refused with one message saying why', (raw, message) => {
    expect(() => parseAnchoreUrl(raw)).toThrow(AnchoreUrlError);
    expect(() => parseAnchoreUrl(raw)).toThrow(message);
  });

  it('when a password is in the URL, then the message does not repeat it', () => {
    let message = '';
    try {
      parseAnchoreUrl('https://admin:s3cret-pw@anchore:8228');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('must not contain credentials');
    expect(message).not.toContain('s3cret-pw');
  });
});
