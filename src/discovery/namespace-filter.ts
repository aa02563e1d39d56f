/**
 * Which namespaces the operator looks at: name globs to include and exclude, plus an optional
 * label selector on the Namespace object (peers only offer name lists; selectors let admins opt
 * namespaces in or out by labelling them).
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { type GlobList, globsOf } from './glob.ts';
import { parseLabelSelectorString } from './label-selector.ts';

/** Namespace filter configuration. */
export interface NamespaceFilterConfig {
  /** Names or globs ("team-*"), or their compiled form; empty or absent means every namespace. */
  include?: GlobList;
  /** Names or globs, or their compiled form; a match always excludes, even when `include` also matches. */
  exclude?: GlobList;
  /** Label selector string ("env in (prod,staging),!scan.example.com/skip") the namespace must match. */
  labelSelector?: string;
}

/** True when the namespace should be watched. */
type NamespaceFilter = (name: string, labels: Readonly<Record<string, string>> | undefined) => boolean;

/**
 * Compiles a namespace filter: excluded by `exclude` → false; else it must match `include` (when
 * non-empty) and `labelSelector` (when given). All parts are validated up front, so a typo in
 * config fails at startup with a reason instead of silently filtering everything out.
 */
export function compileNamespaceFilter(cfg: NamespaceFilterConfig): Result<NamespaceFilter> {
  if (cfg === null || typeof cfg !== 'object') return fail('invalid namespace filter: expected an object with include, exclude and labelSelector');
  const include = globsOf(cfg.include ?? []);
  if (!include.ok) return fail(`invalid namespace filter include: ${include.reason}`);
  const exclude = globsOf(cfg.exclude ?? []);
  if (!exclude.ok) return fail(`invalid namespace filter exclude: ${exclude.reason}`);
  const selector = parseLabelSelectorString(cfg.labelSelector ?? '');
  if (!selector.ok) return fail(`invalid namespace filter labelSelector: ${selector.reason}`);

  const includeAll = include.value.empty;
  const includes = include.value.matches;
  const excludes = exclude.value.matches;
  const matchesLabels = selector.value;
  return ok((name, labels) => {
    if (typeof name !== 'string') return false;
    if (excludes(name)) return false;
    if (!includeAll && !includes(name)) return false;
    return matchesLabels(labels);
  });
}
