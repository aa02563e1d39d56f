/**
 * Helpers for work that grows with the cluster (every pod, every image): done in slices with the event loop free
 * between them, so one 10,000-pod pass never holds up watch events or image registration for a whole task.
 */

/** Items handled between two yields. */
export const SLICE = 500;

/** Lets timers and I/O callbacks run before continuing. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * JSON of a plain object whose large members are arrays, serialised in slices: the same bytes as
 * `Buffer.from(JSON.stringify(value))`, without one long stringify of a multi-megabyte document.
 */
export async function jsonInSlices(value: Record<string, unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let parts: string[] = ['{'];
  let first = true;
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue; // as JSON.stringify
    parts.push(`${first ? '' : ','}${JSON.stringify(k)}:`);
    first = false;
    if (!Array.isArray(v)) {
      parts.push(JSON.stringify(v) ?? 'null');
      continue;
    }
    parts.push('[');
    // One native stringify per slice (an array's JSON without its brackets is its items' JSON, comma-separated).
    for (let i = 0; i < v.length; i += SLICE) {
      if (i > 0) {
        chunks.push(Buffer.from(parts.join('')));
        parts = [','];
        await yieldToLoop();
      }
      parts.push(JSON.stringify(v.slice(i, i + SLICE)).slice(1, -1));
    }
    parts.push(']');
  }
  parts.push('}');
  chunks.push(Buffer.from(parts.join('')));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
