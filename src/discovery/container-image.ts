/**
 * Decides what a running container's image is, in the shape Anchore needs: a full tag (mandatory,
 * even when registering by digest) plus, when known, the registry digest to pin.
 *
 * Follows Anchore's k8s-inventory agent so that images registered by this operator line up with
 * the inventory it reports: the tag comes from the pod spec's image with any `@digest` removed,
 * the digest from the kubelet's imageID, and untagged images follow `missing-tag-policy`.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';
import { parseImageReference, repositoryOf, resolveDefaults } from './image-ref.ts';
import type { ImageReference, NormaliseOptions } from './image-ref.ts';
import { parseImageId } from './image-id.ts';

/**
 * What to do with an image referenced only by digest (k8s-inventory's `missing-tag-policy`, which
 * exists because Anchore Enterprise requires a tag):
 * - `digest`: use the digest's hex as the tag ("docker.io/library/nginx:<64 hex>"), the default there;
 * - `insert`: use the tag "UNKNOWN";
 * - `drop`: do not register the image at all.
 */
export type MissingTagPolicy = 'digest' | 'insert' | 'drop';

/** Normalisation options plus the missing-tag policy. */
export interface ImagePolicy extends NormaliseOptions {
  missingTagPolicy: MissingTagPolicy;
}

/** A container's image as Anchore wants it. */
export interface ResolvedImage {
  /** Full tag Anchore requires, e.g. "docker.io/library/nginx:1.25". Never blank. */
  tag: string;
  /** Registry digest ("sha256:…") when known: from the imageID's repo digest, else from the spec image. */
  digest?: string;
  /** "<registry>/<repository>@<digest>" to add the image by digest (POST /v2/images digest source). */
  pullString?: string;
  /** "registry/repository" of the spec image, e.g. "docker.io/library/nginx". */
  repository: string;
  /**
   * The spec image itself names the digest (`repo@sha256:…`, `repo:tag@sha256:…`). Its tag is then only what the
   * spec's author wrote beside the digest: never evidence of where that tag points in the registry.
   */
  pinned?: true;
}

/** Tag used by the `insert` policy; the same placeholder k8s-inventory uses. */
const MISSING_TAG_PLACEHOLDER = 'UNKNOWN';
/** Docker's implicit tag for a reference with neither tag nor digest. */
const IMPLICIT_TAG = 'latest';

const POLICIES: ReadonlySet<string> = new Set<MissingTagPolicy>(['digest', 'insert', 'drop']);

/**
 * Resolves a container's image from its spec image (`spec.containers[].image`), the kubelet's
 * `imageID` and, as a fallback when the spec image is missing or invalid, the status image
 * (`status.containerStatuses[].image`).
 *
 * - Tag: from the spec image. No tag and no digest means Docker's implicit ":latest"; a digest but
 *   no tag applies `policy.missingTagPolicy` (`null` is returned for `drop`).
 * - Digest: the imageID's repo digest is preferred, since it is what actually runs (a tag may have
 *   moved since the pod started). A config-ID imageID is not a registry digest and is ignored; the
 *   spec image's digest, if any, is used instead. Under the `digest` policy the tag is the hex of
 *   this chosen digest, as in k8s-inventory.
 * - Mirrors: when the imageID's repository differs from the spec's (the node pulled through a
 *   mirror or a rewritten registry), the tag keeps the spec repository, because that is the name
 *   the workload owner uses and that Anchore policies and subscriptions are keyed on, while
 *   `pullString` uses the imageID repository, because that is where the runtime demonstrably found
 *   this exact digest (the spec registry may be unreachable or hold a different digest by now).
 * - An unparsable imageID is ignored rather than failing: the spec image alone still identifies
 *   the image, and the imageID is often empty while the image is being pulled.
 */
export function resolveContainerImage(input: { specImage: string; imageID?: string; statusImage?: string }, policy: ImagePolicy): Result<ResolvedImage | null> {
  if (input === null || typeof input !== 'object') return fail('cannot resolve container image: no container given');
  if (policy === null || typeof policy !== 'object' || !POLICIES.has(policy.missingTagPolicy)) {
    const given = policy === null || typeof policy !== 'object' ? String(policy) : String(policy.missingTagPolicy);
    return fail(`invalid missing-tag policy ${quote(given)}: expected "digest", "insert" or "drop"`);
  }

  // Checked once up front so a bad override is reported as such, not once per image source.
  const defaults = resolveDefaults(policy);
  if (!defaults.ok) return defaults;

  const chosen = chooseReference(input, policy);
  if (!chosen.ok) return chosen;
  const ref = chosen.value;
  const repository = repositoryOf(ref);

  let digest: string | undefined;
  let pullRepository = repository;
  if (typeof input.imageID === 'string' && input.imageID !== '') {
    const id = parseImageId(input.imageID, policy);
    if (id.ok && id.value.kind === 'repo-digest') {
      digest = id.value.digest;
      pullRepository = id.value.repository;
    }
  }
  if (digest === undefined && ref.digest !== undefined) digest = ref.digest;

  let tag: string;
  if (ref.tag !== undefined) {
    tag = ref.tag;
  } else if (ref.digest === undefined) {
    tag = IMPLICIT_TAG;
  } else {
    switch (policy.missingTagPolicy) {
      case 'drop':
        return ok(null);
      case 'insert':
        tag = MISSING_TAG_PLACEHOLDER;
        break;
      case 'digest':
        // ref.digest is set on this branch, so digest is too.
        tag = hexOf(digest ?? ref.digest);
        break;
    }
  }

  const resolved: ResolvedImage = { tag: `${repository}:${tag}`, repository };
  if (ref.digest !== undefined) resolved.pinned = true;
  if (digest !== undefined) {
    resolved.digest = digest;
    resolved.pullString = `${pullRepository}@${digest}`;
  }
  return ok(resolved);
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

function chooseReference(input: { specImage: string; statusImage?: string }, opts: NormaliseOptions): Result<ImageReference> {
  const spec = nonEmpty(input.specImage) ? parseImageReference(input.specImage, opts) : undefined;
  if (spec?.ok) return spec;
  const status = nonEmpty(input.statusImage) ? parseImageReference(input.statusImage, opts) : undefined;
  if (status?.ok) return status;
  if (spec === undefined && status === undefined) return fail('container has no image in its spec or status');
  if (spec === undefined) return fail(`container has no spec image, and its status image is unusable: ${status?.reason ?? ''}`);
  if (status === undefined) return spec;
  return fail(`${spec.reason}; the status image is unusable too: ${status.reason}`);
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}
