import { describe, expect, it } from '@jest/globals';
import { changed } from './cluster.port.ts';
import { SLICE } from '../runtime/cooperative.ts';
import { createLogger } from '../telemetry/logger.ts';
import type { KubeClient, ListPage, WatchHandle } from './client.ts';
import { Reflector } from './reflector.ts';

// A full list is applied in slices (src/kube/reflector.ts #apply): these hold it to what one synchronous pass did.

interface Obj {
  key: string;
  resourceVersion: string;
  app?: string;
}
type Raw = { metadata: { namespace: string; name: string; resourceVersion: string; labels?: { app: string } } };
const raw = (ns: string, name: string, rv: string, app?: string): Raw => ({ metadata: { namespace: ns, name, resourceVersion: rv, ...(app ? { labels: { app } } : {}) } });
const project = (o: unknown): Obj => {
  const m = (o as Raw).metadata;
  return { key: `${m.namespace}/${m.name}`, resourceVersion: m.resourceVersion, ...(m.labels ? { app: m.labels.app } : {}) };
};

/** A scripted apiserver: lists answer `objects` in pages, watches are handed to the test. */
class FakeApi {
  objects: Raw[] = [];
  rv = '10';
  watches: Array<{ onEvent: (t: string, o: unknown) => void }> = [];
  asClient(): KubeClient {
    return {
      listPage: async <T>(path: string, o: { limit?: number; continueToken?: string }): Promise<ListPage<T>> => {
        const ns = /\/namespaces\/([^/]+)\//.exec(path)?.[1];
        const items = this.objects.filter((x) => ns === undefined || x.metadata.namespace === ns);
        const from = Number(o.continueToken ?? 0);
        const to = from + (o.limit ?? 500);
        return { items: items.slice(from, to) as T[], resourceVersion: this.rv, continueToken: to < items.length ? String(to) : undefined };
      },
      watch: async (_p: string, _q: Record<string, unknown>, onEvent: (t: string, o: unknown) => void): Promise<WatchHandle> => {
        this.watches.push({ onEvent });
        return { abort: () => undefined };
      },
    } as unknown as KubeClient;
  }
}

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The list applied as the reflector did before it was sliced: store replaced at once, then adds/updates, then deletes. */
function onePass(store: Map<string, Obj>, fresh: Obj[]): { events: string[]; store: Obj[] } {
  const next = new Map(fresh.map((o) => [o.key, o]));
  const events: string[] = [];
  for (const [k, obj] of next) {
    const prev = store.get(k);
    if (!prev) events.push(`add ${k}`);
    else if (changed(prev, obj)) events.push(`update ${k}`);
  }
  for (const k of store.keys()) if (!next.has(k)) events.push(`delete ${k}`);
  return { events, store: [...next.values()] };
}

function setup(api: FakeApi, admitsNamespace?: (ns: string) => boolean) {
  const r = new Reflector<Obj>({
    resource: 'pods',
    client: api.asClient(),
    path: '/api/v1/pods',
    project,
    ...(admitsNamespace ? { admitsNamespace } : {}),
    backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
    log: createLogger({ level: 'silent', pretty: false }),
  });
  const events: string[] = [];
  /** What the handlers were told, applied in order: must always end equal to the store. */
  const seen = new Map<string, Obj>();
  r.on({
    add: (o) => (events.push(`add ${o.key}`), seen.set(o.key, o)),
    update: (_a, o) => (events.push(`update ${o.key}`), seen.set(o.key, o)),
    delete: (o) => (events.push(`delete ${o.key}`), seen.delete(o.key)),
  });
  return { r, events, seen };
}

const N = SLICE * 3 + 7;

