import { yieldToLoop } from './cooperative.ts';

/** How long work that grows with the cluster may hold the event loop before it lets timers and I/O run (ms). */
export const TURN_MS = 5;

/**
 * Slices of work sized by time rather than by count: `if (turn.due()) await turn.next()` between items yields to the
 * event loop once `ms` have passed since the last yield. One item's cost varies tenfold with the node flags and the
 * garbage collector (the image runs node with a 1 MiB young generation), so a fixed count is either too coarse there
 * or yields needlessly often elsewhere.
 */
export class Turn {
  readonly #ms: number;
  #since = performance.now();

  constructor(ms: number = TURN_MS) {
    this.#ms = ms;
  }

  /** Whether this turn has run for `ms` or longer. */
  due(): boolean {
    return performance.now() - this.#since >= this.#ms;
  }

  /** Lets timers and I/O callbacks run, then starts a new turn. */
  async next(): Promise<void> {
    await yieldToLoop();
    this.#since = performance.now();
  }
}
