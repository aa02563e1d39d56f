/**
 * Keeps package-lock.json usable by `npm ci` when the registry this machine reaches serves only the Linux builds of
 * platform-specific optional packages (e.g. @swc/core-darwin-arm64 answers 404 here). npm then leaves those optional
 * dependencies out of the lockfile, and `npm ci` refuses the lockfile it just wrote ("Missing: … from lock file").
 *
 * This adds an entry for each missing optional platform package, marked optional with the os/cpu its name states, so
 * `npm ci` skips it on other platforms exactly as it would with a complete lockfile. Run after changing dependencies:
 *   npm install && node scripts/lock-foreign-platforms.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface LockEntry {
  version?: string;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  optionalDependencies?: Record<string, string>;
}

const OS = ['darwin', 'linux', 'win32', 'android', 'freebsd', 'openharmony', 'wasm32'];
const CPU: Record<string, string> = { arm64: 'arm64', x64: 'x64', ia32: 'ia32', arm: 'arm', ppc64: 'ppc64', s390x: 's390x', loong64: 'loong64', riscv64: 'riscv64', wasm32: 'wasm32' };

/** os/cpu/libc from a platform package name such as @swc/core-linux-arm-gnueabihf or @unrs/resolver-binding-win32-x64-msvc. */
export function platformOf(name: string): { os?: string; cpu?: string; libc?: string } | undefined {
  const parts = name.split('/').pop()?.split('-') ?? [];
  const osIndex = parts.findIndex((p) => OS.includes(p));
  if (osIndex < 0) return undefined;
  const os = parts[osIndex] as string;
  const cpu = CPU[parts[osIndex + 1] ?? ''];
  const rest = parts.slice(osIndex + 2).join('-');
  const libc = rest.startsWith('musl') ? 'musl' : rest.startsWith('gnu') ? 'glibc' : undefined;
  if (os === 'wasm32') return { cpu: 'wasm32' };
  return { os, ...(cpu ? { cpu } : {}), ...(libc ? { libc } : {}) };
}

const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages: Record<string, LockEntry> };
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    // npm resolves the dependency next to the package, or hoisted at the top.
    const nested = `${path}/node_modules/${dep}`;
    const hoisted = `node_modules/${dep}`;
    if (lock.packages[nested] || lock.packages[hoisted]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    const e: LockEntry = { version, optional: true };
    if (platform.os) e.os = [platform.os];
    if (platform.cpu) e.cpu = [platform.cpu];
    if (platform.libc) e.libc = [platform.libc];
    lock.packages[hoisted] = e;
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`lock-foreign-platforms: added ${added} optional platform entries to ${file}\n`);
