import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Runs `bench/run.ts` with `args` as `npm run bench` would and returns its exit code and the JSON it wrote (undefined
 * when it failed; its stderr tail is then printed). The output folder is removed afterwards.
 */
export async function runBench<T>(args: string[]): Promise<{ code: number | null; result: T | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-run-'));
  const out = join(dir, 'result.json');
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [join(root, 'bench', 'run.ts'), ...args, '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('exit', (c) => {
        if (c !== 0) process.stderr.write(err.slice(-4000));
        resolve(c);
      });
    });
    return { code, result: code === 0 ? (JSON.parse(readFileSync(out, 'utf8')) as T) : undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
