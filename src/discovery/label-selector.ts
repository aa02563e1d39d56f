/**
 * Kubernetes label selectors, in both forms: the string syntax (`a=b,c in (x,y),!d`, as in
 * `kubectl -l`) and the structured `LabelSelector` object (matchLabels/matchExpressions).
 *
 * The grammar, validation rules and error wording follow k8s.io/apimachinery (labels/selector.go,
 * util/validation) so that a selector the apiserver accepts is accepted here, and one it rejects is
 * rejected here with a similar message. Scanners are hand-written: linear, no regex backtracking.
 */
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { quote } from './quote.ts';

/** One matchExpressions entry. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** The structured selector used in Kubernetes objects. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** True when the labels satisfy the selector; `undefined` labels mean "no labels". */
export type LabelMatcher = (labels: Readonly<Record<string, string>> | undefined) => boolean;

/** Longest selector string accepted (apiserver requests are bounded similarly in practice). */
const MAX_SELECTOR_LENGTH = 4096;

type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

interface Requirement {
  readonly key: string;
  readonly op: Operator;
  readonly values: readonly string[];
  /** Gt/Lt bound. */
  readonly bound?: bigint;
}

// ---------------------------------------------------------------------------------------------
// Validation (k8s.io/apimachinery/pkg/util/validation)

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLowerAlnum = (c: number): boolean => (c >= 97 && c <= 122) || isDigit(c);
const isAlnum = (c: number): boolean => isLowerAlnum(c) || (c >= 65 && c <= 90);

/** `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`; empty handled by callers. */
function isQualifiedNameChars(s: string): boolean {
  if (!isAlnum(s.charCodeAt(0)) || !isAlnum(s.charCodeAt(s.length - 1))) return false;
  for (let i = 1; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c !== 45 && c !== 95 && c !== 46) return false;
  }
  return true;
}

/** DNS-1123 subdomain: lowercase labels `[a-z0-9]([-a-z0-9]*[a-z0-9])?` joined by '.', ≤ 253. */
function checkDnsSubdomain(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  let start = 0;
  for (;;) {
    const dot = s.indexOf('.', start);
    const label = dot === -1 ? s.slice(start) : s.slice(start, dot);
    if (label === '') return 'must be a lowercase DNS subdomain (no empty labels)';
    if (!isLowerAlnum(label.charCodeAt(0)) || !isLowerAlnum(label.charCodeAt(label.length - 1))) {
      return 'must be a lowercase DNS subdomain: labels start and end with a lowercase letter or digit';
    }
    for (let i = 1; i < label.length - 1; i++) {
      const c = label.charCodeAt(i);
      if (!isLowerAlnum(c) && c !== 45) return "must be a lowercase DNS subdomain: only 'a-z', '0-9', '-' and '.'";
    }
    if (dot === -1) return undefined;
    start = dot + 1;
  }
}

/** Label key: optional DNS-subdomain prefix and '/', then a name of ≤ 63 characters. */
function checkLabelKey(key: string): string | undefined {
  const what = `label key ${quote(key)}`;
  if (key === '') return 'label key must not be empty';
  const slash = key.indexOf('/');
  let name = key;
  if (slash !== -1) {
    if (key.indexOf('/', slash + 1) !== -1) return `${what} may contain at most one '/'`;
    const prefix = key.slice(0, slash);
    name = key.slice(slash + 1);
    if (prefix === '') return `${what}: the prefix before '/' must not be empty`;
    const problem = checkDnsSubdomain(prefix);
    if (problem !== undefined) return `${what}: prefix ${problem}`;
  }
  if (name === '') return `${what}: the name part must not be empty`;
  if (name.length > 63) return `${what}: the name part must be no more than 63 characters`;
  if (!isQualifiedNameChars(name)) {
    return `${what}: the name part must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric`;
  }
  return undefined;
}

/** Label value: empty, or ≤ 63 characters of the qualified-name charset. */
function checkLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return `label value ${quote(value)} must be no more than 63 characters`;
  if (!isQualifiedNameChars(value)) {
    return `label value ${quote(value)} must be empty or consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric`;
  }
  return undefined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, within int64. */
