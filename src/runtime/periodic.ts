import { type Clock, systemClock } from './clock.ts';

/** A loop started by {@link every}. */
export interface Periodic {
  /** No further run starts (one in progress finishes). */
  stop(): void;
  /** Runs completed so far (each run's promise settled). */
  readonly runs: number;
}

/**
 * Runs `work` now (or after `intervalMs` with `immediate: false`), then again `intervalMs` after each run ends: never
 * two at once, never a burst after a long run. A run that throws is counted like any other; `work` reports its own
 * errors (the loop goes on). Timers come from `clock`, so tests drive the loop on fake time (ManualClock).
 */
export function every(intervalMs: number | (() => number), work: () => Promise<void> | void, o: { clock?: Clock; immediate?: boolean } = {}): Periodic {
  const clock = o.clock ?? systemClock;
  const interval = typeof intervalMs === 'function' ? intervalMs : () => intervalMs;
  let stopped = false;
  let timer: unknown;
  const state = { runs: 0 };
  const schedule = (): void => {
    if (stopped) return;
    timer = clock.setTimeout(run, interval());
  };
  function run(): void {
    timer = undefined;
    if (stopped) return;
    let p: Promise<void>;
    try {
      p = Promise.resolve(work());
    } catch (err) {
      p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    void p
      .catch(() => undefined)
      .finally(() => {
        state.runs++;
        schedule();
      });
  }
  if (o.immediate === false) schedule();
  else run();
  return {
    stop(): void {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
    get runs(): number {
      return state.runs;
    },
  };
}
