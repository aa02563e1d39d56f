import { yieldToLoop } from './cooperative.ts';

/** How long work that grows with the cluster may hold the event loop before it lets timers and I/O run (ms). */
export const TURN_MS = 5;

/**
 * Slices of work sized by time: `if (turn.due()) await turn.next()` between items yields to the event loop once `ms`
 * have passed since the last yield (and, when `maxItems` is given, after that many items at the latest). One item's
 * cost varies tenfold with the node flags and the garbage collector (the image runs node with a 1 MiB young
 * generation), so a fixed count alone is either too coarse there or yields needlessly often elsewhere.
 */
export class Turn {
  readonly #ms: number;
  readonly #maxItems: number;
  #since = performance.now();
  #items = 0;

  constructor(ms: number = TURN_MS, maxItems: number = Infinity) {
    this.#ms = ms;
    this.#maxItems = maxItems;
  }

  /** Counts one item; true when this turn has run for `ms` or `maxItems` items. */
  due(): boolean {
    return ++this.#items >= this.#maxItems || performance.now() - this.#since >= this.#ms;
  }

  /** Lets timers and I/O callbacks run, then starts a new turn. */
  async next(): Promise<void> {
    await yieldToLoop();
    this.#since = performance.now();
    this.#items = 0;
  }
}
