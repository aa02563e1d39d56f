import { type Store, type StoreHandlers, changed } from '../kube/cluster.port.ts';

/** An in-memory Store for unit tests of controllers (integration tests use the real reflectors). */
export class MemoryStore<T extends { key: string; resourceVersion: string }> implements Store<T> {
  readonly resource: string;
  readonly #items = new Map<string, T>();
  readonly #handlers: StoreHandlers<T>[] = [];
  hasSynced = true;

  constructor(resource: string, items: T[] = []) {
    this.resource = resource;
    for (const i of items) this.#items.set(i.key, i);
  }

  get(key: string): T | undefined {
    return this.#items.get(key);
  }
  list(): IterableIterator<T> {
    return this.#items.values();
  }
  get size(): number {
    return this.#items.size;
  }
  on(h: StoreHandlers<T>): void {
    this.#handlers.push(h);
  }
  put(obj: T): void {
    const prev = this.#items.get(obj.key);
    this.#items.set(obj.key, obj);
    for (const h of this.#handlers) {
      if (!prev) h.add?.(obj);
      else if (changed(prev, obj)) h.update?.(prev, obj);
    }
  }
  remove(key: string): void {
    const prev = this.#items.get(key);
    if (!prev) return;
    this.#items.delete(key);
    for (const h of this.#handlers) h.delete?.(prev);
  }
}
