import type { Clock } from '../runtime/clock.ts';

/** A {@link Clock} that moves only when a test says so; timers run, in due order, when {@link advance} passes them. */
export class ManualClock implements Clock {
  #now: number;
  #timers: Array<{ due: number; fn: () => void; id: number }> = [];
  #next = 1;

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.push({ due: this.#now + Math.max(0, ms), fn, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way, at its due time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.due;
      due.fn();
    }
    this.#now = end;
  }
}
