/**
 * The test command (`npm test`): type-check, ESLint, the layering lint, the generated-file and Prettier checks, then
 * jest — unit tests and the integration suites against a real Kubernetes API (the local control plane, or the cluster
 * in $KUBECONFIG with USE_EXISTING_CLUSTER=true). The static checks run unless jest arguments are given.
 *   node scripts/test.ts             everything
 *   node scripts/test.ts --unit      unit tests only (no cluster)
 *   node scripts/test.ts --integration [jest args…]
 *   node scripts/test.ts --static    the static checks and the repository rule only (`npm run verify`)
 * Jest ends with one plain line "jest: N passed, N failed, N skipped".
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const integrationOnly = args.includes('--integration');
const staticOnly = args.includes('--static');
const rest = args.filter((a) => a !== '--unit' && a !== '--integration' && a !== '--static');
const bin = (name: string): string => join(root, 'node_modules', '.bin', name);

function step(title: string, cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): void {
  const t0 = Date.now();
  process.stdout.write(`\n=== ${title}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.status !== 0) {
    process.stdout.write(`=== ${title}: FAILED after ${secs}s\n`);
    process.exit(r.status ?? 1);
  }
  process.stdout.write(`=== ${title}: ok (${secs}s)\n`);
}

if (!integrationOnly && rest.length === 0) {
  step('type-check (tsc --noEmit)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  step('ESLint (eslint .)', bin('eslint'), ['.']);
  step('layering lint (dependency-cruiser)', bin('depcruise'), ['src', 'test', 'scripts', 'bench', '--config', '.dependency-cruiser.cjs']);
  step('generated CRDs and chart copies up to date (gen-crds --check)', process.execPath, [join(root, 'scripts', 'gen-crds.ts'), '--check']);
  step('chart values documented (helm-docs --check)', process.execPath, [join(root, 'scripts', 'helm-docs.ts'), '--check']);
  step('README configuration table up to date (readme-settings --check)', process.execPath, [join(root, 'scripts', 'readme-settings.ts'), '--check']);
  step('formatting (prettier --check)', bin('prettier'), ['--check', '--log-level', 'warn', '.']);
}
// --static: no tracked file names a path outside the repository (a unit test, run alone in a fraction of a second).
const projects = unitOnly || staticOnly ? ['unit'] : integrationOnly ? ['integration'] : ['unit', 'integration'];
const jestArgs = staticOnly ? [join('src', 'repository.test.ts')] : rest;
step(
  `jest (${projects.join(' + ')})`,
  process.execPath,
  // Paths and flags first: jest would read a path after --selectProjects as another project name.
  [join(root, 'node_modules', 'jest', 'bin', 'jest.js'), ...jestArgs, '--selectProjects', ...projects],
  { ...process.env, ...loopbackNeverProxied(process.env), NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim() },
);

/**
 * The operator honours HTTPS_PROXY / HTTP_PROXY (and NO_PROXY), and the suites run it in-process against loopback
 * simulators: on a machine with a proxy set, loopback must be listed in NO_PROXY or every test call would go through
 * the proxy (loopback is not exempt by itself, as in curl).
 */
function loopbackNeverProxied(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k])) return {};
  const add = (v: string | undefined): string => [v, '127.0.0.1', 'localhost', '::1'].filter(Boolean).join(',');
  return { NO_PROXY: add(env['NO_PROXY']), no_proxy: add(env['no_proxy'] ?? env['NO_PROXY']) };
}
