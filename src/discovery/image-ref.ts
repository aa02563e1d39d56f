/**
 * Docker/OCI image references, parsed with the grammar of distribution/reference and normalised the
 * way Docker and containerd normalise them (`nginx` → `docker.io/library/nginx`).
 *
 * Hand-written scanners instead of one big regular expression: the input comes from pod specs that
 * anyone with `create pods` controls, and the code runs for every container of every pod, so it must
 * be linear in the input length and give a precise reason for every rejection.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Registry host with optional port, e.g. "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000". */
  registry: string;
  /** Repository path inside the registry, e.g. "library/nginx". Always lowercase. */
  repository: string;
  /** Tag, e.g. "1.25". Absent when the reference names none: no implicit "latest" at this level. */
  tag?: string;
  /** Digest, "sha256:<64 lowercase hex>" (or "sha512:<128 lowercase hex>"). */
  digest?: string;
}

/** How references that name no registry are completed. */
export interface NormaliseOptions {
  /** Registry assumed when a reference names none. Default "docker.io". */
  defaultRegistry?: string;
  /**
   * Used instead of `defaultRegistry` when the reference names no registry, like k8s-inventory's
   * `missing-registry-override` (for runtimes whose unqualified-image search list is not Docker
   * Hub). May carry a path ("mirror.example.com/hub"), which then prefixes the repository, because
   * k8s-inventory applies the override as a plain text prefix and admins configure it that way.
   * An empty string counts as unset, as in k8s-inventory.
   */
  registryOverride?: string;
}

/** Longest reference accepted; anything longer is certainly not a real image and is rejected cheaply. */
export const MAX_REFERENCE_LENGTH = 4096;
/** distribution/reference's NameTotalLengthMax, applied to the normalised "registry/repository". */
const MAX_NAME_LENGTH = 255;
const MAX_TAG_LENGTH = 128;

const DOCKER_HUB = 'docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';

/** Digest hex lengths by algorithm. Anchore itself only knows sha256; sha512 is accepted because OCI registers it. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

// ---------------------------------------------------------------------------------------------
// Character classes (char codes; avoids regex engines entirely on the hot path)

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLowerAlnum = (c: number): boolean => isLower(c) || isDigit(c);
const isAlnum = (c: number): boolean => isLower(c) || isUpper(c) || isDigit(c);
const isHex = (c: number): boolean => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
/** `\w` in Go's RE2: ASCII letters, digits and underscore. */
const isWord = (c: number): boolean => isAlnum(c) || c === 95;

function describeChar(text: string, index: number): string {
  const cp = text.codePointAt(index) ?? 0;
  return JSON.stringify(String.fromCodePoint(cp));
}

// ---------------------------------------------------------------------------------------------
// Component validators. Each returns undefined when valid, else a reason fragment.

/**
 * Digest validation; returns the normalised (lowercase hex) digest, or a reason that does not
 * repeat the input (callers frame it).
 * @internal
 */
export function checkDigest(text: string): Result<string> {
  const colon = text.indexOf(':');
  if (colon === -1) return fail(`digest ${quote(text)} must look like "sha256:<64 hex characters>"`);
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) {
    if (algorithm.toLowerCase() in DIGEST_HEX_LENGTH) {
      return fail(`digest algorithm ${quote(algorithm)} must be lowercase`);
    }
    return fail(`unsupported digest algorithm ${quote(algorithm)}; only sha256 (and sha512) are supported`);
  }
  for (let i = 0; i < hex.length; i++) {
    if (!isHex(hex.charCodeAt(i))) {
      return fail(`${algorithm} digest contains ${describeChar(hex, i)}, which is not a hexadecimal digit`);
    }
  }
  if (hex.length !== expected) {
    return fail(`${algorithm} digest must have exactly ${expected} hex characters, found ${hex.length}`);
  }
  return ok(`${algorithm}:${hex.toLowerCase()}`);
}

