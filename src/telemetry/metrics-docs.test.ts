import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { METRIC } from './metrics.ts';

describe('docs/metrics.md', () => {
  it('when a metric name constant exists, then the metrics page documents it', () => {
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const missing = Object.values(METRIC).filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
