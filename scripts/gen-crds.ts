/**
 * Generates deploy/crds/*.yaml from src/crds/schema.ts.
 *   node scripts/gen-crds.ts          write the files
 *   node scripts/gen-crds.ts --check  exit 1 if the committed files differ (drift)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ALL_CRDS } from '../src/crds/schema.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'deploy', 'crds');
const check = process.argv.includes('--check');

export function renderCrd(crd: Record<string, unknown>): string {
  return `# Generated from src/crds/schema.ts by \`npm run gen:crds\`. Do not edit by hand.\n${stringify(crd, { lineWidth: 0, sortMapEntries: false })}`;
}

let drift = 0;
mkdirSync(outDir, { recursive: true });
for (const crd of ALL_CRDS) {
  const name = (crd['metadata'] as { name: string }).name;
  const file = join(outDir, `${name}.yaml`);
  const text = renderCrd(crd);
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      /* missing counts as drift */
    }
    if (current !== text) {
      drift++;
      process.stderr.write(`drift: ${file} differs from src/crds/schema.ts (run npm run gen:crds)\n`);
    }
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${file}\n`);
  }
}
if (drift) process.exit(1);