describe('Reflector list applied in slices', () => {
  it('when a list of several slices is applied and then a relist changes it, then the events and the store equal one synchronous pass', async () => {
    const api = new FakeApi();
    api.objects = Array.from({ length: N }, (_, i) => raw(`ns-${i % 5}`, `p-${i}`, String(i), 'web'));
    const { r, events } = setup(api);
    const first = onePass(new Map(), api.objects.map(project));
    await r.start();
    expect(events).toEqual(first.events);
    expect([...r.list()]).toEqual(first.store);
    await until(() => api.watches.length === 1);

    // Relist after 410: a third deleted, a third updated, one in ten changed only in resourceVersion, new ones added, reordered.
    const before = new Map([...r.list()].map((o) => [o.key, o]));
    const next: Raw[] = [];
    for (let i = N + SLICE; i >= 0; i--) {
      if (i < N && i % 3 === 0) continue;
      if (i >= N) next.push(raw('ns-new', `p-${i}`, `n${i}`, 'web'));
      else if (i % 3 === 1) next.push(raw(`ns-${i % 5}`, `p-${i}`, `u${i}`, 'db'));
      else next.push(raw(`ns-${i % 5}`, `p-${i}`, i % 10 === 2 ? `rv${i}` : String(i), 'web'));
    }
    const second = onePass(before, next.map(project));
    api.objects = next;
    api.rv = '20';
    events.length = 0;
    api.watches[0]!.onEvent('ERROR', { code: 410, reason: 'Expired' });
    await until(() => api.watches.length === 2);
    expect(events).toEqual(second.events);
    expect([...r.list()]).toEqual(second.store);
    expect(r.size).toBe(second.store.length);
    r.stop();
  });

  it('when a large list is applied, then other callbacks run between its slices', async () => {
    const api = new FakeApi();
    api.objects = Array.from({ length: SLICE * 4 }, (_, i) => raw('ns', `p-${i}`, String(i)));
    const { r } = setup(api);
    let ticks = 0;
    const ticksAtAdd: number[] = [];
    r.on({ add: () => ticksAtAdd.push(ticks) });
    const timer = setInterval(() => ticks++, 0);
    await r.start();
    clearInterval(timer);
    // The pages arrive without a turn of the loop (the fake answers at once): only the slices let the timer in.
    expect(ticksAtAdd[ticksAtAdd.length - 1]! - ticksAtAdd[0]!).toBeGreaterThan(0);
    r.stop();
  });

  it('when the reflector is stopped part-way through a list and started again, then the handlers end up told exactly what the store holds', async () => {
    const api = new FakeApi();
    api.objects = Array.from({ length: N }, (_, i) => raw('ns', `p-${i}`, String(i)));
    const { r, events, seen } = setup(api);
    let stopped = false;
    r.on({
      add: () => {
        if (!stopped && events.length === SLICE + 1) {
          stopped = true;
          r.stop();
        }
      },
    });
    void r.start();
    await until(() => stopped);
    await new Promise((res) => setImmediate(res));
    // The rest of that list was not told, and not put in the store either.
    expect(r.size).toBe(seen.size);
    expect(r.size).toBeLessThan(N);
    api.objects = api.objects.filter((_, i) => i !== 3);
    await r.start();
    expect([...seen.keys()].sort()).toEqual([...r.list()].map((o) => o.key).sort());
    expect(r.size).toBe(N - 1);
    // Each object was added once, and the one gone before the second list was deleted once.
    expect(events.filter((e) => e.startsWith('add ')).length).toBe(N);
    expect(events.filter((e) => e.startsWith('delete '))).toEqual(['delete ns/p-3']);
    expect([...r.list()].map((o) => o.key)).toEqual(api.objects.map((o) => `ns/${o.metadata.name}`));
    r.stop();
  });

  it('when a namespace leaves the scope while a list is applied, then none of its objects stay in the store or in what the handlers were told', async () => {
    const api = new FakeApi();
    api.objects = Array.from({ length: N }, (_, i) => raw(i % 2 ? 'a' : 'b', `p-${i}`, String(i)));
    const admitted = new Set(['a', 'b']);
    const { r, seen } = setup(api, (ns) => admitted.has(ns));
    let dropped = false;
    r.on({
      add: () => {
        if (!dropped && seen.size === SLICE + 1) {
          dropped = true;
          admitted.delete('b');
          r.dropNamespace('b');
        }
      },
    });
    await r.start();
    expect(dropped).toBe(true);
    const keys = [...r.list()].map((o) => o.key);
    expect(keys.some((k) => k.startsWith('b/'))).toBe(false);
    expect(keys).toEqual(api.objects.filter((o) => o.metadata.namespace === 'a').map((o) => `a/${o.metadata.name}`));
    expect([...seen.keys()].sort()).toEqual([...keys].sort());
    r.stop();
  });
});
