import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

const root = new URL('..', import.meta.url);

describe('sizing table and chart defaults', () => {
  it('when the chart is installed with its defaults, then its resources are the "chart default" row of docs/performance.md', () => {
    const doc = readFileSync(new URL('docs/performance.md', root), 'utf8');
    const row = doc.split('\n').find((l) => l.startsWith('|') && l.includes('(chart default)'));
    expect(row).toBeDefined();
    const cells = row!.split('|').map((c) => c.trim().replace(/`/g, ''));
    // | pods | images | measured | requests.memory | limits.memory | requests.cpu |
    const [reqMem, limMem, reqCpu] = [cells[4], cells[5], cells[6]];
    const values = parse(readFileSync(new URL('deploy/helm/anchore-operator/values.yaml', root), 'utf8')) as { resources: { requests: Record<string, string>; limits: Record<string, string> } };
    expect(values.resources).toEqual({ requests: { cpu: reqCpu, memory: reqMem }, limits: { memory: limMem } });
  });
});
