/**
 * The kubelet's `status.containerStatuses[].imageID`, which is what the container runtime says it
 * actually runs. Its format depends on the runtime:
 *
 * - dockershim / cri-dockerd: `docker-pullable://nginx@sha256:…` (repo digest, registry often
 *   omitted) or `docker://sha256:…` (image config ID, for images that have no repo digest, e.g.
 *   built or loaded locally).
 * - containerd: `docker.io/library/nginx@sha256:…`, or a bare `sha256:…` config ID when the image
 *   has no repo digest (containerd#8408).
 * - CRI-O: `docker.io/library/nginx@sha256:…`, older versions a bare 64-hex image ID.
 * - "" while the image is still being pulled.
 *
 * A config ID hashes the image configuration, not the manifest: a registry knows nothing by that
 * name, so it must never be registered with Anchore as a registry digest.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';
import { MAX_REFERENCE_LENGTH, checkDigest, parseReferenceBody, repositoryOf, resolveDefaults } from './image-ref.ts';
import type { NormaliseOptions } from './image-ref.ts';

/** What an imageID identifies. */
export type ImageId =
  /** A registry (manifest) digest in a normalised repository, e.g. "docker.io/library/nginx". */
  | { kind: 'repo-digest'; repository: string; digest: string }
  /** A bare image config ID: not a registry digest, must not be registered as one. */
  | { kind: 'config-id'; digest: string };

/**
 * Parses a container status imageID. Understands every runtime's form (see the module comment);
 * an empty imageID fails with "no imageID reported yet". The repository is normalised with `opts`
 * exactly like a spec image, so the two can be compared.
 */
export function parseImageId(imageID: string, opts?: NormaliseOptions): Result<ImageId> {
  if (typeof imageID !== 'string') return fail(`invalid imageID: expected a string, got ${imageID === null ? 'null' : typeof imageID}`);
  if (imageID === '') return fail('no imageID reported yet');
  const bad = (why: string): Result<ImageId> => fail(`invalid imageID ${quote(imageID)}: ${why}`);
  if (imageID.length > MAX_REFERENCE_LENGTH) {
    return bad(`it is ${imageID.length} characters long; the limit is ${MAX_REFERENCE_LENGTH}`);
  }

  let body = imageID;
  const scheme = imageID.indexOf('://');
  if (scheme !== -1) {
    if (!isScheme(imageID.slice(0, scheme))) return bad("it has a malformed '<scheme>://' prefix");
    body = imageID.slice(scheme + 3);
    if (body === '') return bad('nothing follows the scheme');
  }

  if (!body.includes('@')) {
    // Without '@' the only meaningful forms are config IDs.
    if (body.length === 64 && checkDigest(`sha256:${body}`).ok) {
      return ok({ kind: 'config-id', digest: `sha256:${body.toLowerCase()}` });
    }
    const colon = body.indexOf(':');
    const algorithm = colon === -1 ? '' : body.slice(0, colon).toLowerCase();
    if (algorithm === 'sha256' || algorithm === 'sha512') {
      const d = checkDigest(body);
      return d.ok ? ok({ kind: 'config-id', digest: d.value }) : bad(d.reason);
    }
    return bad('it carries no digest; expected "<repository>@sha256:<hex>" or "sha256:<hex>"');
  }

  const defaults = resolveDefaults(opts);
  if (!defaults.ok) return defaults;
  const ref = parseReferenceBody(body, defaults.value);
  if (!ref.ok) return bad(ref.reason);
  if (ref.value.digest === undefined) return bad('it carries no digest'); // unreachable: '@' implies a digest
  // A tag in an imageID (seen from some CRI-O versions) says nothing the digest does not.
  return ok({ kind: 'repo-digest', repository: repositoryOf(ref.value), digest: ref.value.digest });
}

/** RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
function isScheme(s: string): boolean {
  if (s === '' || s.length > 32) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const alpha = (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
    if (i === 0 ? !alpha : !(alpha || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return false;
  }
  return true;
}
