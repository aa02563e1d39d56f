/**
 * Generates deploy/crds/*.yaml from src/crds/schema.ts, and the Helm chart's copies of generated and shared files
 * (Helm reads nothing outside the chart directory):
 *   deploy/helm/anchore-operator/templates/crds/<name>.yaml   the CRDs, behind `crds.install`, kept on uninstall
 *   deploy/helm/anchore-operator/files/prometheus-rules.yaml  = deploy/monitoring/prometheus-rules.yaml
 *   deploy/helm/anchore-operator/files/grafana-dashboard.json = deploy/monitoring/grafana-dashboard.json
 *
 *   node scripts/gen-crds.ts          write the files
 *   node scripts/gen-crds.ts --check  exit 1 if the committed files differ (drift)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ALL_CRDS } from '../src/crds/schema.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'deploy', 'crds');
const chartDir = join(root, 'deploy', 'helm', 'anchore-operator');
const check = process.argv.includes('--check');

const HEADER = '# Generated from src/crds/schema.ts by `npm run gen:crds`. Do not edit by hand.\n';
const yamlText = (v: unknown): string => stringify(v, { lineWidth: 0, sortMapEntries: false });
const indent = (text: string, n: number): string =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

export function renderCrd(crd: Record<string, unknown>): string {
  return `${HEADER}${yamlText(crd)}`;
}

/** The CRD as a chart template: rendered only with crds.install, chart labels, and kept when the release goes. */
export function renderChartCrd(crd: Record<string, unknown>): string {
  const { apiVersion, kind, metadata, spec, ...rest } = crd as { apiVersion: string; kind: string; metadata: Record<string, unknown>; spec: unknown };
  if (Object.keys(rest).length) throw new Error(`unexpected top-level CRD keys: ${Object.keys(rest).join(', ')}`);
  const { name, annotations, ...otherMeta } = metadata as { name: string; annotations?: Record<string, string> };
  if (Object.keys(otherMeta).length) throw new Error(`unexpected CRD metadata keys: ${Object.keys(otherMeta).join(', ')}`);
  const body = yamlText({ spec });
  // Helm would read "{{" in a description as a template action.
  if (body.includes('{{') || body.includes('}}')) throw new Error(`${name}: the schema contains "{{" or "}}", which Helm would template`);
  return [
    '{{- if .Values.crds.install }}',
    HEADER.trimEnd(),
    yamlText({ apiVersion, kind }).trimEnd(),
    'metadata:',
    `  name: ${name}`,
    '  annotations:',
    ...(annotations ? [indent(yamlText(annotations), 4)] : []),
    '    # Uninstalling the release keeps the CRDs, and with them every binding.',
    '    helm.sh/resource-policy: keep',
    '    {{- with .Values.crds.annotations }}',
    '    {{- toYaml . | nindent 4 }}',
    '    {{- end }}',
    '  labels:',
    '    {{- include "anchore-operator.labels" . | nindent 4 }}',
    body.trimEnd(),
    '{{- end }}',
    '',
  ].join('\n');
}

const outputs: Array<{ file: string; text: string; source: string }> = [];
for (const crd of ALL_CRDS) {
  const name = (crd['metadata'] as { name: string }).name;
  outputs.push({ file: join(outDir, `${name}.yaml`), text: renderCrd(crd), source: 'src/crds/schema.ts' });
  outputs.push({ file: join(chartDir, 'templates', 'crds', `${name}.yaml`), text: renderChartCrd(crd), source: 'src/crds/schema.ts' });
}
for (const f of ['prometheus-rules.yaml', 'grafana-dashboard.json']) {
  const source = join(root, 'deploy', 'monitoring', f);
  outputs.push({ file: join(chartDir, 'files', f), text: readFileSync(source, 'utf8'), source: relative(root, source) });
}

let drift = 0;
for (const { file, text, source } of outputs) {
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      /* missing counts as drift */
    }
    if (current !== text) {
      drift++;
      process.stderr.write(`drift: ${relative(root, file)} differs from ${source} (run npm run gen:crds)\n`);
    }
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    process.stdout.write(`wrote ${relative(root, file)}\n`);
  }
}
if (drift) process.exit(1);
