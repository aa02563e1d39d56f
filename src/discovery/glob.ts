/**
 * Shell-style globs for namespace names and image references, matched in linear time.
 *
 * Globs come from operator config but are matched against attacker-influenced strings (image
 * names from pod specs), for every container in the cluster. Translating them to RegExp would give
 * backtracking blow-ups for patterns like `a*a*a*a*b`, so each pattern is compiled to a tiny NFA
 * and simulated breadth-first: O(value length × pattern length) worst case, no backtracking.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';

/** Longest glob accepted; far beyond any sensible pattern, it bounds the NFA size. */
export const MAX_GLOB_LENGTH = 1024;
/** Most globs in one list; bounds per-value matching cost. */
const MAX_GLOBS = 1000;

// Token kinds.
const LITERAL = 0;
const ONE = 1; // '?': one character other than '/'
const STAR = 2; // '*': any run of characters other than '/'
const GLOBSTAR = 3; // '**': any run of characters including '/'
const SLASH = 47;

interface CompiledGlob {
  /** Pattern without wildcards: matched by string equality. */
  readonly exact: string | undefined;
  /** Literal text before the first wildcard and after the last one, checked cheaply first. */
  readonly prefix: string;
  readonly suffix: string;
  /** Characters a match needs at least (literals and '?'). */
  readonly minLength: number;
  /** Tokens between prefix and suffix. */
  readonly kinds: Uint8Array;
  readonly chars: Uint16Array;
  /** Reused NFA state sets (matching is synchronous, so sharing them per pattern is safe). */
  current: Uint8Array;
  next: Uint8Array;
}

function compileOne(pattern: string): CompiledGlob {
  const kinds: number[] = [];
  const chars: number[] = [];
  let minLength = 0;
  for (let i = 0; i < pattern.length;) {
    const c = pattern.charCodeAt(i);
    if (c === 42 /* * */) {
      let j = i;
      while (j < pattern.length && pattern.charCodeAt(j) === 42) j++;
      // Runs of three or more stars mean the same as '**'.
      kinds.push(j - i >= 2 ? GLOBSTAR : STAR);
      chars.push(0);
      i = j;
      continue;
    }
    kinds.push(c === 63 /* ? */ ? ONE : LITERAL);
    chars.push(c);
    minLength++;
    i++;
  }
  let first = 0;
  while (first < kinds.length && kinds[first] === LITERAL) first++;
  let last = kinds.length;
  while (last > first && kinds[last - 1] === LITERAL) last--;
  const exact = first === kinds.length ? pattern : undefined;
  const middle = last - first;
  return {
    exact,
    prefix: String.fromCharCode(...chars.slice(0, first)),
    suffix: exact !== undefined ? '' : String.fromCharCode(...chars.slice(last)),
    minLength,
    kinds: Uint8Array.from(kinds.slice(first, last)),
    chars: Uint16Array.from(chars.slice(first, last)),
    current: new Uint8Array(middle + 1),
    next: new Uint8Array(middle + 1),
  };
}

/** Adds state `s` and everything reachable from it without consuming input (stars match empty). */
function addState(set: Uint8Array, kinds: Uint8Array, s: number): void {
  const m = kinds.length;
  while (set[s] === 0) {
    set[s] = 1;
    if (s === m) return;
    const k = kinds[s];
    if (k !== STAR && k !== GLOBSTAR) return;
    s++;
  }
}

