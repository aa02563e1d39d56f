import type { Logger } from '../telemetry/logger.ts';

/** A work queue as the set sees it: drained on stop, and told to retry backed-off work when a dependency is back. */
export interface SetQueue {
  readonly name: string;
  readonly depth: number;
  readonly delayedCount: number;
  shutdown(deadlineMs: number): Promise<{ drained: boolean }>;
  retryFailedNow(): number;
}

/** One controller (or periodic task) the set runs. */
export interface SetMember {
  readonly name: string;
  /** Off by configuration: never started (its queue, if any, is still shut down on stop). */
  readonly enabled?: boolean;
  /** Resolves before the member may start (e.g. which Events already stand); the member starts only if the set still works then. */
  readonly after?: () => Promise<unknown>;
  start(): void;
  /** Stops its timers (queues are drained by the set). */
  stop?(): void;
  readonly queue?: SetQueue;
}

/**
 * The controllers of one operator process, started and stopped together: at once without leader election, or each
 * this replica becomes the leader. Stopping is final (a replica that lost the lease exits, as client-go's do) and drains
 * every work queue up to a deadline.
 */
export class ControllerSet {
  readonly #members: readonly SetMember[];
  readonly #log: Logger;
  #working = false;
  #stopped = false;

  constructor(members: readonly SetMember[], log: Logger) {
    this.#members = members;
    this.#log = log;
  }

  /** True while the controllers run. */
  get working(): boolean {
    return this.#working;
  }

  /** Every member's work queue (for metrics and retry-now). */
  get queues(): SetQueue[] {
    return this.#members.flatMap((m) => (m.queue ? [m.queue] : []));
  }

  /** Starts the enabled members in order; a no-op while working or once stopped. */
  start(message = 'controllers started'): void {
    if (this.#working || this.#stopped) return;
    this.#working = true;
    for (const m of this.#members) {
      if (m.enabled === false) continue;
      if (!m.after) {
        m.start();
        continue;
      }
      void m.after().finally(() => {
        if (this.#working) m.start();
      });
    }
    this.#log.info(message);
  }

  /**
   * Stops every member for good and waits up to `drainMs` for the work in flight (0: cut at once). Resolves with each
   * queue's drained flag. A second call only waits again.
   */
  async stop(drainMs: number): Promise<Record<string, boolean>> {
    this.#working = false;
    this.#stopped = true;
    for (const m of this.#members) m.stop?.();
    const queues = this.queues;
    const results = await Promise.all(queues.map((q) => q.shutdown(drainMs)));
    const drained = Object.fromEntries(queues.map((q, i) => [q.name, results[i]?.drained ?? true]));
    this.#log.info({ drained }, 'work queues stopped');
    return drained;
  }

  /**
   * Leader gating: the elector's callbacks. Leading starts the set; losing the lease stops it at once (no drain: past
   * the renew deadline another replica may already work, and two must never) and then calls `onLost` (the process
   * exits, as client-go's controllers do). `lease` names the lease in the log line.
   */
  leadership(onLost: () => void, lease: Record<string, unknown> = {}): { onStartedLeading(): void; onStoppedLeading(): void } {
    return {
      onStartedLeading: () => this.start('leading: controllers started'),
      onStoppedLeading: () => {
        this.#log.error(lease, 'leader election lost; stopping work and exiting');
        void this.stop(0).finally(onLost);
      },
    };
  }

  /** A dependency came back: every queue retries its backed-off keys now. Returns how many moved. */
  retryFailedNow(): number {
    return this.queues.reduce((n, q) => n + q.retryFailedNow(), 0);
  }
}
