import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SimConfigError, defaultConfig, loadConfigFile, resolveConfig } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'anchore-sim-config-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeTemp(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  it('when nothing is given, then the documented defaults apply', () => {
    const c = resolveConfig();
    expect(c).toEqual(defaultConfig());
    expect(c).toMatchObject({ seed: 42, service_version: '5.26.0', api_version: '2', error_shape: 'engine', token_ttl_seconds: 3600, integrations_enabled: true });
    expect(c.accounts.map((a) => a.name)).toEqual(['admin', 'team-a']);
  });

  it('when only some analysis keys are given, then the others keep their defaults', () => {
    expect(resolveConfig({ analysis: { queued_ms: 5 } }).analysis).toEqual({ queued_ms: 5, analyzing_ms: 300, fail_digests: [], fail_rate: 0 });
  });

  it('when custom accounts drop the default ones, then default policies of vanished accounts are dropped too', () => {
    const c = resolveConfig({ accounts: [{ name: 'solo', users: [{ username: 'u', password: 'p' }] }] });
    expect(c.policies).toEqual({});
  });

  it('when a key is unknown or a value is invalid, then a one-line SimConfigError names it', () => {
    expect(() => resolveConfig({ sede: 1 } as never)).toThrow(new SimConfigError('unknown config key "sede"'));
    expect(() => resolveConfig({ analysis: { fail_rate: 2 } })).toThrow(/analysis\.fail_rate/);
    expect(() => resolveConfig({ error_shape: 'json' as never })).toThrow(/error_shape/);
    expect(() => resolveConfig({ policies: { ghost: [] } })).toThrow(/unknown account "ghost"/);
    expect(() =>
      resolveConfig({
        accounts: [
          { name: 'a', users: [{ username: 'x', password: 'p' }] },
          { name: 'b', users: [{ username: 'x', password: 'q' }] },
        ],
      }),
    ).toThrow(/duplicate username/);
  });

  it("when inventory_ttl_days is not given, then it is the Anchore chart's 120; only whole days >= 1 are accepted", () => {
    expect(resolveConfig().inventory_ttl_days).toBe(120);
    expect(resolveConfig({ inventory_ttl_days: 1 }).inventory_ttl_days).toBe(1);
    for (const bad of [0, -1, 1.5, Number.NaN, '30']) {
      expect(() => resolveConfig({ inventory_ttl_days: bad as never })).toThrow(/inventory_ttl_days/);
    }
  });

  it('when the example YAML file is loaded, then it validates and matches the defaults', () => {
    const example = fileURLToPath(new URL('./sim-config.example.yaml', import.meta.url));
    expect(loadConfigFile(example)).toEqual(defaultConfig());
  });

  it('when a JSON file is loaded, then it is accepted as YAML', () => {
    const path = writeTemp('c.json', JSON.stringify({ seed: 7, error_shape: 'spec' }));
    expect(loadConfigFile(path)).toMatchObject({ seed: 7, error_shape: 'spec' });
  });

  it('when the file is missing, unparsable or not a mapping, then SimConfigError', () => {
    expect(() => loadConfigFile(join(dir, 'absent.yaml'))).toThrow(SimConfigError);
    expect(() => loadConfigFile(writeTemp('bad.yaml', 'seed: [1,'))).toThrow(SimConfigError);
    expect(() => loadConfigFile(writeTemp('list.yaml', '- 1\n- 2\n'))).toThrow(/must contain a mapping/);
  });
});
