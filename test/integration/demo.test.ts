import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

/*
 * The README's main command, `npm run demo -- --once`, on the local control plane: it must exit 0 having shown
 * registered images, the inventory, the sample bindings, and that every metric the shipped dashboard and alert rules
 * use is in the live scrape of the demo scenario. The demo is by definition the local-control-plane experience.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const local = (process.env['TEST_CLUSTER_KIND'] ?? 'local') === 'local';

describe('npm run demo -- --once', () => {
  (local ? it : it.skip)(
    'when the demo runs once, then it exits 0 and shows images, inventory, bindings and monitoring coverage',
    async () => {
      const child = spawn(process.execPath, [join(root, 'scripts', 'demo.ts'), '--once'], { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      expect({ code, tail: code === 0 ? '' : out.slice(-3000) }).toEqual({ code: 0, tail: '' });
      expect(out).toContain('Anchore V2 SIMULATOR');
      expect(out).toMatch(/Images Anchore received \(6\)/);
      expect(out).toMatch(/POST \/v2\/images calls: 6 for 6 unique images/);
      expect(out).toMatch(/demo-shop\s+storefront\s+Default bundle\s+evaluate\s+3/);
      expect(out).toMatch(/Monitoring: all \d+ metrics referenced by deploy\/monitoring/);
    },
    300_000,
  );
});
