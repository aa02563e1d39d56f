import { describe, expect, it } from '@jest/globals';
import { digestKey, imageKey, tagKey, tagOfImageKey } from './image-keys.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('image keys', () => {
  it('when an image has a digest, then its key is the digest key, which names no tag', () => {
    const k = imageKey('team-a', { digest, tag: 'docker.io/library/nginx:1.25' });
    expect(k).toBe(digestKey('team-a', digest));
    expect(tagOfImageKey(k)).toBeUndefined();
  });

  it('when an image has no digest, then its key names the tag, and it parses back', () => {
    const k = imageKey('admin', { tag: 'registry.local:5000/app:v1' });
    expect(k).toBe('admin|tag:registry.local:5000/app:v1');
    expect(tagOfImageKey(k)).toEqual({ account: 'admin', tag: 'registry.local:5000/app:v1' });
  });

  it('when the same key is built twice, then it is the same interned string', () => {
    expect(imageKey('a', { digest, tag: 'x' })).toBe(digestKey('a', digest));
    expect(tagKey('a', 'docker.io/library/nginx:1.25')).toBe('a|docker.io/library/nginx:1.25');
  });
});
