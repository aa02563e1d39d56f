import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';

/**
 * Notices when Anchore stops answering (an `unavailable` error from any call) and when it answers again — from the
 * next successful call, or from a cheap probe (GET /version) every `probeMs` while it is down, so recovery is seen
 * within seconds even when every key sits in a long backoff. On recovery `onRecovered` runs (the operator retries
 * every backed-off key at once): after an outage, work does not wait out backoffs that grew during it.
 */
export class AnchoreReachability {
  readonly #o: { probe: () => Promise<unknown>; probeMs: number; onRecovered: (downForMs: number) => void; log: Logger; clock: Clock };
  #downSince: number | undefined;
  #timer: unknown;
  #stopped = false;

  constructor(o: { probe: () => Promise<unknown>; probeMs: number; onRecovered: (downForMs: number) => void; log: Logger; clock: Clock }) {
    this.#o = o;
  }

  get down(): boolean {
    return this.#downSince !== undefined;
  }

  /** Feed every Anchore request outcome here (the HTTP client's onRequest hook). */
  observe(e: { status: number; errorKind?: string }): void {
    if (e.errorKind === 'unavailable') {
      if (this.#downSince === undefined && !this.#stopped) {
        this.#downSince = this.#o.clock.now();
        this.#o.log.warn({ probeEveryMs: this.#o.probeMs }, 'Anchore is unavailable; work backs off and is retried as soon as it answers again');
        this.#schedule();
      }
    } else if (e.status >= 200 && e.status < 300) {
      this.#recovered();
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped || this.#downSince === undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#o.probe().then(
        () => this.#recovered(),
        (err: unknown) => {
          this.#o.log.debug({ err: errorMessage(err) }, 'Anchore probe failed');
          this.#schedule();
        },
      );
    }, this.#o.probeMs);
  }

  #recovered(): void {
    if (this.#downSince === undefined) return;
    const downFor = this.#o.clock.now() - this.#downSince;
    this.#downSince = undefined;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.log.info({ downForMs: downFor }, 'Anchore answers again');
    this.#o.onRecovered(downFor);
  }
}
