import { describe, expect, it } from '@jest/globals';
import { ManualClock } from '../testing/manual-clock.ts';
import { every } from './periodic.ts';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('every', () => {
  it('runs at once, then the interval after each run ends: never two at once, no burst after a slow run', async () => {
    const clock = new ManualClock(0);
    const starts: number[] = [];
    let release: (() => void) | undefined;
    const loop = every(
      1000,
      () => {
        starts.push(clock.now());
        // The second run is slow: 2,500 ms.
        if (starts.length === 2) return new Promise<void>((r) => (release = r));
      },
      { clock },
    );
    await settle();
    expect(starts).toEqual([0]);
    clock.advance(1000);
    await settle();
    expect(starts).toEqual([0, 1000]);
    clock.advance(2500);
    await settle();
    expect(starts).toEqual([0, 1000]); // still running: nothing starts beside it
    release?.();
    await settle();
    clock.advance(999);
    await settle();
    expect(starts).toEqual([0, 1000]);
    clock.advance(1);
    await settle();
    expect(starts).toEqual([0, 1000, 4500]);
    expect(loop.runs).toBe(3);
    loop.stop();
    clock.advance(10_000);
    await settle();
    expect(starts).toHaveLength(3);
  });

  it('a run that throws (or rejects) does not end the loop; immediate: false waits one interval first; the interval may change', async () => {
    const clock = new ManualClock(0);
    const starts: number[] = [];
    let interval = 100;
    const loop = every(
      () => interval,
      () => {
        starts.push(clock.now());
        if (starts.length === 1) throw new Error('boom');
        if (starts.length === 2) return Promise.reject(new Error('boom'));
      },
      { clock, immediate: false },
    );
    await settle();
    expect(starts).toEqual([]);
    clock.advance(100);
    await settle();
    clock.advance(100);
    await settle();
    interval = 50;
    clock.advance(100);
    await settle();
    clock.advance(50);
    await settle();
    expect(starts).toEqual([100, 200, 300, 350]);
    loop.stop();
  });
});
