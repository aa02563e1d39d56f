// Seeded, dependency-free pseudo-randomness so that every "random" outcome of the simulator (injected errors,
// generated vulnerabilities, verdicts, analysis failures) is the same on every run with the same seed.
import { createHash } from 'node:crypto';

/** 32-bit FNV-1a hash of a string. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A mulberry32 generator: returns numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator seeded from the config seed plus any number of string parts (e.g. a digest). */
export function seededRandom(seed: number, ...parts: string[]): () => number {
  return mulberry32(fnv1a(`${seed}\u0000${parts.join('\u0000')}`));
}

/** One deterministic number in [0, 1) for the given seed and parts. */
export function hashUnit(seed: number, ...parts: string[]): number {
  return seededRandom(seed, ...parts)();
}

/** Hex SHA-256 of a string. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A deterministic RFC 4122-looking (version 4 layout) UUID derived from the given parts. */
export function deterministicUuid(seed: number, ...parts: string[]): string {
  const h = sha256Hex(`${seed}\u0000${parts.join('\u0000')}`);
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
