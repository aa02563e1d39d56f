import { describe, expect, it } from '@jest/globals';
import { ManualClock } from './manual-clock.ts';

describe('ManualClock', () => {
  it('runs timers in due order at their due time when time is advanced past them, and not the cleared ones', () => {
    const c = new ManualClock(0);
    const ran: Array<[string, number]> = [];
    c.setTimeout(() => ran.push(['b', c.now()]), 20);
    c.setTimeout(() => ran.push(['a', c.now()]), 10);
    const gone = c.setTimeout(() => ran.push(['x', c.now()]), 15);
    c.clearTimeout(gone);
    c.advance(5);
    expect(ran).toEqual([]);
    c.advance(30);
    expect(ran).toEqual([
      ['a', 10],
      ['b', 20],
    ]);
    expect(c.now()).toBe(35);
  });
});
