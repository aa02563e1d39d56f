/**
 * Image exclusions: globs over normalised image names, so admins can keep e.g. their own
 * infrastructure images ("registry.k8s.io/**") out of Anchore.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';
import { type GlobList, Globs, globsOf } from './glob.ts';

/**
 * Compiles exclusion globs. The returned predicate is true (excluded) when any glob matches the
 * normalised full tag ("docker.io/library/nginx:1.25"), the repository ("docker.io/library/nginx")
 * or, when a digest is known, "repository@digest".
 *
 * Because matching is on normalised names, a pattern like "nginx:*" or "docker.io/nginx" could
 * never match anything. Such patterns are rejected with the spelling that would work, rather than
 * silently excluding nothing.
 */
export function compileImageExclusions(list: GlobList): Result<(resolved: { tag: string; repository: string; digest?: string }) => boolean> {
  const compiled = list instanceof Globs ? imageExclusionGlobs(list.patterns, list) : imageExclusionGlobs(list);
  if (!compiled.ok) return compiled;
  if (compiled.value.empty) return ok(() => false);
  const matches = compiled.value.matches;
  return ok((resolved) => {
    if (resolved === null || typeof resolved !== 'object') return false;
    const { tag, repository, digest } = resolved;
    if (typeof tag === 'string' && matches(tag)) return true;
    if (typeof repository !== 'string') return false;
    if (matches(repository)) return true;
    return typeof digest === 'string' && digest !== '' && matches(`${repository}@${digest}`);
  });
}

/**
 * Checks exclusion globs (a pattern that can never match a normalised name is refused, see above) and compiles them
 * once; `compiled`: their compiled form when the caller has it already (then only the checks run).
 */
export function imageExclusionGlobs(globs: readonly string[], compiled?: Globs): Result<Globs> {
  if (!Array.isArray(globs)) return fail('invalid image exclusions: expected a list of glob patterns');
  for (const g of globs) {
    if (typeof g !== 'string') continue; // compiling reports it
    const problem = neverMatches(g);
    if (problem !== undefined) return fail(`invalid image exclusion ${quote(g)}: ${problem}`);
  }
  const c = compiled ? ok(compiled) : globsOf(globs);
  return c.ok ? c : fail(`invalid image exclusions: ${c.reason}`);
}

/**
 * Patterns that cannot match any normalised name: every normalised name contains '/', and on
 * Docker Hub at least two (docker.io/<namespace>/<name>), and only '**' crosses a '/'.
 */
function neverMatches(glob: string): string | undefined {
  if (glob === '' || glob.includes('**')) return undefined;
  if (!glob.includes('/')) {
    return `images are matched by normalised name such as "docker.io/library/nginx:1.25", so a pattern without '/' never matches; write e.g. "docker.io/library/${glob}" or "**/${glob}"`;
  }
  if (glob.startsWith('index.docker.io/')) {
    return `Docker Hub names are normalised to "docker.io", so this never matches; write "docker.io/${glob.slice('index.docker.io/'.length)}"`;
  }
  if (glob.startsWith('docker.io/') && !glob.slice('docker.io/'.length).includes('/')) {
    return `Docker Hub names are normalised with a namespace ("docker.io/library/nginx"), so this never matches; write "docker.io/library/${glob.slice('docker.io/'.length)}"`;
  }
  return undefined;
}
