import type { WorkloadRef } from '../kube/cluster.port.ts';
import type { CatalogEntry } from './image-catalog.ts';
import type { ImageUse, RunningImages } from './running-images.ts';

/**
 * What bindings, vulnerability counts, findings metrics and admission may ask of the image registration loop: read
 * the shared image model, and request work of it. The image controller implements it; nothing else depends on the
 * controller itself (`npm run lint` holds that rule).
 */
export interface ImageRegistry {
  /** The images that run now. */
  readonly running: Pick<RunningImages, 'get' | 'keys' | 'values' | 'size'>;
  /** Anchore's state of an image key, if known. */
  catalog(key: string): CatalogEntry | undefined;
  /** Whether the image was found deleted from Anchore and is being registered again. */
  reRegistering(key: string): boolean;
  /** Top-level workloads with the image keys their running pods use. */
  workloadImages(): Map<string, { workload: WorkloadRef; keys: Set<string> }>;
  /** Subscribes to images reaching a final analysis state. */
  onAnalysisFinal(listener: (key: string, entry: CatalogEntry) => void): void;
  /** Subscribes to images found deleted from Anchore. */
  onVanished(listener: (key: string) => void): void;

  /** Declares the images a source needs registered; undefined withdraws the source. */
  demand(source: string, uses: readonly ImageUse[] | undefined): void;
  /** Anchore answered 404 for the image: read it again, register it again if gone. True when the image is followed. */
  recheck(key: string): boolean;
  /** Resolves once Anchore's image list for the account is known. */
  ensureAccount(account: string): Promise<void>;
}
