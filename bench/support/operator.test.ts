import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loggedSetting } from './operator.ts';

describe('loggedSetting', () => {
  it('when the operator logged its configuration at start, then a setting is read from that line, and undefined when absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'op-log-'));
    try {
      const log = join(dir, 'operator.log');
      writeFileSync(log, ['not json "config"', JSON.stringify({ level: 'info', config: { inventory: { intervalMs: 600000 } } }), JSON.stringify({ msg: 'later' })].join('\n'));
      expect(loggedSetting(log, ['inventory', 'intervalMs'])).toBe(600000);
      expect(loggedSetting(log, ['inventory', 'nope'])).toBeUndefined();
      expect(loggedSetting(join(dir, 'missing.log'), ['inventory'])).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
