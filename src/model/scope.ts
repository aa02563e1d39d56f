import { type ResolvedImage, type ImagePolicy, resolveContainerImage } from '../discovery/container-image.ts';
import { type GlobList, globsOf } from '../discovery/glob.ts';
import { compileImageExclusions } from '../discovery/image-filter.ts';
import { compileNamespaceFilter, type NamespaceFilterConfig } from '../discovery/namespace-filter.ts';
import type { NamespaceInfo, PodContainer } from '../kube/cluster.port.ts';

interface ScopeConfig {
  namespaces: NamespaceFilterConfig;
  /** Image exclusion globs, or their compiled form (config's). */
  imageExclude: GlobList;
  imagePolicy: ImagePolicy;
  defaultAccount: string;
  routes: Array<{ account: string; namespaces: GlobList }>;
  accountLabel?: string;
}

type ImageResolution =
  | { kind: 'image'; image: ResolvedImage }
  | { kind: 'excluded' }
  | { kind: 'dropped' }
  /** The kubelet has not reported what the container runs yet (imageID empty: still pulling) and the spec names no digest. */
  | { kind: 'pulling' }
  | { kind: 'invalid'; reason: string };

/**
 * What the operator looks at and where it goes: namespace filter, image exclusions, the namespace → Anchore account
 * routing (static routes first, in order; then a namespace label; then the default account), and image resolution.
 * Everything is compiled once (globs config compiled already are taken as they are); invalid input fails at construction
 * with the reason.
 */
export class Scope {
  readonly defaultAccount: string;
  readonly #nsFilter: (name: string, labels: Readonly<Record<string, string>> | undefined) => boolean;
  readonly #excluded: (r: { tag: string; repository: string; digest?: string }) => boolean;
  readonly #routes: Array<{ account: string; match: (ns: string) => boolean }>;
  readonly #accountLabel: string | undefined;
  readonly #policy: ImagePolicy;

  constructor(cfg: ScopeConfig) {
    const f = compileNamespaceFilter(cfg.namespaces);
    if (!f.ok) throw new Error(f.reason);
    const x = compileImageExclusions(cfg.imageExclude);
    if (!x.ok) throw new Error(x.reason);
    this.#nsFilter = f.value;
    this.#excluded = x.value;
    this.#routes = cfg.routes.map((r) => {
      const g = globsOf(r.namespaces);
      if (!g.ok) throw new Error(`account route ${r.account}: ${g.reason}`);
      return { account: r.account, match: g.value.matches };
    });
    this.#accountLabel = cfg.accountLabel;
    this.defaultAccount = cfg.defaultAccount;
    this.#policy = cfg.imagePolicy;
  }

  /** Whether pods of this namespace are in scope. A namespace not (yet) in the cache is out of scope. */
  includesNamespace(ns: NamespaceInfo | undefined): boolean {
    return ns !== undefined && this.#nsFilter(ns.name, ns.labels);
  }

  accountFor(ns: NamespaceInfo | undefined, name: string): string {
    return this.accountRoute(ns, name).account;
  }

  /** The account a namespace routes to and why: an ACCOUNT_ROUTES entry, its ACCOUNT_NAMESPACE_LABEL label, or the default. */
  accountRoute(ns: NamespaceInfo | undefined, name: string): { account: string; via: 'route' | 'label' | 'default'; label?: string } {
    for (const r of this.#routes) if (r.match(name)) return { account: r.account, via: 'route' };
    if (this.#accountLabel) {
      const v = ns?.labels[this.#accountLabel];
      if (v) return { account: v, via: 'label', label: this.#accountLabel };
    }
    return { account: this.defaultAccount, via: 'default' };
  }

  /** Every account the operator may write to that is known without looking at namespaces. */
  get staticAccounts(): string[] {
    return [...new Set([this.defaultAccount, ...this.#routes.map((r) => r.account)])];
  }

  /**
   * The same (spec image, imageID, status image) triple always resolves the same way, and a cluster runs far fewer
   * distinct triples than containers: resolutions are memoised (bounded; cleared when full). Bindings re-select
   * every pod of their scope on each reconcile, so this keeps image-reference parsing off the hot path.
   */
  readonly #resolved = new Map<string, ImageResolution>();

  /**
   * The image as registration and evaluation see it: like `resolveImage`, but a container whose imageID is still
   * empty (the image is being pulled) and whose spec names no digest is 'pulling'. Registering it by tag now would
   * add it a second time, by digest, once the kubelet reports what it actually runs.
   */
  resolveRunning(c: PodContainer): ImageResolution {
    const r = this.resolveImage(c);
    if (r.kind === 'image' && !c.imageID && !r.image.digest) return { kind: 'pulling' };
    return r;
  }

  static readonly RESOLVE_MEMO_MAX = 50_000;

  resolveImage(c: PodContainer): ImageResolution {
    const memoKey = `${c.image}\u0000${c.imageID ?? ''}\u0000${c.statusImage ?? ''}`;
    const hit = this.#resolved.get(memoKey);
    if (hit) return hit;
    const r = this.#resolveImage(c);
    if (this.#resolved.size >= Scope.RESOLVE_MEMO_MAX) this.#resolved.clear();
    this.#resolved.set(memoKey, r);
    return r;
  }

  #resolveImage(c: PodContainer): ImageResolution {
    const input: { specImage: string; imageID?: string; statusImage?: string } = { specImage: c.image };
    if (c.imageID) input.imageID = c.imageID;
    if (c.statusImage) input.statusImage = c.statusImage;
    const r = resolveContainerImage(input, this.#policy);
    if (!r.ok) return { kind: 'invalid', reason: r.reason };
    if (r.value === null) return { kind: 'dropped' };
    if (this.#excluded(r.value)) return { kind: 'excluded' };
    return { kind: 'image', image: r.value };
  }
}