function parseInt64(s: string): bigint | undefined {
  if (s === '' || s.length > 20) return undefined;
  let i = s.charCodeAt(0) === 43 || s.charCodeAt(0) === 45 ? 1 : 0;
  if (i === s.length) return undefined;
  for (; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return undefined;
  const v = BigInt(s.charCodeAt(0) === 43 ? s.slice(1) : s);
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

function makeRequirement(key: string, op: Operator, values: string[]): Result<Requirement> {
  const keyProblem = checkLabelKey(key);
  if (keyProblem !== undefined) return fail(keyProblem);
  switch (op) {
    case 'in':
    case 'notin':
      if (values.length === 0) return fail(`for 'in' and 'notin' operators the values set can't be empty (key ${quote(key)})`);
      break;
    case '=':
    case '==':
    case '!=':
      if (values.length !== 1) return fail(`exact-match operators need exactly one value (key ${quote(key)})`);
      break;
    case 'exists':
    case '!':
      if (values.length !== 0) return fail(`values must not be given for 'Exists' and 'DoesNotExist' (key ${quote(key)})`);
      break;
    case 'gt':
    case 'lt': {
      const bound = values.length === 1 ? parseInt64(values[0] ?? '') : undefined;
      if (bound === undefined) return fail(`for '>' and '<' the value must be a single integer (key ${quote(key)})`);
      return ok({ key, op, values, bound });
    }
  }
  for (const v of values) {
    const problem = checkLabelValue(v);
    if (problem !== undefined) return fail(problem);
  }
  // Dedupe and sort, as Kubernetes does, so the canonical string form is stable.
  return ok({ key, op, values: [...new Set(values)].sort() });
}

// ---------------------------------------------------------------------------------------------
// Matching

function matchesRequirement(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  // Object.hasOwn: label keys such as "constructor" must not hit Object.prototype.
  const has = Object.hasOwn(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.op) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(String(value));
    case 'notin':
    case '!=':
      return !has || !r.values.includes(String(value));
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      if (!has || typeof value !== 'string') return false;
      const n = parseInt64(value);
      if (n === undefined || r.bound === undefined) return false;
      return r.op === 'gt' ? n > r.bound : n < r.bound;
    }
  }
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const MATCH_ALL: LabelMatcher = () => true;

function matcherFor(requirements: readonly Requirement[]): LabelMatcher {
  if (requirements.length === 0) return MATCH_ALL;
  return (labels) => {
    const l = labels !== null && typeof labels === 'object' ? labels : NO_LABELS;
    for (const r of requirements) if (!matchesRequirement(r, l)) return false;
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// String syntax

type TokenKind = 'id' | 'in' | 'notin' | '!' | '!=' | '=' | '==' | '>' | '<' | '(' | ')' | ',' | 'eos';
interface Token {
  kind: TokenKind;
  text: string;
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
const isSpecial = (c: number): boolean => c === 33 || c === 61 || c === 40 || c === 41 || c === 44 || c === 62 || c === 60;

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (isSpecial(c)) {
      const two = s.slice(i, i + 2);
      if (two === '!=' || two === '==') {
        tokens.push({ kind: two, text: two });
        i += 2;
      } else {
        const one = s[i] as '!' | '=' | '(' | ')' | ',' | '>' | '<';
        tokens.push({ kind: one, text: one });
        i++;
      }
      continue;
    }
    let j = i + 1;
    while (j < s.length && !isSpace(s.charCodeAt(j)) && !isSpecial(s.charCodeAt(j))) j++;
    const text = s.slice(i, j);
    tokens.push({ kind: text === 'in' ? 'in' : text === 'notin' ? 'notin' : 'id', text });
    i = j;
  }
  tokens.push({ kind: 'eos', text: 'end of string' });
  return tokens;
}

/** Recursive-descent parser over the token list, mirroring apimachinery's labels.Parser. */
function parseRequirements(s: string): Result<Requirement[]> {
  const tokens = tokenize(s);
  let pos = 0;
  const eos = tokens[tokens.length - 1] as Token;
  const peek = (): Token => tokens[pos] ?? eos;
  const next = (): Token => tokens[pos++] ?? eos;
  /** In value position the keywords are ordinary identifiers ("a in (in, notin)", "a=in"). */
  const isValueToken = (t: Token): boolean => t.kind === 'id' || t.kind === 'in' || t.kind === 'notin';
  const show = (t: Token): string => (t.kind === 'eos' ? 'end of string' : `'${t.text}'`);

  const requirements: Requirement[] = [];
  const parseOne = (): Result<Requirement> => {
    let t = next();
    let negated = false;
    if (t.kind === '!') {
      negated = true;
      t = next();
    }
    if (t.kind !== 'id') return fail(`found ${show(t)}, expected a label key`);
    const key = t.text;
    const after = peek();
    if (negated || after.kind === 'eos' || after.kind === ',') {
      const r = makeRequirement(key, negated ? '!' : 'exists', []);
      return r;
    }
    const opToken = next();
    let op: Operator;
    switch (opToken.kind) {
      case 'in':
      case 'notin':
      case '=':
      case '==':
      case '!=':
        op = opToken.kind;
        break;
      case '>':
        op = 'gt';
        break;
      case '<':
        op = 'lt';
        break;
      default:
        return fail(`found ${show(opToken)} after key ${quote(key)}, expected one of '=', '==', '!=', 'in', 'notin', '>', '<', ',' or end of string`);
    }
    const values: string[] = [];
    if (op === 'in' || op === 'notin') {
      const open = next();
      if (open.kind !== '(') return fail(`found ${show(open)}, expected '(' after '${op}'`);
      // Values list: identifiers separated by commas; empty entries are "" (as Kubernetes allows "(a,)").
      let expectValue = true;
      for (;;) {
        const v = next();
        if (v.kind === ')') {
          if (expectValue && values.length > 0) values.push('');
          break;
        }
        if (v.kind === ',') {
          if (expectValue) values.push('');
          expectValue = true;
          continue;
        }
        if (isValueToken(v) && expectValue) {
          values.push(v.text);
          expectValue = false;
          continue;
        }
        if (v.kind === 'eos') return fail(`unterminated value list for key ${quote(key)}: missing ')'`);
        return fail(`found ${show(v)} in the value list of key ${quote(key)}, expected ',' or ')'`);
      }
    } else {
      const v = peek();
      if (v.kind === 'eos' || v.kind === ',') {
        values.push(''); // "a=" selects an empty value
      } else if (isValueToken(v)) {
        values.push(next().text);
      } else {
        return fail(`found ${show(v)}, expected a value for key ${quote(key)}`);
      }
    }
    const r = makeRequirement(key, op, values);
    return r;
  };

  if (peek().kind === 'eos') return ok(requirements);
  for (let first = true; ; first = false) {
    const start = peek();
    if (start.kind !== 'id' && start.kind !== '!') {
      return fail(first ? `found ${show(start)}, expected '!', a label key or end of string` : `found ${show(start)}, expected a label key after ','`);
    }
    const r = parseOne();
    if (!r.ok) return r;
    requirements.push(r.value);
    const sep = next();
    if (sep.kind === 'eos') break;
    if (sep.kind !== ',') return fail(`found ${show(sep)}, expected ',' or end of string`);
  }
  return ok(requirements);
}

/**
 * Parses the string form of a label selector ("a=b,c!=d,e in (x, y),f notin (z),g,!h", "a==b",
 * "n>3"); the empty (or all-whitespace) string matches everything. Keys and values are validated
 * as the apiserver does; failures read `invalid label selector "…": <what is wrong>`.
 */
export function parseLabelSelectorString(s: string): Result<LabelMatcher> {
  if (typeof s !== 'string') return fail(`invalid label selector: expected a string, got ${s === null ? 'null' : typeof s}`);
  if (s.length > MAX_SELECTOR_LENGTH) {
    return fail(`invalid label selector ${quote(s)}: it is ${s.length} characters long; the limit is ${MAX_SELECTOR_LENGTH}`);
  }
  const r = parseRequirements(s);
  return r.ok ? ok(matcherFor(r.value)) : fail(`invalid label selector ${quote(s)}: ${r.reason}`);
}

// ---------------------------------------------------------------------------------------------
// Structured form

const OPERATORS: Readonly<Record<string, Operator>> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };

function requirementsOf(sel: LabelSelector): Result<Requirement[]> {
  const out: Requirement[] = [];
  const { matchLabels, matchExpressions } = sel;
  if (matchLabels !== undefined && matchLabels !== null) {
    if (typeof matchLabels !== 'object' || Array.isArray(matchLabels)) return fail('matchLabels must be a map of label keys to values');
    for (const [key, value] of Object.entries(matchLabels)) {
      if (typeof value !== 'string') return fail(`matchLabels[${quote(key)}] must be a string, got ${value === null ? 'null' : typeof value}`);
      const r = makeRequirement(key, '=', [value]);
      if (!r.ok) return fail(`matchLabels: ${r.reason}`);
      out.push(r.value);
    }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    if (!Array.isArray(matchExpressions)) return fail('matchExpressions must be a list');
    for (let i = 0; i < matchExpressions.length; i++) {
      const e: unknown = matchExpressions[i];
      const where = `matchExpressions[${i}]`;
      if (e === null || typeof e !== 'object') return fail(`${where} must be an object with key, operator and values`);
      const { key, operator, values } = e as Partial<Record<'key' | 'operator' | 'values', unknown>>;
      if (typeof key !== 'string') return fail(`${where}.key must be a string`);
      const op = typeof operator === 'string' && Object.hasOwn(OPERATORS, operator) ? OPERATORS[operator] : undefined;
      if (op === undefined) {
        return fail(`${where}.operator ${quote(String(operator))} is not a valid selector operator; use In, NotIn, Exists or DoesNotExist`);
      }
      let list: string[] = [];
      if (values !== undefined && values !== null) {
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) return fail(`${where}.values must be a list of strings`);
        list = values as string[];
      }
      if ((op === 'in' || op === 'notin') && list.length === 0) {
        return fail(`${where}.values must be non-empty when operator is ${operator as string}`);
      }
      if ((op === 'exists' || op === '!') && list.length !== 0) {
        return fail(`${where}.values may not be specified when operator is ${operator as string}`);
      }
      const r = makeRequirement(key, op, list);
      if (!r.ok) return fail(`${where}: ${r.reason}`);
      out.push(r.value);
    }
  }
  return ok(out);
}

