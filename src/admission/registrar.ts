/**
 * Registration of images admission met and Anchore does not hold, bounded so that anyone who may merely *attempt* a
 * Pod create cannot fill Anchore's analysis queue, make its analyzer connect to hosts of their choosing, or grow the
 * operator's memory. The decision is synchronous (the answer can say whether the image was sent); the add itself runs
 * after the answer, off the latency path.
 */
import type { AnchoreApi } from '../anchore/anchore.port.ts';
import type { ResolvedImage } from '../discovery/container-image.ts';
import { compileGlobs } from '../discovery/glob.ts';
import { addImageRequest, registrationTag } from '../model/add-image.ts';
import type { ImageCatalog } from '../model/image-catalog.ts';
import { imageKey } from '../model/image-keys.ts';
import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../runtime/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OperatorMetrics } from '../telemetry/metrics.ts';

export type RegistrationOutcome = 'registered' | 'failed' | 'request_denied' | 'repository_not_allowed' | 'over_review_limit' | 'over_namespace_limit' | 'over_global_limit';
export const REGISTRATION_OUTCOMES: readonly RegistrationOutcome[] = [
  'registered',
  'failed',
  'request_denied',
  'repository_not_allowed',
  'over_review_limit',
  'over_namespace_limit',
  'over_global_limit',
];

interface RegistrarOptions {
  anchore: Pick<AnchoreApi, 'addImage'>;
  catalog: Pick<ImageCatalog, 'lookup' | 'learn' | 'pairs'>;
  limits: { perReview: number; perNamespacePerMinute: number; perMinute: number };
  /** Globs on "registry/repository"; empty: any registry named by host name (never an IP address or localhost). */
  repositories: readonly string[];
  clusterName: string;
  clock: Clock;
  log: Logger;
  metrics: OperatorMetrics;
}

/** An image admission could not judge because Anchore does not hold it (or has not analysed it). */
export interface Unknown {
  account: string;
  image: ResolvedImage;
}

/** The same image is not offered to Anchore again within this window (per process). */
const REGISTER_AGAIN_MS = 10 * 60_000;
const MINUTE = 60_000;

export class AdmissionRegistrar {
  readonly #o: RegistrarOptions;
  readonly #allowedRepo: (repository: string) => boolean;
  /** Image key → when it was last sent. Bounded by the per-minute limit × the window. */
  readonly #recent = new Map<string, number>();
  /** Namespace → sends in the current minute; the whole map is dropped each minute, so it holds one minute's namespaces. */
  #perNamespace = new Map<string, number>();
  #global = 0;
  #windowStart = 0;

  constructor(o: RegistrarOptions) {
    this.#o = o;
    const g = compileGlobs(o.repositories);
    if (!g.ok) throw new Error(`admission register repositories: ${g.reason}`);
    const globs = g.value;
    this.#allowedRepo = o.repositories.length ? (r) => globs(r) : (r) => !internalHost(r);
  }

  /**
   * Decides which of a review's unknown images are sent to Anchore and sends them after the current turn. `denied`:
   * the answer rejects the request for a reason registering cannot cure (an image fails policy), so nothing is sent.
   * Returns the images that will be sent, for the answer to say so.
   */
  offer(namespace: string, unknown: readonly Unknown[], denied: boolean): Set<string> {
    const sent = new Set<string>();
    if (unknown.length === 0) return sent;
    const count = (outcome: RegistrationOutcome, n = 1): void => this.#o.metrics.admissionRegistrations.inc({ outcome }, n);
    if (denied) {
      count('request_denied', unknown.length);
      return sent;
    }
    this.#roll();
    const now = this.#o.clock.now();
    const go: Unknown[] = [];
    for (const u of unknown) {
      const key = imageKey(u.account, u.image);
      if (sent.has(key)) continue;
      const last = this.#recent.get(key);
      if ((last !== undefined && now - last < REGISTER_AGAIN_MS) || this.#o.catalog.lookup(key)) {
        sent.add(key);
        continue;
      }
      if (!this.#allowedRepo(u.image.repository)) count('repository_not_allowed');
      else if (go.length >= this.#o.limits.perReview) count('over_review_limit');
      else if ((this.#perNamespace.get(namespace) ?? 0) >= this.#o.limits.perNamespacePerMinute) count('over_namespace_limit');
      else if (this.#global >= this.#o.limits.perMinute) count('over_global_limit');
      else {
        this.#perNamespace.set(namespace, (this.#perNamespace.get(namespace) ?? 0) + 1);
        this.#global++;
        this.#remember(key, now);
        sent.add(key);
        go.push(u);
      }
    }
    if (go.length) setImmediate(() => go.forEach((u) => void this.#register(u)));
    return sent;
  }

  #roll(): void {
    const now = this.#o.clock.now();
    if (now - this.#windowStart < MINUTE) return;
    this.#windowStart = now;
    this.#perNamespace = new Map();
    this.#global = 0;
  }

  #remember(key: string, now: number): void {
    if (this.#recent.size >= Math.max(1000, this.#o.limits.perMinute * 10)) {
      for (const [k, t] of this.#recent) if (now - t >= REGISTER_AGAIN_MS) this.#recent.delete(k);
    }
    this.#recent.set(key, now);
  }

  async #register(u: Unknown): Promise<void> {
    try {
      const tag = registrationTag(u.image, (t, d) => this.#o.catalog.pairs(u.account, t, d));
      const res = await this.#o.anchore.addImage(u.account, addImageRequest(u.image, this.#o.clusterName, { requestor: 'admission' }, tag));
      this.#o.catalog.learn(u.account, res);
      this.#o.metrics.admissionRegistrations.inc({ outcome: 'registered' });
      this.#o.log.info({ account: u.account, image: u.image.tag, digest: res.image_digest }, 'admission registered an image Anchore did not hold');
    } catch (err) {
      this.#recent.delete(imageKey(u.account, u.image));
      this.#o.metrics.admissionRegistrations.inc({ outcome: 'failed' });
      this.#o.log.warn({ account: u.account, image: u.image.tag, err: errorMessage(err) }, 'admission could not register an image with Anchore');
    }
  }
}

/** A registry named by an IP address or localhost: inside the network, never a registry a tenant may send Anchore to. */
export function internalHost(repository: string): boolean {
  const slash = repository.indexOf('/');
  const hostPort = slash < 0 ? repository : repository.slice(0, slash);
  const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.replace(/:\d+$/, '');
  if (host === 'localhost' || host.endsWith('.localhost') || host.startsWith('[')) return true;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || /^\d+$/.test(host) || /^0x[0-9a-f]+$/i.test(host);
}