function matchOne(g: CompiledGlob, value: string): boolean {
  if (g.exact !== undefined) return value === g.exact;
  const n = value.length;
  if (n < g.minLength || !value.startsWith(g.prefix) || !value.endsWith(g.suffix)) return false;
  const kinds = g.kinds;
  const chars = g.chars;
  const m = kinds.length;
  const start = g.prefix.length;
  const end = n - g.suffix.length;
  // Common shapes: "prefix**suffix" and "prefix*suffix".
  if (m === 1 && kinds[0] === GLOBSTAR) return true;
  if (m === 1 && kinds[0] === STAR) {
    const slash = value.indexOf('/', start);
    return slash === -1 || slash >= end;
  }
  let current = g.current;
  let next = g.next;
  current.fill(0);
  addState(current, kinds, 0);
  for (let i = start; i < end; i++) {
    const c = value.charCodeAt(i);
    next.fill(0);
    let alive = false;
    for (let s = 0; s < m; s++) {
      if (current[s] === 0) continue;
      switch (kinds[s]) {
        case LITERAL:
          if (chars[s] === c) {
            addState(next, kinds, s + 1);
            alive = true;
          }
          break;
        case ONE:
          if (c !== SLASH) {
            addState(next, kinds, s + 1);
            alive = true;
          }
          break;
        case STAR:
          if (c !== SLASH) {
            addState(next, kinds, s);
            alive = true;
          }
          break;
        default: // GLOBSTAR
          addState(next, kinds, s);
          alive = true;
      }
    }
    if (!alive) return false;
    const swap = current;
    current = next;
    next = swap;
  }
  return current[m] === 1;
}

/**
 * Compiles globs once into one matcher that is true when any pattern matches the whole value.
 * `*` matches any run of characters except '/', `**` (or more stars) matches anything including
 * '/', `?` matches one character except '/'; everything else is literal (no escapes, no classes).
 * Characters are compared as UTF-16 code units (namespace and image names are ASCII anyway).
 * An empty list matches nothing. Empty patterns, non-strings and patterns longer than
 * {@link MAX_GLOB_LENGTH} are rejected with a reason.
 */
export function compileGlobs(patterns: readonly string[]): Result<(value: string) => boolean> {
  if (!Array.isArray(patterns)) return fail(`invalid glob list: expected a list of strings, got ${typeof patterns}`);
  if (patterns.length > MAX_GLOBS) return fail(`invalid glob list: ${patterns.length} patterns; the limit is ${MAX_GLOBS}`);
  const compiled: CompiledGlob[] = [];
  for (let i = 0; i < patterns.length; i++) {
    const p: unknown = patterns[i];
    if (typeof p !== 'string') return fail(`invalid glob pattern at index ${i}: expected a string, got ${p === null ? 'null' : typeof p}`);
    if (p === '') return fail(`invalid glob pattern at index ${i}: it is empty`);
    if (p.length > MAX_GLOB_LENGTH) {
      return fail(`invalid glob pattern ${quote(p)}: it is ${p.length} characters long; the limit is ${MAX_GLOB_LENGTH}`);
    }
    compiled.push(compileOne(p));
  }
  if (compiled.length === 0) return ok(() => false);
  return ok((value: string): boolean => {
    if (typeof value !== 'string') return false;
    for (const g of compiled) if (matchOne(g, value)) return true;
    return false;
  });
}

/**
 * A glob list compiled once, with the patterns it was compiled from (for settings shown to people and sent to
 * Anchore; `toJSON` writes them, so a logged or serialised config reads as before). Config compiles each glob setting
 * into one of these and hands it on: the scope, the namespace filter, the image exclusions and the Reports collector
 * take it as it is instead of compiling the patterns again.
 */
export class Globs {
  readonly patterns: readonly string[];
  /** True when any pattern matches the whole value. */
  readonly matches: (value: string) => boolean;

  private constructor(patterns: readonly string[], matches: (value: string) => boolean) {
    this.patterns = Object.freeze([...patterns]);
    this.matches = matches;
  }

  /** Compiles `patterns` (see compileGlobs for the syntax and what is rejected). */
  static compile(patterns: readonly string[]): Result<Globs> {
    const c = compileGlobs(patterns);
    return c.ok ? ok(new Globs(patterns, c.value)) : c;
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  toJSON(): readonly string[] {
    return this.patterns;
  }
}

/** Globs as a caller has them: already compiled (from config), or patterns (tests, specs) compiled here. */
export type GlobList = Globs | readonly string[];

/** The compiled form of `list`: itself when already compiled, else compiled now. */
export function globsOf(list: GlobList): Result<Globs> {
  return list instanceof Globs ? ok(list) : Globs.compile(list);
}
