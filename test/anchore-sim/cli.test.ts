import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { call } from './test-client.ts';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'anchore-sim-cli-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with the node that runs jest (Node 24 strips the types itself). */
function runToExit(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('cli', () => {
  it('when started, then it prints where it listens and that it is a simulator, serves requests, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line; got: ${stdout}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /^anchore-sim listening on (\S+) \(accounts: admin, team-a\)$/m.exec(stdout);
        if (m !== null && stdout.includes('SIMULATOR')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    try {
      expect((await call(url, 'GET', '/v2/')).body).toBe('v2');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);

  it('when an argument is unknown, then one line on stderr and exit 2', async () => {
    const run = await runToExit(['--bogus']);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^anchore-sim: /);
  }, 30_000);

  it('when the port is invalid, then exit 2', async () => {
    const run = await runToExit(['--port', 'eighty']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--port');
  }, 30_000);

  it('when the config file is invalid, then exit 2 naming the problem', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'seed: 1\nnot_a_key: true\n');
    const run = await runToExit(['--config', path]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('not_a_key');
  }, 30_000);

  it('when only one of the TLS files is given, then exit 2', async () => {
    const run = await runToExit(['--tls-cert', 'x.pem']);
    expect(run.code).toBe(2);
  }, 30_000);
});
