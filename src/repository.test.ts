import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = new URL('..', import.meta.url).pathname;

describe('repository', () => {
  it('when a tracked file names a path, then it is inside the repository (no workplace paths such as ../shared or /work)', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && f !== 'package-lock.json' && f !== 'src/repository.test.ts');
    const outside = /\.\.\/shared\/|(^|[\s"'`(])\/work\//;
    const offenders: string[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(join(root, f), 'utf8');
      } catch {
        continue;
      }
      text.split('\n').forEach((line, i) => {
        if (outside.test(line)) offenders.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
