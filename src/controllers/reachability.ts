import { credentialsRefused } from '../anchore/errors.ts';
import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { METRIC, type OperatorMetrics } from '../telemetry/metrics.ts';

interface ReachabilityOptions {
  probe: () => Promise<unknown>;
  probeMs: number;
  onRecovered: (downForMs: number) => void;
  /** Anchore accepted the credentials again after rejecting them (work that waited can go now). */
  onCredentialsAccepted?: () => void;
  /** One cheap authenticated call, made every probeMs while the credentials are rejected (is the new Secret good?). */
  credentialProbe?: () => Promise<unknown>;
  log: Logger;
  clock: Clock;
  /** Registers anchore_operator_anchore_credentials_rejected (1 while the credentials are rejected). */
  metrics?: Pick<OperatorMetrics, 'stateGauge'>;
}

/**
 * Notices when Anchore stops answering (an `unavailable` error from any call) and when it answers again — from the
 * next successful call, or from a cheap probe (GET /version) every `probeMs` while it is down, so recovery is seen
 * within seconds even when every key sits in a long backoff. On recovery `onRecovered` runs (the operator retries
 * every backed-off key at once): after an outage, work does not wait out backoffs that grew during it.
 */
export class AnchoreReachability {
  readonly #o: ReachabilityOptions;
  #downSince: number | undefined;
  #timer: unknown;
  #stopped = false;

  constructor(o: ReachabilityOptions) {
    this.#o = o;
    o.metrics?.stateGauge(METRIC.credentialsRejected, 'Whether Anchore rejects the operator credentials (401) and has accepted none since: 1 until the Secret is fixed', [], () => [
      [{}, this.#rejected === undefined ? 0 : 1],
    ]);
  }

  get down(): boolean {
    return this.#downSince !== undefined;
  }

  /** Anchore answered 401 to the operator's credentials, and has accepted none since (a rotated or revoked Secret). */
  get credentialsRejected(): string | undefined {
    return this.#rejected;
  }

  #rejected: string | undefined;

  /** Feed every Anchore request outcome here (the HTTP client's onRequest hook). */
  observe(e: { operation?: string; status: number; errorKind?: string; authenticated?: boolean }): void {
    if (credentialsRefused({ kind: e.errorKind, status: e.status, operation: e.operation })) {
      if (this.#rejected === undefined) {
        this.#rejected = new Date(this.#o.clock.now()).toISOString();
        // Said once, here, rather than by every controller whose call failed (they log it at debug meanwhile).
        this.#probeCredentials();
        this.#o.log.error(
          { operation: e.operation },
          'Anchore rejects the operator credentials (401): update the Secret behind ANCHORE_PASSWORD_FILE / ANCHORE_API_KEY_FILE (it is read again when it changes, no restart needed); registration, inventory and evaluations wait meanwhile',
        );
      }
      return;
    }
    if (e.authenticated && e.status >= 200 && e.status < 300 && this.#rejected !== undefined) {
      this.#o.log.info({ rejectedSince: this.#rejected }, 'Anchore accepts the operator credentials again');
      this.#rejected = undefined;
      this.#o.onCredentialsAccepted?.();
    }
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

  #credTimer: unknown;

  #probeCredentials(): void {
    const probe = this.#o.credentialProbe;
    if (!probe || this.#stopped || this.#credTimer !== undefined) return;
    this.#credTimer = this.#o.clock.setTimeout(() => {
      this.#credTimer = undefined;
      if (this.#rejected === undefined) return;
      // observe() sees the outcome (the probe is an ordinary call); probe again while still rejected.
      const again = (): void => {
        if (this.#rejected !== undefined) this.#probeCredentials();
      };
      probe().then(again, again);
    }, this.#o.probeMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#credTimer !== undefined) this.#o.clock.clearTimeout(this.#credTimer);
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
