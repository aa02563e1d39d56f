// A/B of the operator's memory on pods that already run (a `npm run bench -- --keep` run leaves them): starts one
// operator per variant at the same time against one simulator, waits until each has registered every image and gone
// quiet, then samples RSS of both over the same window. Same pods, same moment, so the noise of separate runs cancels.
//
//   node bench/ab-memory.ts --run <bench run id> [--seconds 60] --variant 'name=ENV=V,ENV2=V2;--node-flag' ...
//
// A variant is `name=` followed by comma-separated environment assignments, then optionally `;` and extra node flags
// (space-separated). The image's ENTRYPOINT flags are always used. Prints one JSON document.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator } from '../test/anchore-sim/index.ts';
import { acquireTestCluster } from '../test/support/cluster.ts';
import { waitFor } from './support/kube.ts';
import { OperatorProcess, ROOT } from './support/operator.ts';
import { median } from './support/stats.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const run = opt('--run');
if (!run) throw new Error('--run <bench run id> is required (the namespaces bench-<run>-* must exist)');
const seconds = Number(opt('--seconds') ?? 60);
const variants = args.flatMap((a, i) => (a === '--variant' ? [args[i + 1]!] : [])).map((v) => {
  const [head, flags] = v.split(';');
  const [name, ...envParts] = head!.split('=');
  const envText = envParts.join('=');
  const env: Record<string, string> = {};
  for (const kv of envText ? envText.split(',') : []) {
    const [k, ...rest] = kv.split('=');
    env[k!] = rest.join('=');
  }
  return { name: name!, env, flags: flags ? flags.split(' ').filter(Boolean) : [] };
});
if (variants.length < 2) throw new Error('give at least two --variant');

const MiB = 1024 * 1024;
execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
const cluster = await acquireTestCluster();
const sim = await startSimulator({ config: { analysis: { queued_ms: 100, analyzing_ms: 500 } }, retention: { requestBodyMaxBytes: MiB, inventoryReportBytes: 16 * MiB } });
const logDir = join(cluster.stateDir || '/tmp', 'bench', `${run}-ab`);
mkdirSync(logDir, { recursive: true });
const ops = await Promise.all(variants.map((v) =>
  OperatorProcess.start({
    ANCHORE_URL: sim.url, ANCHORE_USERNAME: 'admin', ANCHORE_PASSWORD: 'foobar',
    CLUSTER_NAME: `ab-${v.name}`, KUBECONFIG: cluster.kubeconfig, NAMESPACES_INCLUDE: `bench-${run}-*`,
    LEADER_ELECTION: 'false', EVENT_NAMESPACE: 'default', LOG_LEVEL: 'warn', ...v.env,
  }, join(logDir, `${v.name}.log`), v.flags)));
try {
  for (const op of ops) await waitFor('operator ready', async () => (await op.ready()) || op.exited, 120_000, 200);
  // Every variant has seen every image (the first registers them; the others find them in Anchore) and is idle.
  for (const op of ops) {
    let last = -1;
    await waitFor('queues idle', async () => {
      const images = await op.metricSum('anchore_operator_images');
      const idle = images > 0 && images === last && (await op.metricSum('anchore_operator_workqueue_depth', 'state="ready"')) === 0;
      last = images;
      return idle;
    }, 600_000, 3000);
  }
  await new Promise((r) => setTimeout(r, 10_000));
  const rss = ops.map(() => [] as number[]);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    ops.forEach((op, i) => rss[i]!.push(op.stats().rssBytes));
    await new Promise((r) => setTimeout(r, 1000));
  }
  const out = await Promise.all(variants.map(async (v, i) => ({
    variant: v.name, env: v.env, flags: v.flags,
    rssMiB: { median: Math.round(median(rss[i]!) / MiB), max: Math.round(Math.max(...rss[i]!) / MiB) },
    split: (() => { const s = ops[i]!.rssSplit(); return { anonMiB: Math.round(s.anonBytes / MiB), fileMiB: Math.round(s.fileBytes / MiB) }; })(),
    heapUsedMiB: Math.round((await ops[i]!.metricSum('anchore_operator_nodejs_heap_size_used_bytes')) / MiB),
    heapTotalMiB: Math.round((await ops[i]!.metricSum('anchore_operator_nodejs_heap_size_total_bytes')) / MiB),
  })));
  process.stdout.write(`${JSON.stringify({ run, seconds, variants: out }, null, 2)}\n`);
} finally {
  await Promise.all(ops.map((op) => op.stop()));
  await sim.stop();
}
process.exit(0);
