// A Secret volume as the kubelet writes it, for tests of credentials that are rotated under a running operator.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `<key>` → `..data/<key>`, `..data` → a timestamped directory; an update writes a new directory and swaps the
 * `..data` symlink atomically (rename), as the kubelet does when the Secret changes.
 */
export class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'secret-vol-'));
  #n = 0;
  constructor(key: string, value: string) {
    this.#write(key, value);
    symlinkSync(join('..data', key), join(this.dir, key));
  }
  update(key: string, value: string): void {
    this.#write(key, value);
  }
  path(key: string): string {
    return join(this.dir, key);
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
  #write(key: string, value: string): void {
    const ts = `..2026_12_07_${++this.#n}`;
    mkdirSync(join(this.dir, ts));
    writeFileSync(join(this.dir, ts, key), `${value}\n`);
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
  }
}
