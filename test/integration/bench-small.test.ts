import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/*
 * Keeps the benchmark harness working: `npm run bench -- --small` (a few hundred pods) end to end. No timing is
 * asserted — this machine is shared — only that every scenario produced its figures and the correctness invariants
 * that do not depend on speed: one add per digest, none on restart, no status writes in steady state, every churned
 * image in the inventory.
 */
describe('benchmark harness (small)', () => {
  it('when the small suite runs, then every scenario reports figures and the invariants hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-small-'));
    const out = join(dir, 'result.json');
    try {
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [join(root, 'bench', 'run.ts'), '--small', '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.on('exit', (c) => {
          if (c !== 0) process.stderr.write(err.slice(-4000));
          resolve(c);
        });
      });
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(out, 'utf8')) as Record<string, Record<string, unknown>>;
      expect(Object.keys(r)).toEqual(expect.arrayContaining(['setup', 'coldStart', 'policyEvaluation', 'steadyState', 'restart', 'churn', 'addsPerDigest']));
      expect(r['coldStart']).toMatchObject({ uniqueImages: 60, allRegisteredSeconds: expect.any(Number), inventorySentSeconds: expect.any(Number) });
      expect(r['policyEvaluation']).toMatchObject({ images: 60, summary: { images: 60, pending: 0, errors: 0 } });
      expect(r['steadyState']).toMatchObject({ bindingStatusWrites: 0, bindingResourceVersionMoved: false });
      expect((r['steadyState']!['rssMiB'] as { max: number }).max).toBeGreaterThan(0);
      expect(r['restart']).toMatchObject({ anchoreAddCalls: 0 });
      expect(r['churn']).toMatchObject({ inventoryMissing: 0, registrationMs: { n: expect.any(Number) } });
      expect((r['churn']!['registrationMs'] as { n: number }).n).toBe(r['churn']!['podsCreated']);
      expect(r['addsPerDigest']).toMatchObject({ max: 1, digestsAddedMoreThanOnce: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
