import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../telemetry/logger.ts';
import { MemoryStore } from '../testing/memory-store.ts';
import { aNamespace } from '../testing/factories.ts';
import type { NamespaceInfo } from './cluster.port.ts';
import type { KubeClient, ListPage, WatchHandle } from './client.ts';
import { NamespaceScope } from './namespace-scope.ts';
import { Reflector } from './reflector.ts';
import { KubeError } from './errors.ts';

/*
 * The pod cache keeps only the namespaces in scope: the reflector's namespace admission driven by NamespaceScope,
 * against a scripted apiserver whose lists can be held open to play the races a real one allows.
 */

interface Obj {
  key: string;
  resourceVersion: string;
  app?: string;
}
type Raw = { metadata: { namespace: string; name: string; resourceVersion: string; labels?: { app: string } } };
const raw = (ns: string, name: string, rv: string, app?: string): Raw => ({ metadata: { namespace: ns, name, resourceVersion: rv, ...(app ? { labels: { app } } : {}) } });

interface ListCall {
  path: string;
  fieldSelector: string | undefined;
}

/**
 * Lists answer from `objects` (the namespace's only, for a namespaced path) in pages of `limit`; `hold` keeps the next
 * list requests (or only those asking for a later page) open until `release`.
 */
class FakeApi {
  objects: Raw[] = [];
  rv = '10';
  lists: ListCall[] = [];
  /** Lists wait on this while set; `release()` answers them with what `objects` holds then. */
  held: Array<() => void> | undefined;
  #holdPagesOnly = false;
  failNext = 0;
  watches: Array<{ rv: string; onEvent: (t: string, o: unknown) => void; onDone: (e: unknown) => void }> = [];
  #holdPath: string | undefined;
  hold(opts: { laterPagesOnly?: boolean; path?: string } = {}): void {
    this.held = [];
    this.#holdPagesOnly = opts.laterPagesOnly === true;
    this.#holdPath = opts.path;
  }
  release(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const w of waiting) w();
  }
  asClient(): KubeClient {
    return {
      listPage: async <T>(path: string, q: { fieldSelector?: string; limit: number; continueToken?: string }): Promise<ListPage<T>> => {
        if (!q.continueToken) this.lists.push({ path, fieldSelector: q.fieldSelector });
        // Read now, answered when released: the answer is as old as the request.
        const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
        const all = m ? this.objects.filter((o) => o.metadata.namespace === decodeURIComponent(m[1]!)) : this.objects;
        const from = Number(q.continueToken ?? 0);
        const next = from + q.limit < all.length ? String(from + q.limit) : undefined;
        const page = { items: all.slice(from, from + q.limit) as T[], resourceVersion: this.rv, continueToken: next };
        if (this.held && (!this.#holdPagesOnly || q.continueToken) && (this.#holdPath === undefined || this.#holdPath === path)) await new Promise<void>((r) => this.held!.push(r));
        if (this.failNext > 0) {
          this.failNext--;
          throw new KubeError(503, 'ServiceUnavailable', 'GET /api/v1/namespaces: 503 ServiceUnavailable: connection reset');
        }
        return page;
      },
      watch: async (_p: string, q: Record<string, unknown>, onEvent: (t: string, o: unknown) => void, onDone: (e: unknown) => void): Promise<WatchHandle> => {
        this.watches.push({ rv: String(q['resourceVersion']), onEvent, onDone });
        return { abort: () => undefined };
      },
    } as unknown as KubeClient;
  }
  get watch(): { onEvent: (t: string, o: unknown) => void; onDone: (e: unknown) => void } {
    return this.watches[this.watches.length - 1]!;
  }
}

/** Lets every answer already released be handled (promise continuations run before the next macrotask). */
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(fn: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Namespaces whose label scope=in are in scope (a label selector: the general case, not a list of names). */
const inScope = (ns: NamespaceInfo): boolean => ns.labels['scope'] === 'in';

function setup(api: FakeApi, namespaces: NamespaceInfo[], pageSize = 500) {
  const nsStore = new MemoryStore<NamespaceInfo>('namespaces', namespaces);
  const scope = new NamespaceScope(nsStore, inScope);
  const events: string[] = [];
  const projected: string[] = [];
  const r = new Reflector<Obj>({
    resource: 'pods',
    client: api.asClient(),
    path: '/api/v1/pods',
    fieldSelector: 'status.phase=Running',
    pageSize,
    admitsNamespace: (ns) => scope.has(ns),
    project: (o) => {
      const m = (o as Raw).metadata;
      projected.push(`${m.namespace}/${m.name}`);
      return { key: `${m.namespace}/${m.name}`, resourceVersion: m.resourceVersion, ...(m.labels ? { app: m.labels.app } : {}) };
    },
    backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
    log: createLogger({ level: 'silent', pretty: false }),
  });
  scope.follow(r);
  r.on({ add: (o) => events.push(`add ${o.key}`), delete: (o) => events.push(`delete ${o.key}`), update: (_a, b) => events.push(`update ${b.key}`) });
  const keys = (): string[] => [...r.list()].map((o) => o.key).sort();
  return { r, nsStore, scope, events, projected, keys };
}

const IN = { scope: 'in' };

describe('NamespaceScope', () => {
  it('when namespaces are created, relabelled and deleted, then it holds exactly those in scope and tells its caches of each change once', () => {
    const nsStore = new MemoryStore<NamespaceInfo>('namespaces', [aNamespace('a', IN), aNamespace('b')]);
    const scope = new NamespaceScope(nsStore, inScope);
    const told: string[] = [];
    scope.follow({ addNamespace: (n) => told.push(`+${n}`), dropNamespace: (n) => told.push(`-${n}`) });
    expect([scope.has('a'), scope.has('b')]).toEqual([true, false]);
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    nsStore.put({ ...aNamespace('b', { ...IN, other: 'x' }), resourceVersion: '3' }); // still in scope: nothing to do
    nsStore.put({ ...aNamespace('a'), resourceVersion: '4' });
    nsStore.put(aNamespace('c', IN));
    nsStore.remove('c');
    nsStore.remove('a'); // was out already
    expect(told).toEqual(['+b', '-a', '+c', '-c']);
    expect(scope.size).toBe(1);
  });
});

describe('Reflector kept to the namespaces in scope', () => {
  it('when the cluster has pods in and out of scope, then only those in scope are listed into the cache, and the others are not even projected', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', 'p1', '5'), raw('a', 'p2', '6'), raw('b', 'q1', '7'), raw('unknown', 'u1', '8')];
    const { r, keys, projected } = setup(api, [aNamespace('a', IN), aNamespace('b')]);
    await r.start();
    expect(keys()).toEqual(['a/p1', 'a/p2']);
    expect(projected.sort()).toEqual(['a/p1', 'a/p2']);
    // The watch too: events of other namespaces are skipped before the projection.
    await until(() => api.watches.length === 1);
    api.watch.onEvent('ADDED', raw('b', 'q2', '11'));
    api.watch.onEvent('ADDED', raw('a', 'p3', '12'));
    expect(keys()).toEqual(['a/p1', 'a/p2', 'a/p3']);
    expect(projected).not.toContain('b/q2');
    r.stop();
  });

  it('when a namespace is relabelled into the scope, then its Running pods are listed (namespaced, same field selector) and added; relabelled out, they are deleted', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', 'p1', '5'), raw('b', 'q1', '7'), raw('b', 'q2', '8'), raw('c', 'x1', '9')];
    const { r, nsStore, events, keys } = setup(api, [aNamespace('a', IN), aNamespace('b'), aNamespace('c')]);
    await r.start();
    await until(() => api.watches.length === 1);
    events.length = 0;
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    await until(() => r.size === 3);
    expect(api.lists.slice(1)).toEqual([{ path: '/api/v1/namespaces/b/pods', fieldSelector: 'status.phase=Running' }]);
    expect(events.sort()).toEqual(['add b/q1', 'add b/q2']);
    events.length = 0;
    nsStore.put({ ...aNamespace('b'), resourceVersion: '3' });
    expect(keys()).toEqual(['a/p1']);
    expect(events.sort()).toEqual(['delete b/q1', 'delete b/q2']);
    // Deleted namespace: same as leaving.
    nsStore.remove('a');
    expect(r.size).toBe(0);
    // No full relist was needed for any of it.
    expect(api.lists.filter((l) => l.path === '/api/v1/pods')).toHaveLength(1);
    r.stop();
  });

  it('when a pod event arrives before its namespace is known, then the pod is not lost: the namespace, once it arrives in scope, is listed', async () => {
    const api = new FakeApi();
    const { r, nsStore, keys } = setup(api, []);
    await r.start();
    await until(() => api.watches.length === 1);
    api.objects = [raw('new', 'p1', '11')];
    api.watch.onEvent('ADDED', raw('new', 'p1', '11'));
    expect(r.size).toBe(0);
    nsStore.put(aNamespace('new', IN));
    await until(() => r.size === 1);
    expect(keys()).toEqual(['new/p1']);
    r.stop();
  });

  it('when the watch deletes or changes a pod while its namespace is being listed, then the older list neither brings it back nor overwrites it', async () => {
    const api = new FakeApi();
    api.objects = [raw('b', 'gone', '7'), raw('b', 'changed', '8', 'old'), raw('b', 'plain', '9')];
    const { r, nsStore, events, keys } = setup(api, [aNamespace('b')]);
    await r.start();
    await until(() => api.watches.length === 1);
    api.hold();
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    await until(() => api.held?.length === 1);
    // The list has read (rv 9); the watch, ahead of it, reports newer changes before the list's answer is handled.
    api.watch.onEvent('MODIFIED', raw('b', 'changed', '12', 'new'));
    api.watch.onEvent('DELETED', raw('b', 'gone', '13'));
    api.release();
    await until(() => r.size === 2);
    await until(() => events.includes('add b/plain'));
    expect(keys()).toEqual(['b/changed', 'b/plain']);
    expect(r.get('b/changed')?.app).toBe('new');
    expect(events).not.toContain('add b/gone');
    r.stop();
  });

  it('when a namespace leaves the scope while it is being listed, then nothing of it is added', async () => {
    const api = new FakeApi();
    api.objects = [raw('b', 'q1', '7')];
    const { r, nsStore } = setup(api, [aNamespace('b')]);
    await r.start();
    await until(() => api.watches.length === 1);
    api.hold();
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    await until(() => api.held?.length === 1);
    nsStore.put({ ...aNamespace('b'), resourceVersion: '3' });
    api.release();
    await settled();
    expect(r.size).toBe(0);
    r.stop();
  });

  it('when the namespace list fails, then it is retried until it succeeds', async () => {
    const api = new FakeApi();
    api.objects = [raw('b', 'q1', '7')];
    const { r, nsStore } = setup(api, [aNamespace('b')]);
    await r.start();
    await until(() => api.watches.length === 1);
    api.failNext = 2;
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    await until(() => r.size === 1);
    expect(api.lists.filter((l) => l.path === '/api/v1/namespaces/b/pods')).toHaveLength(3);
    r.stop();
  });

  it('when namespaces enter and leave the scope during a full relist (410 Gone), after their pages were read, then the cache ends with exactly the pods in scope', async () => {
    const api = new FakeApi();
    api.objects = [raw('b', 'q1', '7'), raw('c', 'x1', '8'), raw('a', 'p1', '5')];
    const { r, nsStore, keys } = setup(api, [aNamespace('a', IN), aNamespace('b'), aNamespace('c', IN)], 1);
    await r.start();
    await until(() => api.watches.length === 1);
    expect(keys()).toEqual(['a/p1', 'c/x1']);
    api.hold({ laterPagesOnly: true });
    api.rv = '20';
    api.watch.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    // Pages of one pod: the relist reads b's page (b out of scope: skipped), then c's (kept), and waits for a's.
    await until(() => api.held?.length === 1);
    api.release();
    api.hold({ laterPagesOnly: true });
    await until(() => api.held?.length === 1);
    // Meanwhile b enters and c leaves.
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    nsStore.put({ ...aNamespace('c'), resourceVersion: '3' });
    api.release();
    await until(() => api.watches.length === 2);
    await until(() => keys().join() === 'a/p1,b/q1');
    // b was listed after the relist (deferred), not while it ran.
    expect(api.lists.map((l) => l.path)).toEqual(['/api/v1/pods', '/api/v1/pods', '/api/v1/namespaces/b/pods']);
    await settled();
    expect(keys()).toEqual(['a/p1', 'b/q1']);
    r.stop();
  });

  it('when a full relist (410 Gone) overtakes a namespace list still under way, then the older namespace list is dropped (it would bring back a deleted pod)', async () => {
    const api = new FakeApi();
    api.objects = [raw('b', 'q1', '7'), raw('b', 'q2', '8')];
    const { r, nsStore, keys } = setup(api, [aNamespace('b')]);
    await r.start();
    await until(() => api.watches.length === 1);
    api.hold({ path: '/api/v1/namespaces/b/pods' });
    nsStore.put({ ...aNamespace('b', IN), resourceVersion: '2' });
    await until(() => api.held?.length === 1);
    // q1 is deleted; the watch, too far behind, is answered 410 and the reflector lists everything again.
    api.objects = [raw('b', 'q2', '8')];
    api.rv = '20';
    api.watch.onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    await until(() => api.watches.length === 2);
    expect(keys()).toEqual(['b/q2']);
    api.release();
    await settled();
    expect(keys()).toEqual(['b/q2']);
    r.stop();
  });

  it('when namespaces enter the scope before the pod cache started, then the first list covers them and no namespace list is made', async () => {
    const api = new FakeApi();
    api.objects = [raw('a', 'p1', '5'), raw('b', 'q1', '7')];
    const { r, nsStore, keys } = setup(api, []);
    nsStore.put(aNamespace('a', IN));
    nsStore.put(aNamespace('b', IN));
    await r.start();
    expect(keys()).toEqual(['a/p1', 'b/q1']);
    await until(() => api.watches.length === 1);
    expect(api.lists.map((l) => l.path)).toEqual(['/api/v1/pods']);
    r.stop();
  });
});
