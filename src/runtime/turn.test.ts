import { describe, expect, it } from '@jest/globals';
import { Turn } from './turn.ts';

describe('Turn', () => {
  it('when its time has run out, then it is due; after next(), a new turn begins', async () => {
    const turn = new Turn(20);
    expect(turn.due()).toBe(false);
    const until = performance.now() + 25;
    while (performance.now() < until);
    expect(turn.due()).toBe(true);
    await turn.next();
    expect(turn.due()).toBe(false);
  });

  it('when it is given a count, then it is due after that many items at the latest', async () => {
    const turn = new Turn(60_000, 3);
    expect([turn.due(), turn.due(), turn.due()]).toEqual([false, false, true]);
    await turn.next();
    expect([turn.due(), turn.due(), turn.due()]).toEqual([false, false, true]);
  });

  it('when next() is awaited, then other callbacks run first', async () => {
    let ran = false;
    setImmediate(() => (ran = true));
    await new Turn().next();
    expect(ran).toBe(true);
  });
});