function checkTag(tag: string): string | undefined {
  if (tag === '') return "the tag after ':' is empty";
  if (tag.length > MAX_TAG_LENGTH) return `tag is ${tag.length} characters long; the limit is ${MAX_TAG_LENGTH}`;
  if (!isWord(tag.charCodeAt(0))) return `tag ${quote(tag)} must start with a letter, digit or '_'`;
  for (let i = 1; i < tag.length; i++) {
    const c = tag.charCodeAt(i);
    if (!isWord(c) && c !== 46 /* . */ && c !== 45 /* - */) {
      return `tag ${quote(tag)} contains ${describeChar(tag, i)}; tags may only contain letters, digits, '_', '.' and '-'`;
    }
  }
  return undefined;
}

/** `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, scanned in one pass. */
function checkPathComponent(component: string): string | undefined {
  if (component === '') return 'repository path has an empty component (a leading, trailing or doubled "/")';
  const n = component.length;
  let i = 0;
  while (i < n) {
    const c = component.charCodeAt(i);
    if (isLowerAlnum(c)) {
      i++;
      continue;
    }
    if (isUpper(c)) return 'repository must be lowercase';
    if (c === 46 || c === 95 || c === 45) {
      let j = i;
      while (j < n) {
        const s = component.charCodeAt(j);
        if (s !== 46 && s !== 95 && s !== 45) break;
        j++;
      }
      const sep = component.slice(i, j);
      if (i === 0) return `repository component ${quote(component)} must start with a lowercase letter or digit`;
      if (j === n) return `repository component ${quote(component)} must end with a lowercase letter or digit`;
      if (!(sep === '.' || sep === '_' || sep === '__' || isDashes(sep))) {
        return `repository component ${quote(component)} has separator ${quote(sep)}; only ".", "_", "__" or dashes may join letters and digits`;
      }
      i = j;
      continue;
    }
    return `repository contains ${describeChar(component, i)}; only lowercase letters, digits and the separators ".", "_", "__", "-" are allowed`;
  }
  return undefined;
}

function isDashes(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== 45) return false;
  return true;
}

/** `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]` */
function checkDomainComponent(label: string, host: string): string | undefined {
  if (label === '') return `registry host ${quote(host)} has an empty DNS label`;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (isAlnum(c)) continue;
    if (c === 45 && i !== 0 && i !== label.length - 1) continue;
    if (c === 45) return `registry host ${quote(host)} has a DNS label starting or ending with '-'`;
    return `registry host ${quote(host)} contains ${describeChar(label, i)}`;
  }
  return undefined;
}

/**
 * host[:port] where host is a DNS name, an IPv4 address (a DNS name syntactically) or a bracketed
 * IPv6 address. Returns the normalised registry (index.docker.io → docker.io).
 */
function checkRegistry(registry: string): Result<string> {
  let host: string;
  let rest: string;
  if (registry.charCodeAt(0) === 91 /* [ */) {
    const close = registry.indexOf(']');
    if (close === -1) return fail(`registry ${quote(registry)} has an unterminated IPv6 address (missing ']')`);
    const inner = registry.slice(1, close);
    if (inner === '' || !inner.includes(':')) return fail(`registry ${quote(registry)} has an invalid IPv6 address`);
    for (let i = 0; i < inner.length; i++) {
      const c = inner.charCodeAt(i);
      if (!isHex(c) && c !== 58 /* : */) {
        return fail(`registry ${quote(registry)} has ${describeChar(inner, i)} in its IPv6 address`);
      }
    }
    host = registry.slice(0, close + 1);
    rest = registry.slice(close + 1);
    if (rest !== '' && rest.charCodeAt(0) !== 58) return fail(`registry ${quote(registry)} has text after the IPv6 address that is not a port`);
  } else {
    const colon = registry.indexOf(':');
    host = colon === -1 ? registry : registry.slice(0, colon);
    rest = colon === -1 ? '' : registry.slice(colon);
    if (host === '') return fail(`registry ${quote(registry)} has no host name`);
    let start = 0;
    for (;;) {
      const dot = host.indexOf('.', start);
      const label = dot === -1 ? host.slice(start) : host.slice(start, dot);
      const problem = checkDomainComponent(label, host);
      if (problem !== undefined) return fail(problem);
      if (dot === -1) break;
      start = dot + 1;
    }
  }
  if (rest !== '') {
    const port = rest.slice(1);
    if (port === '') return fail(`registry ${quote(registry)} has ':' but no port number`);
    for (let i = 0; i < port.length; i++) {
      if (!isDigit(port.charCodeAt(i))) return fail(`registry ${quote(registry)} has a non-numeric port ${quote(port)}`);
    }
    if (port.length > 5 || Number(port) > 65535 || Number(port) === 0) {
      return fail(`registry ${quote(registry)} has port ${port}, outside 1-65535`);
    }
  }
  return ok(registry === LEGACY_DOCKER_HUB ? DOCKER_HUB : registry);
}

