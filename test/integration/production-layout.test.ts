import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SETTINGS } from '../../src/config.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, ensureCrds, eventually, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { operatorEnv } from '../support/operator.ts';

/*
 * What the container image holds, without a container engine: the Dockerfile is checked statically, and its layout
 * (dist/ compiled by tsc, production dependencies from `npm ci --omit=dev --ignore-scripts`, package.json — nothing
 * else) is rebuilt in a temporary folder and started with `node dist/main.js` against the simulator and the cluster.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string; license: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// A small Dockerfile reader: continuation lines joined, comments dropped, ARG defaults substituted, split in stages.

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') && !current) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) lines.push(current.trim());
    current = '';
  }
  const args: Record<string, string> = {};
  const subst = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => args[(a ?? b) as string] ?? m);
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\w+)\s+(.*)$/s.exec(line);
    if (!m) continue;
    const op = (m[1] as string).toUpperCase();
    const rest = m[2] as string;
    if (op === 'ARG') {
      const a = /^(\w+)(?:=(.*))?$/.exec(rest.trim());
      if (a && a[2] !== undefined && !((a[1] as string) in args)) args[a[1] as string] = a[2].replace(/^"|"$/g, '');
      stages.at(-1)?.instructions.push({ op, args: rest });
      continue;
    }
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(subst(rest).trim());
      stages.push({ from: f?.[1] ?? rest, ...(f?.[2] ? { name: f[2] } : {}), instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push({ op, args: subst(rest) });
  }
  return stages;
}

/** The source paths of COPY/ADD (flags dropped; JSON form too), with the --from stage. */
function copySources(i: Instruction): { from?: string; sources: string[]; dest: string } {
  const flags = [...i.args.matchAll(/--(\w+)=(\S+)/g)].map((m) => [m[1], m[2]] as const);
  const rest = i.args.replace(/--\w+=\S+\s*/g, '').trim();
  const parts = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  const from = flags.find(([k]) => k === 'from')?.[1];
  return { ...(from ? { from } : {}), sources: parts.slice(0, -1), dest: parts.at(-1) as string };
}

// ---------------------------------------------------------------------------------------------------------------

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
}

