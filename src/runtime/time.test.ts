import { describe, expect, it } from '@jest/globals';
import { formatMicroTime, formatTimestamp } from './time.ts';

describe('time formats', () => {
  it('when a time is formatted for Kubernetes or Anchore, then it is RFC 3339 UTC with whole seconds', () => {
    expect(formatTimestamp(new Date('2026-12-06T04:43:49.987Z'))).toBe('2026-12-06T04:43:49Z');
  });

  it('when a time is formatted as MicroTime (Lease times, Event eventTime), then it has six fractional digits, UTC', () => {
    expect(formatMicroTime(new Date(Date.parse('2026-11-30T10:00:01.234Z')))).toBe('2026-11-30T10:00:01.234000Z');
    expect(formatMicroTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05.678000Z');
    expect(formatMicroTime(new Date('2026-01-02T03:04:05Z'))).toBe('2026-01-02T03:04:05.000000Z');
  });
});
