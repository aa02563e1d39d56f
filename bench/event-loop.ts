/**
 * Event-loop tasks at N pods (`npm run bench -- --event-loop [--pods N]`): no cluster. Work in progress.
 */
export async function runEventLoopBench(argv: string[]): Promise<void> {
  process.stderr.write(`[bench] event-loop: not yet implemented (${argv.join(' ')})\n`);
  await Promise.resolve();
}