/**
 * Compiles a structured LabelSelector. `undefined`, `null` and `{}` match everything (the
 * semantics of an optional selector field). In/NotIn need values, Exists/DoesNotExist must have
 * none; keys and values are validated as the apiserver does.
 */
export function compileLabelSelector(sel: LabelSelector | undefined | null): Result<LabelMatcher> {
  if (sel === undefined || sel === null) return ok(MATCH_ALL);
  if (typeof sel !== 'object' || Array.isArray(sel)) return fail('invalid label selector: expected an object with matchLabels and/or matchExpressions');
  const r = requirementsOf(sel);
  return r.ok ? ok(matcherFor(r.value)) : fail(`invalid label selector: ${r.reason}`);
}

function requirementToString(r: Requirement): string {
  switch (r.op) {
    case 'exists':
      return r.key;
    case '!':
      return `!${r.key}`;
    case 'in':
    case 'notin':
      // "a in ()" would not parse back (Kubernetes prints it anyway); the equivalent "a=" does.
      if (r.values.length === 1 && r.values[0] === '') return `${r.key}${r.op === 'in' ? '=' : '!='}`;
      return `${r.key} ${r.op} (${r.values.join(',')})`;
    case 'gt':
      return `${r.key}>${r.values[0] ?? ''}`;
    case 'lt':
      return `${r.key}<${r.values[0] ?? ''}`;
    default:
      return `${r.key}${r.op}${r.values[0] ?? ''}`;
  }
}

