// Image reference parsing, normalised the way Anchore stores tags: a missing registry becomes docker.io and a
// missing tag becomes latest (`alpine` -> `docker.io/alpine:latest`). The repository path is kept as written.

/** A parsed image reference. */
export interface ParsedRef {
  registry: string;
  repo: string;
  tag: string | undefined;
  digest: string | undefined;
}

const DIGEST_RE = /^sha256:[a-fA-F0-9]{64}$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const REGISTRY_RE = /^[A-Za-z0-9.-]+(?::[0-9]+)?$/;

/** True for `sha256:` + 64 hex characters. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Parses `[registry/]repo[:tag][@sha256:…]`; undefined when it is not a valid reference. */
export function parseRef(input: string): ParsedRef | undefined {
  if (input.length === 0 || input.length > 1024 || /\s/.test(input)) return undefined;
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) return undefined;
    digest = digest.toLowerCase();
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) return undefined;
  }
  let registry = 'docker.io';
  const firstSlash = rest.indexOf('/');
  if (firstSlash > 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(firstSlash + 1);
      if (!REGISTRY_RE.test(registry)) return undefined;
    }
  }
  if (!REPO_RE.test(rest)) return undefined;
  return { registry, repo: rest, tag, digest };
}

/** `registry/repo:tag`, with the tag defaulting to latest. */
export function fullTagOf(ref: ParsedRef): string {
  return `${ref.registry}/${ref.repo}:${ref.tag ?? 'latest'}`;
}

/** Normalises a tag reference (no digest) to its full tag; undefined when invalid. */
export function normalizeTag(input: string): string | undefined {
  const ref = parseRef(input);
  if (ref === undefined || ref.digest !== undefined) return undefined;
  return fullTagOf(ref);
}
