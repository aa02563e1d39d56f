import type { NamespaceInfo, Store } from './cluster.port.ts';

/** What a namespaced cache must do when a namespace enters or leaves the scope (`Reflector` does both). */
interface NamespacedCache {
  addNamespace(namespace: string): void;
  dropNamespace(namespace: string): void;
}

/**
 * The namespaces in the operator's scope, as the namespace store sees them, and the caches that keep only their
 * objects (the pod cache: memory follows the scope, not the cluster). Follows the namespace store: a namespace that
 * enters the scope (created, relabelled) is listed into each cache; one that leaves it (relabelled, deleted) is dropped
 * from them. A namespace the store does not hold (yet) is out of scope, as for the controllers
 * (`Scope.includesNamespace`): a pod event that arrives before its namespace's is not kept, and not lost either, since
 * the namespace's list on arrival brings the pod.
 *
 * `has` is what a cache asks of each object: a set lookup, the filter itself runs only on namespace events.
 */
export class NamespaceScope {
  readonly #in = new Set<string>();
  readonly #caches: NamespacedCache[] = [];
  readonly #inScope: (ns: NamespaceInfo) => boolean;

  constructor(namespaces: Store<NamespaceInfo>, inScope: (ns: NamespaceInfo) => boolean) {
    this.#inScope = inScope;
    for (const ns of namespaces.list()) if (inScope(ns)) this.#in.add(ns.name);
    namespaces.on({
      add: (ns) => this.#set(ns.name, this.#inScope(ns)),
      update: (_a, ns) => this.#set(ns.name, this.#inScope(ns)),
      delete: (ns) => this.#set(ns.name, false),
    });
  }

  has(namespace: string): boolean {
    return this.#in.has(namespace);
  }

  get size(): number {
    return this.#in.size;
  }

  /** Tells this cache from now on when a namespace enters or leaves the scope. */
  follow(cache: NamespacedCache): void {
    this.#caches.push(cache);
  }

  #set(name: string, inside: boolean): void {
    if (inside === this.#in.has(name)) return;
    if (inside) {
      this.#in.add(name);
      for (const c of this.#caches) c.addNamespace(name);
    } else {
      this.#in.delete(name);
      for (const c of this.#caches) c.dropNamespace(name);
    }
  }
}