describe('production layout (what the container image holds)', () => {
  const dockerfile = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const final = dockerfile.at(-1) as Stage;

  it('when the Dockerfile is read, then it has a build stage, a production-dependency stage and a Node 24 final stage', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(3);
    const build = dockerfile.find((s) => s.name === 'build');
    const deps = dockerfile.find((s) => s.name === 'prod-deps');
    expect(build?.from).toMatch(/^node:24-(bookworm-slim|alpine)/);
    expect(deps?.from).toMatch(/^node:24-(bookworm-slim|alpine)/);
    const runs = (s: Stage | undefined) =>
      (s?.instructions ?? [])
        .filter((i) => i.op === 'RUN')
        .map((i) => i.args)
        .join('\n');
    expect(runs(build)).toMatch(/npm ci\b/);
    expect(runs(build)).toMatch(/npm run build\b/);
    expect(runs(deps)).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(runs(deps)).toMatch(/--ignore-scripts/);
    // Node 24, the same major the devDependency `node` pins for development.
    expect(final.from).toMatch(/nodejs24|node:24/);
    expect(pkg.devDependencies['node']).toMatch(/^24\./);
  });

  it('when the final stage is read, then it runs as a non-root user and copies only dist, production node_modules and package.json', () => {
    const users = final.instructions.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = (users.at(-1) as Instruction).args.trim();
    const uid = user.split(':')[0] as string;
    expect(uid).not.toMatch(/^(0|root)$/);
    expect(Number(uid)).toBe(65532);
    expect(final.instructions.filter((i) => i.op === 'RUN')).toEqual([]); // distroless: nothing runs at build time
    expect(final.instructions.filter((i) => i.op === 'ADD')).toEqual([]);
    const copies = final.instructions.filter((i) => i.op === 'COPY').map(copySources);
    const copied = copies.map((c) => `${c.from ?? 'context'}:${c.sources.join(',')}->${c.dest}`).sort();
    expect(copied).toEqual(['build:/src/dist->./dist', 'context:package.json->./', 'prod-deps:/app/node_modules->./node_modules']);
    expect(final.instructions.find((i) => i.op === 'WORKDIR')?.args).toBe('/app');
  });

  it('when the entry point, ports and labels are read, then they match package.json and the configuration defaults', () => {
    const entry = JSON.parse((final.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1) as Instruction).args) as string[];
    expect(entry.at(-1)).toBe(pkg.main);
    expect(entry[0]).toMatch(/(^|\/)node$/);
    const defaults = Object.fromEntries(SETTINGS.map((s) => [s.name, s.default]));
    const exposed = final.instructions
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .sort();
    expect(exposed).toEqual([defaults['METRICS_PORT'], defaults['HEALTH_PORT']].sort());
    const labels = final.instructions
      .filter((i) => i.op === 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'licenses', 'version', 'revision']) expect(labels).toContain(`org.opencontainers.image.${key}=`);
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
  });

  it('when the .dockerignore is read, then dependencies, outputs, tests and docs stay out of the build context but what the build copies does not', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', '.git', 'test', 'docs', 'coverage', '*.log', '.cache']) expect(ignored).toContain(p);
    const fromContext = dockerfile.flatMap((s) =>
      s.instructions
        .filter((i) => i.op === 'COPY')
        .map(copySources)
        .filter((c) => !c.from)
        .flatMap((c) => c.sources),
    );
    expect(fromContext.length).toBeGreaterThan(0);
    for (const src of fromContext) expect({ src, ignored: ignored.includes(src) || ignored.includes(src.replace(/\/$/, '')) }).toEqual({ src, ignored: false });
  });

  describe('started from a fresh folder holding only that layout', () => {
    let dir: string;
    let sim: AnchoreSimulator;
    const ns = uniqueName('prod');
    const running: Run[] = [];
    // npm on this machine may be started by an older system Node: the Node running the tests comes first on PATH.
    const npmEnv = { ...process.env, PATH: `${dirname(process.execPath)}${process.platform === 'win32' ? ';' : ':'}${process.env['PATH'] ?? ''}` };

    function start(env: Record<string, string>): Run {
      // The repository's Node 24 (the system Node may be older), but modules resolved only from `dir`.
      const child = spawn(process.execPath, [pkg.main], {
        cwd: dir,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', NODE_ENV: 'production', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const r: Run = { child, stdout: [], stderr: [], exit: new Promise((res) => child.on('exit', (code) => res(code))) };
      child.stdout?.on('data', (d: Buffer) => r.stdout.push(d.toString()));
      child.stderr?.on('data', (d: Buffer) => r.stderr.push(d.toString()));
      running.push(r);
      return r;
    }
    const logPort = async (r: Run, message: string): Promise<number> => {
      const line = await eventually(
        () =>
          r.stdout
            .join('')
            .split('\n')
            .find((l) => l.includes(message)),
        30_000,
      );
      return (JSON.parse(line) as { port: number }).port;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'anchore-operator-prod-'));
      const tsc = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: root });
      expect({ tsc: tsc.code, out: tsc.stdout + tsc.stderr }).toEqual({ tsc: 0, out: '' });
      copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
      copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
      // Same registry configuration as the developer's npm (user .npmrc, cache); the cache makes it quick.
      const ci = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, env: npmEnv });
      expect({ code: ci.code, stderr: ci.code === 0 ? '' : ci.stderr }).toEqual({ code: 0, stderr: '' });
      sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
      await apply(namespaceManifest(ns));
      await ensureCrds();
    }, 300_000);

    afterAll(async () => {
      for (const r of running) r.child.kill('SIGKILL');
      await sim?.stop();
      await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('when production dependencies are installed from the lockfile, then no devDependency (TypeScript, jest, swc, the node package) is there', () => {
      const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
      const devOnly = Object.entries(lock.packages)
        .filter(([p, e]) => p && e.dev)
        .map(([p]) => p);
      expect(devOnly.length).toBeGreaterThan(100);
      expect(devOnly.filter((p) => existsSync(join(dir, p)))).toEqual([]);
      for (const name of ['typescript', 'jest', '@swc/core', '@swc/jest', 'node', 'dependency-cruiser', 'fast-check', 'pino-pretty']) {
        expect({ name, present: existsSync(join(dir, 'node_modules', name)) }).toEqual({ name, present: false });
      }
      for (const name of Object.keys(pkg.dependencies)) expect({ name, present: existsSync(join(dir, 'node_modules', name, 'package.json')) }).toEqual({ name, present: true });
      // Nothing else from the repository: only what the image's final stage copies.
      expect(readdirSync(dir).sort()).toEqual(['dist', 'node_modules', 'package-lock.json', 'package.json']);
      expect(existsSync(join(dir, 'dist', 'main.js'))).toBe(true);
      expect(readdirSync(join(dir, 'dist'), { recursive: true }).some((f) => String(f).endsWith('.test.js'))).toBe(false);
      // Module resolution walks up from dist/: no node_modules above the folder may stand in for a missing one.
      const above: string[] = [];
      for (let d = dirname(dir); ; d = dirname(d)) {
        if (existsSync(join(d, 'node_modules'))) above.push(d);
        if (dirname(d) === d) break;
      }
      expect(above).toEqual([]);
    });

    it('when the configuration is invalid, then node dist/main.js exits 2 with a one-line cause', async () => {
      const r = start({ ANCHORE_URL: 'not a url', CLUSTER_NAME: 'c', ANCHORE_USERNAME: 'a', ANCHORE_PASSWORD: 'p' });
      expect(await r.exit).toBe(2);
      const err = r.stderr.join('').trim();
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toBe('anchore-operator: invalid configuration: ANCHORE_URL "not a url" is not an http(s) URL');
    });

    it('when pretty logs are asked for in the production layout (no pino-pretty), then it exits 2 saying why', async () => {
      const r = start({ ANCHORE_URL: 'http://127.0.0.1:1', CLUSTER_NAME: 'c', ANCHORE_USERNAME: 'a', ANCHORE_PASSWORD: 'p', LOG_PRETTY: 'true' });
      expect(await r.exit).toBe(2);
      expect(r.stderr.join('').trim()).toMatch(/^anchore-operator: invalid configuration: LOG_PRETTY=true needs the pino-pretty package/);
    });

    it('when started against Anchore and the cluster, then /readyz is 200, /metrics answers, a running image is registered, and SIGTERM exits 0', async () => {
      const r = start(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('prod'), NAMESPACES_INCLUDE: ns, LEADER_ELECTION: 'false', LOG_LEVEL: 'info' }));
      try {
        const health = await logPort(r, 'health server listening');
        const metrics = await logPort(r, 'metrics server listening');
        await eventually(async () => (await fetch(`http://127.0.0.1:${health}/readyz`)).status === 200, 30_000, 200);
        expect((await fetch(`http://127.0.0.1:${health}/healthz`)).status).toBe(200);
        await apply(deployment(ns, 'app', 1, [{ name: 'app', image: 'nginx:1.26' }]));
        const [pod] = await waitForRunningPods(ns, 'app=app', 1);
        const digest = digestOf(pod?.containers[0]?.imageID ?? '');
        await eventually(() => sim.images('admin').some((i) => i.image_digest === digest), 15_000);
        const res = await fetch(`http://127.0.0.1:${metrics}/metrics`);
        expect(res.status).toBe(200);
        const body = await res.text();
        expect(body).toMatch(/^# TYPE anchore_operator_\w+ /m);
        r.child.kill('SIGTERM');
        expect(await r.exit).toBe(0);
        expect(r.stderr.join('')).toBe('');
      } finally {
        r.child.kill('SIGKILL');
      }
    });
  });
});
