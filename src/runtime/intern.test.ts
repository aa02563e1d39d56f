import { describe, expect, it } from '@jest/globals';
import { Interner } from './intern.ts';

// String identity is not observable from JavaScript; what is observable is what the pool holds.
describe('Interner', () => {
  it('when the same content is interned twice, then the pool holds it once and returns equal content', () => {
    const pool = new Interner(10);
    const a = JSON.parse('"registry.example/app:1.0"') as string;
    const b = JSON.parse('"registry.example/app:1.0"') as string;
    expect(pool.intern(a)).toBe('registry.example/app:1.0');
    expect(pool.intern(b)).toBe('registry.example/app:1.0');
    expect(pool.size).toBe(1);
  });

  it('when more distinct strings arrive than the limit, then the pool stays within two generations', () => {
    const pool = new Interner(100);
    for (let i = 0; i < 10_000; i++) pool.intern(`s-${i}`);
    expect(pool.size).toBeLessThanOrEqual(200);
  });

  it('when a string of the previous generation is used again, then it survives the next rotation; an unused one does not', () => {
    const pool = new Interner(2);
    pool.intern('a');
    pool.intern('b');
    pool.intern('c'); // current {a, b} is full: it becomes the previous generation
    pool.intern('a'); // found in the previous generation: moves to the current one {c, a}
    pool.intern('d'); // current {c, a} is full: it becomes the previous generation, {a, b} is dropped
    expect(pool.has('a')).toBe(true);
    expect(pool.has('b')).toBe(false);
  });

  it('when the limit is not positive, then it throws', () => {
    expect(() => new Interner(0)).toThrow(RangeError);
  });
});
