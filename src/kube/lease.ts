import { LeaseConflictError, type LeaseLock, type LeaseRecord, type ObservedLease } from '../runtime/leader.ts';
import type { KubeClient } from './client.ts';
import { isKubeError } from './errors.ts';

interface LeaseObject {
  metadata?: { resourceVersion?: string };
  spec?: Partial<LeaseRecord>;
}

/** A coordination.k8s.io/v1 Lease as a leader-election lock (get, create, update: the only verbs it needs). */
export class KubeLeaseLock implements LeaseLock {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
  }

  describe(): string {
    return `lease ${this.#namespace}/${this.#name}`;
  }

  #path(named: boolean): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases`;
    return named ? `${base}/${encodeURIComponent(this.#name)}` : base;
  }

  async get(timeoutMs: number): Promise<ObservedLease | undefined> {
    try {
      const obj = await this.#client.request<LeaseObject>('GET', this.#path(true), { timeoutMs });
      const s = obj.spec ?? {};
      return {
        version: obj.metadata?.resourceVersion ?? '',
        record: {
          holderIdentity: s.holderIdentity ?? '',
          leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
          ...(s.acquireTime ? { acquireTime: s.acquireTime } : {}),
          ...(s.renewTime ? { renewTime: s.renewTime } : {}),
          leaseTransitions: s.leaseTransitions ?? 0,
        },
      };
    } catch (err) {
      if (isKubeError(err, 'not-found')) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, timeoutMs: number): Promise<void> {
    try {
      await this.#client.request('POST', this.#path(false), {
        timeoutMs,
        body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#name, namespace: this.#namespace }, spec: record },
      });
    } catch (err) {
      if (isKubeError(err, 'conflict')) throw new LeaseConflictError(`${this.describe()} was created by another replica`);
      throw err;
    }
  }

  async update(record: LeaseRecord, version: string, timeoutMs: number): Promise<void> {
    try {
      await this.#client.request('PUT', this.#path(true), {
        timeoutMs,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.#name, namespace: this.#namespace, resourceVersion: version },
          spec: record,
        },
      });
    } catch (err) {
      if (isKubeError(err, 'conflict')) throw new LeaseConflictError(`${this.describe()} changed since it was read`);
      throw err;
    }
  }
}
