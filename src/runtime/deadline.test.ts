import { describe, expect, it } from '@jest/globals';
import { timeoutSignal } from './deadline.ts';

describe('timeoutSignal', () => {
  it('when the time passes, then the signal aborts as AbortSignal.timeout does: a DOMException named TimeoutError', async () => {
    const t = timeoutSignal(10);
    const reference = AbortSignal.timeout(10);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.signal.aborted).toBe(true);
    const reason = t.signal.reason as DOMException;
    const expected = reference.reason as DOMException;
    expect(reason).toBeInstanceOf(DOMException);
    expect({ name: reason.name, message: reason.message, code: reason.code }).toEqual({ name: expected.name, message: expected.message, code: expected.code });
  });

  it('when it is cleared first, then it never aborts', async () => {
    const t = timeoutSignal(10);
    t.clear();
    await new Promise((r) => setTimeout(r, 50));
    expect(t.signal.aborted).toBe(false);
  });
});