/**
 * Canonical string form, e.g. `app=web,tier in (back,front),!legacy`: requirements sorted by key,
 * values sorted, as `kubectl` prints selectors. For a valid selector the result parses back (with
 * {@link parseLabelSelectorString}) to an equivalent matcher; `{}` gives "" (matches everything).
 * Invalid selectors are rendered best-effort, for messages only.
 */
export function selectorToString(sel: LabelSelector): string {
  if (sel === null || typeof sel !== 'object') return '';
  const parts: { key: string; text: string }[] = [];
  if (sel.matchLabels !== null && typeof sel.matchLabels === 'object') {
    for (const [key, value] of Object.entries(sel.matchLabels)) parts.push({ key, text: `${key}=${String(value)}` });
  }
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions as unknown[]) {
      if (e === null || typeof e !== 'object') continue;
      const { key, operator, values } = e as Partial<Record<'key' | 'operator' | 'values', unknown>>;
      const k = String(key);
      const op = typeof operator === 'string' && Object.hasOwn(OPERATORS, operator) ? OPERATORS[operator] : undefined;
      const vals = Array.isArray(values) ? [...new Set(values.map(String))].sort() : [];
      const text = op === undefined ? `${k} ${String(operator)} (${vals.join(',')})` : requirementToString({ key: k, op, values: vals });
      parts.push({ key: k, text });
    }
  }
  // Stable sort by key (code-unit order, like Go's sort of strings).
  parts.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return parts.map((p) => p.text).join(',');
}
