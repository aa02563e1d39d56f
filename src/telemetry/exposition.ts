import { Registry, type RegistryContentType } from 'prom-client';
import { Turn } from '../runtime/turn.ts';

/** What prom-client's text formatter reads of a collected metric. */
interface Collected {
  name: string;
  help: string;
  type: string;
  values: unknown[];
}

/** A registered metric as prom-client's Registry uses it (its typings leave get() out). */
interface Collectable {
  get(): Promise<Collected>;
  getForPromString?(): Promise<Collected>;
}

/** The Registry's own formatter of one metric (HELP, TYPE and one line per series, joined by newlines). */
type FormatOne = (metric: Collectable) => Promise<string>;

/** Series of one metric handed to prom-client's formatter at a time (a few ms at most, whatever the node flags). */
export const FORMAT_SLICE = 100;

/**
 * The Prometheus text exposition of a registry: the same text as `registry.metrics()`, made in turns of a few ms with
 * the event loop free between them (between metrics, and between slices of FORMAT_SLICE series of one metric). `registry.metrics()` collects every metric and
 * formats every series in one task: with tens of thousands of findings series (50,000 pods) that is over half a
 * second that admission and watch events wait behind. Every series is still formatted by prom-client itself (a metric
 * with many series is handed to it a slice of its values at a time), so the text cannot drift from prom-client's.
 * OpenMetrics registries, and a prom-client without the formatter this relies on, fall back to `registry.metrics()`.
 */
export async function metricsText(registry: Registry<RegistryContentType>): Promise<string> {
  const formatter = (registry as unknown as { getMetricsAsString?: FormatOne }).getMetricsAsString;
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE || typeof formatter !== 'function') return registry.metrics();
  const format: FormatOne = (m) => formatter.call(registry, m);
  const parts: string[] = [];
  const turn = new Turn();
  for (const metric of registry.getMetricsAsArray() as unknown as Collectable[]) {
    if (turn.due()) await turn.next();
    // Histograms have their own collection for the text format; they hold few series (buckets per label set).
    if (typeof metric.getForPromString === 'function') {
      parts.push(await format(metric));
      continue;
    }
    const data = await metric.get();
    if (data.values.length <= FORMAT_SLICE) {
      parts.push(await format({ get: () => Promise.resolve(data) }));
      continue;
    }
    const slices: string[] = [];
    for (let i = 0; i < data.values.length; i += FORMAT_SLICE) {
      if (turn.due()) await turn.next();
      const text = await format({ get: () => Promise.resolve({ ...data, values: data.values.slice(i, i + FORMAT_SLICE) }) });
      // Every slice's text begins with the metric's HELP and TYPE lines (escaped, so without a newline): kept once.
      slices.push(i === 0 ? text : text.slice(text.indexOf('\n', text.indexOf('\n') + 1) + 1));
    }
    parts.push(slices.join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}