/**
 * Docker's rule for "is the first path component a registry": it contains '.' or ':', or is
 * "localhost". ('[' is covered by ':' for IPv6.) Otherwise it is a Docker Hub namespace.
 */
function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function checkPath(path: string): string | undefined {
  let start = 0;
  for (;;) {
    const slash = path.indexOf('/', start);
    const component = slash === -1 ? path.slice(start) : path.slice(start, slash);
    const problem = checkPathComponent(component);
    if (problem !== undefined) return problem;
    if (slash === -1) return undefined;
    start = slash + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Normalisation options

/** @internal Resolved {@link NormaliseOptions}. */
interface Defaults {
  registry: string;
  /** Repository prefix from an override with a path, "" or e.g. "hub/". */
  prefix: string;
}

const defaultsCache = new Map<string, Result<Defaults>>();
const DEFAULTS_CACHE_MAX = 64;

/**
 * Validates and resolves normalisation options (cached: they come from operator config).
 * @internal
 */
export function resolveDefaults(opts: NormaliseOptions | undefined): Result<Defaults> {
  const override = typeof opts?.registryOverride === 'string' && opts.registryOverride !== '' ? opts.registryOverride : undefined;
  const configured = typeof opts?.defaultRegistry === 'string' && opts.defaultRegistry !== '' ? opts.defaultRegistry : undefined;
  const raw = override ?? configured ?? DOCKER_HUB;
  const label = override !== undefined ? 'registry override' : 'default registry';
  const key = `${label}\u0000${raw}`;
  const cached = defaultsCache.get(key);
  if (cached !== undefined) return cached;
  const result = computeDefaults(raw, label);
  // Options come from operator config, so there are only a handful of distinct values; the cap
  // only guards against a caller passing per-pod values.
  if (defaultsCache.size >= DEFAULTS_CACHE_MAX) defaultsCache.clear();
  defaultsCache.set(key, result);
  return result;
}

function computeDefaults(raw: string, label: string): Result<Defaults> {
  const bad = (why: string): Result<Defaults> => fail(`invalid ${label} ${quote(raw)}: ${why}`);
  if (raw.length > MAX_NAME_LENGTH) return bad(`it is longer than ${MAX_NAME_LENGTH} characters`);
  if (raw.includes('://')) return bad('give host[:port][/path] without a scheme such as https://');
  let trimmed = raw;
  while (trimmed.endsWith('/')) trimmed = trimmed.slice(0, -1);
  const slash = trimmed.indexOf('/');
  const host = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const path = slash === -1 ? '' : trimmed.slice(slash + 1);
  if (host === '') return bad('it names no registry host');
  // A host that does not look like a registry would be read back as a Docker Hub namespace when
  // the formatted reference is parsed again ("myreg/nginx" is docker.io/myreg/nginx).
  if (!looksLikeRegistry(host)) {
    return bad(`${quote(host)} does not look like a registry host; it must contain '.' or ':' or be "localhost", otherwise "${host}/nginx" would mean docker.io/${host}/nginx`);
  }
  const registry = checkRegistry(host);
  if (!registry.ok) return bad(registry.reason);
  if (path !== '') {
    const problem = checkPath(path);
    if (problem !== undefined) return bad(problem);
  }
  return ok({ registry: registry.value, prefix: path === '' ? '' : `${path}/` });
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Parses without building the "invalid image reference …" prefix, so callers (imageID parsing)
 * can frame the reason themselves. The caller has already checked the type and the length cap
 * and resolved the options with {@link resolveDefaults}.
 * @internal
 */
export function parseReferenceBody(ref: string, defaults: Defaults): Result<ImageReference> {
  for (let i = 0; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c <= 32 || c === 127) return fail('it contains whitespace or control characters');
  }
  if (isHexOfLength(ref, 64)) {
    return fail('it is a 64-character hexadecimal image ID, not a repository name');
  }
  if (ref.startsWith('sha256:') && isHexOfLength(ref.slice(7), 64)) {
    return fail('it is an image ID ("sha256:<hex>"), not a pullable reference');
  }

  let name = ref;
  let digest: string | undefined;
  const at = ref.indexOf('@');
  if (at !== -1) {
    if (ref.indexOf('@', at + 1) !== -1) return fail("it contains more than one '@'");
    const d = checkDigest(ref.slice(at + 1));
    if (!d.ok) return d;
    digest = d.value;
    name = ref.slice(0, at);
    if (name === '') return fail("the repository name before '@' is missing");
  }

  let tag: string | undefined;
  const lastSlash = name.lastIndexOf('/');
  if (lastSlash === -1 && name.charCodeAt(0) === 91) {
    return fail('a registry address must be followed by "/" and a repository');
  }
  const colon = name.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    const problem = checkTag(tag);
    if (problem !== undefined) return fail(problem);
  }
  if (name === '') return fail('the repository name is missing');

  let registry: string;
  let remote: string;
  const firstSlash = name.indexOf('/');
  const first = firstSlash === -1 ? '' : name.slice(0, firstSlash);
  if (firstSlash !== -1 && looksLikeRegistry(first)) {
    const r = checkRegistry(first);
    if (!r.ok) return r;
    registry = r.value;
    remote = name.slice(firstSlash + 1);
    if (remote === '') return fail(`registry ${quote(first)} is not followed by a repository`);
  } else {
    registry = defaults.registry;
    remote = defaults.prefix + name;
  }
  const problem = checkPath(remote);
  if (problem !== undefined) return fail(problem);
  if (registry === DOCKER_HUB && !remote.includes('/')) remote = OFFICIAL_REPO_PREFIX + remote;

  const fullLength = registry.length + 1 + remote.length;
  if (fullLength > MAX_NAME_LENGTH) {
    return fail(`repository name "${registry}/${remote.slice(0, 40)}…" is ${fullLength} characters long; the limit is ${MAX_NAME_LENGTH}`);
  }
  const value: ImageReference = { registry, repository: remote };
  if (tag !== undefined) value.tag = tag;
  if (digest !== undefined) value.digest = digest;
  return ok(value);
}

function isHexOfLength(text: string, length: number): boolean {
  if (text.length !== length) return false;
  for (let i = 0; i < length; i++) if (!isHex(text.charCodeAt(i))) return false;
  return true;
}

/**
 * Parses and normalises an image reference such as "nginx", "nginx:1.25",
 * "ghcr.io/org/app@sha256:…", "localhost:5000/app:dev" or "[::1]:5000/app".
 *
 * - A first path component is a registry only if it contains '.' or ':' or is "localhost";
 *   otherwise the registry is `registryOverride`, else `defaultRegistry`, else "docker.io".
 * - "index.docker.io" becomes "docker.io"; a one-component Docker Hub repository gets "library/".
 * - Tag and digest may both be present. No tag is implied: "nginx" has no tag here.
 * - Digest hex is lowercased; sha256 (64 hex) and sha512 (128 hex) are accepted.
 * - Never throws; failures say what to fix, e.g.
 *   `invalid image reference "Nginx:1": repository must be lowercase`.
 */
export function parseImageReference(ref: string, opts?: NormaliseOptions): Result<ImageReference> {
  if (typeof ref !== 'string') return fail(`invalid image reference: expected a string, got ${ref === null ? 'null' : typeof ref}`);
  if (ref === '') return fail('invalid image reference "": it is empty');
  if (ref.length > MAX_REFERENCE_LENGTH) {
    return fail(`invalid image reference ${quote(ref)}: it is ${ref.length} characters long; the limit is ${MAX_REFERENCE_LENGTH}`);
  }
  const defaults = resolveDefaults(opts);
  if (!defaults.ok) return defaults;
  const r = parseReferenceBody(ref, defaults.value);
  return r.ok ? r : fail(`invalid image reference ${quote(ref)}: ${r.reason}`);
}

/** "registry/repository", e.g. "docker.io/library/nginx": the identity Anchore keys repositories on. */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}
