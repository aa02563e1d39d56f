import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../telemetry/logger.ts';
import type { KubeClient, ListPage, WatchHandle } from './client.ts';
import { KubeError } from './errors.ts';
import { Reflector } from './reflector.ts';

interface Obj {
  key: string;
  resourceVersion: string;
  app?: string;
}
const raw = (name: string, rv: string, app?: string) => ({ metadata: { namespace: 'ns', name, resourceVersion: rv, ...(app ? { labels: { app } } : {}) } });

/** A scripted apiserver: list answers from `objects`, watches are handed to the test. */
class FakeApi {
  objects: Array<ReturnType<typeof raw>> = [];
  rv = '10';
  lists: string[] = [];
  watches: Array<{ rv: string; onEvent: (t: string, o: unknown) => void; onDone: (e: unknown) => void }> = [];
  asClient(): KubeClient {
    return {
      listPage: async <T>(): Promise<ListPage<T>> => {
        this.lists.push(this.rv);
        return { items: this.objects as T[], resourceVersion: this.rv, continueToken: undefined };
      },
      watch: async (_p: string, q: Record<string, unknown>, onEvent: (t: string, o: unknown) => void, onDone: (e: unknown) => void): Promise<WatchHandle> => {
        this.watches.push({ rv: String(q['resourceVersion']), onEvent, onDone });
        return { abort: () => undefined };
      },
    } as unknown as KubeClient;
  }
}

async function until(fn: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function setup(api: FakeApi) {
  const restarts: string[] = [];
  const events: string[] = [];
  const r = new Reflector<Obj>({
    resource: 'pods',
    client: api.asClient(),
    path: '/api/v1/pods',
    project: (o) => {
      const m = (o as { metadata: { namespace: string; name: string; resourceVersion: string; labels?: { app: string } } }).metadata;
      return { key: `${m.namespace}/${m.name}`, resourceVersion: m.resourceVersion, ...(m.labels ? { app: m.labels.app } : {}) };
    },
    backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
    log: createLogger({ level: 'silent', pretty: false }),
    metrics: { watchRestart: (_r, reason) => restarts.push(reason), event: () => undefined, listed: () => undefined },
  });
  r.on({ add: (o) => events.push(`add ${o.key}`), delete: (o) => events.push(`delete ${o.key}`), update: (_a, b) => events.push(`update ${b.key}`) });
  return { r, restarts, events };
}

describe('Reflector updates', () => {
  it('when a watched object changes only its resourceVersion, then no update is delivered; when its projection changes, one is', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', '5', 'web')];
    const { r, events } = setup(api);
    await r.start();
    await until(() => api.watches.length === 1);
    api.watches[0]!.onEvent('MODIFIED', raw('a', '11', 'web'));
    api.watches[0]!.onEvent('MODIFIED', raw('a', '12', 'db'));
    await until(() => r.get('ns/a')?.resourceVersion === '12');
    expect(events).toEqual(['add ns/a', 'update ns/a']);
    // The cache still holds the newest object either way.
    expect(r.get('ns/a')).toEqual({ key: 'ns/a', resourceVersion: '12', app: 'db' });
    r.stop();
  });
});

describe('Reflector recovery', () => {
  it('when the watch gets a 410 Gone ERROR event, then it relists and what changed during the gap surfaces as adds and deletes', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', '5'), raw('b', '6')];
    const { r, restarts, events } = setup(api);
    await r.start();
    await until(() => api.watches.length === 1);
    expect(api.watches[0]!.rv).toBe('10');
    // During a gap: a deleted, c created; the watch then says its resourceVersion is too old.
    api.objects = [raw('b', '6'), raw('c', '15')];
    api.rv = '20';
    api.watches[0]!.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await until(() => api.watches.length === 2);
    expect(restarts).toContain('gone');
    expect(api.lists).toEqual(['10', '20']);
    expect(api.watches[1]!.rv).toBe('20');
    expect(events.slice(2)).toEqual(['add ns/c', 'delete ns/a']);
    expect([...r.list()].map((o) => o.key).sort()).toEqual(['ns/b', 'ns/c']);
    r.stop();
  });

  it('when the watch request itself is answered 410, then it relists too', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', '5')];
    const { r, restarts } = setup(api);
    await r.start();
    await until(() => api.watches.length === 1);
    api.objects = [];
    api.rv = '30';
    api.watches[0]!.onDone(new KubeError(410, 'Expired', 'watch /api/v1/pods: HTTP 410: too old resource version'));
    await until(() => api.watches.length === 2);
    expect(restarts).toContain('gone');
    expect(r.size).toBe(0);
    r.stop();
  });

  it('when the watch fails with a connection error, then it resumes from the last resourceVersion without relisting', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', '5')];
    const { r, restarts } = setup(api);
    await r.start();
    await until(() => api.watches.length === 1);
    api.watches[0]!.onEvent('ADDED', raw('b', '11'));
    api.watches[0]!.onDone(new Error('ECONNRESET'));
    await until(() => api.watches.length === 2);
    expect(restarts).toContain('error');
    expect(api.lists).toHaveLength(1);
    expect(api.watches[1]!.rv).toBe('11');
    r.stop();
  });
});
