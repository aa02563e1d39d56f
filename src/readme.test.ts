import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { checkSettingsTable } from '../scripts/readme-settings.ts';

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('when a setting exists, then the README configuration table is the one SETTINGS renders, default and meaning (readme-settings --check)', () => {
    expect(checkSettingsTable(readme)).toEqual([]);
  });

  it('when a user reads the quick start, then the demo and test commands are the npm scripts that exist', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    expect(pkg.scripts['demo']).toBeDefined();
    expect(pkg.scripts['test']).toBe('node scripts/test.ts');
  });
});
