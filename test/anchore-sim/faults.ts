// Fault injection. Injected faults never reach the route handlers, so a fault never changes simulator state: a test
// can reason about "the request failed" without wondering whether the image got added anyway.
import { mulberry32, fnv1a } from './prng.ts';
import { testRegExp } from './request-log.ts';
import type { FaultRule } from './types.ts';

/** What the fault engine decided for one request. */
export interface FaultDecision {
  latencyMs: number;
  action:
    | { kind: 'none' }
    | { kind: 'error'; status: number; retryAfterSeconds?: number }
    | { kind: 'tooLarge' }
    | { kind: 'reset' }
    | { kind: 'htmlLogin' }
    | { kind: 'truncatedJson' }
    | { kind: 'body'; status: number; body: unknown; contentType: string }
    | { kind: 'hugeBody'; bytes: number }
    | { kind: 'wrongTypes' };
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

/** Thrown by {@link parseFaultRules} for a malformed rule. */
export class FaultRuleError extends Error {
  override name = 'FaultRuleError';
}

/** Applies the active fault rules, in order, with a seeded PRNG so that errorRate outcomes are reproducible. */
export class FaultEngine {
  private rules: ActiveRule[] = [];
  private random: () => number;
  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
    this.random = mulberry32(fnv1a(`faults:${seed}`));
  }

  /** Replaces the rule set and restarts the PRNG, so the same rules see the same sequence of rolls. */
  set(rules: FaultRule[]): void {
    const checked = parseFaultRules(rules);
    this.rules = checked.map((rule) => ({ rule, remaining: rule.count ?? Number.POSITIVE_INFINITY }));
    this.random = mulberry32(fnv1a(`faults:${this.seed}`));
  }

  clear(): void {
    this.rules = [];
  }

  /** The active rules with what is left of their count. */
  list(): Array<FaultRule & { remaining?: number }> {
    return this.rules.map((r) => (Number.isFinite(r.remaining) ? { ...r.rule, remaining: r.remaining } : { ...r.rule }));
  }

  /**
   * Decides what happens to a request of `bodyBytes` (Infinity: larger than the simulator reads). Consumes one count
   * from every rule that did something.
   */
  decide(method: string, path: string, now: number, bodyBytes = 0): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0, action: { kind: 'none' } };
    if (this.rules.length === 0) return decision;
    for (const active of this.rules) {
      const { rule } = active;
      if (active.remaining <= 0) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (rule.path !== undefined && (typeof rule.path === 'string' ? rule.path !== path : !testRegExp(rule.path, path))) continue;
      if (rule.outage !== undefined && (now < (rule.outage.fromMs ?? Number.NEGATIVE_INFINITY) || now >= rule.outage.untilMs)) continue;
      if (rule.maxBodyBytes !== undefined && bodyBytes <= rule.maxBodyBytes) continue;

      let acted = false;
      if (rule.latencyMs !== undefined && rule.latencyMs > 0) {
        decision.latencyMs += rule.latencyMs;
        acted = true;
      }
      const terminal = terminalAction(rule);
      if (terminal !== undefined && decision.action.kind === 'none') {
        const fires = rule.errorRate === undefined || this.random() < rule.errorRate;
        if (fires) {
          decision.action = terminal;
          acted = true;
        }
      }
      if (acted) active.remaining--;
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return decision;
  }
}

function terminalAction(rule: FaultRule): FaultDecision['action'] | undefined {
  if (rule.maxBodyBytes !== undefined) return { kind: 'tooLarge' };
  if (rule.reset === true) return { kind: 'reset' };
  if (rule.htmlLogin === true) return { kind: 'htmlLogin' };
  if (rule.truncatedJson === true) return { kind: 'truncatedJson' };
  if (rule.body !== undefined) return { kind: 'body', status: rule.status ?? 200, body: rule.body, contentType: rule.contentType ?? 'application/json' };
  if (rule.hugeBodyBytes !== undefined) return { kind: 'hugeBody', bytes: rule.hugeBodyBytes };
  if (rule.wrongTypes === true) return { kind: 'wrongTypes' };
  if (rule.outage !== undefined || rule.errorRate !== undefined || rule.status !== undefined || rule.retryAfterSeconds !== undefined) {
    const status = rule.status ?? (rule.outage !== undefined ? 503 : 500);
    return rule.retryAfterSeconds === undefined ? { kind: 'error', status } : { kind: 'error', status, retryAfterSeconds: rule.retryAfterSeconds };
  }
  return undefined;
}

const RULE_KEYS = new Set([
  'method',
  'path',
  'latencyMs',
  'errorRate',
  'status',
  'retryAfterSeconds',
  'outage',
  'reset',
  'htmlLogin',
  'truncatedJson',
  'body',
  'contentType',
  'hugeBodyBytes',
  'wrongTypes',
  'maxBodyBytes',
  'count',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonNegative(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new FaultRuleError(`${where} must be a non-negative number`);
  return v;
}

function flag(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new FaultRuleError(`${where} must be a boolean`);
  return v;
}

/**
 * Validates fault rules, from code or from JSON. In JSON a path written `"re:<pattern>"` becomes a RegExp.
 * @throws FaultRuleError naming the first bad member.
 */
export function parseFaultRules(input: unknown): FaultRule[] {
  if (!Array.isArray(input)) throw new FaultRuleError('fault rules must be an array');
  return input.map((raw, i): FaultRule => {
    const where = `rule[${i}]`;
    if (!isObject(raw)) throw new FaultRuleError(`${where} must be an object`);
    for (const k of Object.keys(raw)) if (!RULE_KEYS.has(k)) throw new FaultRuleError(`${where}: unknown member "${k}"`);
    const rule: FaultRule = {};
    if (raw.method !== undefined) {
      if (typeof raw.method !== 'string' || raw.method === '') throw new FaultRuleError(`${where}.method must be a string`);
      rule.method = raw.method.toUpperCase();
    }
    if (raw.path !== undefined) {
      if (raw.path instanceof RegExp) rule.path = raw.path;
      else if (typeof raw.path === 'string') {
        if (raw.path.startsWith('re:')) {
          try {
            rule.path = new RegExp(raw.path.slice(3));
          } catch (err) {
            throw new FaultRuleError(`${where}.path: ${(err as Error).message}`);
          }
        } else rule.path = raw.path;
      } else throw new FaultRuleError(`${where}.path must be a string or RegExp`);
    }
    if (raw.latencyMs !== undefined) rule.latencyMs = nonNegative(raw.latencyMs, `${where}.latencyMs`);
    if (raw.errorRate !== undefined) {
      rule.errorRate = nonNegative(raw.errorRate, `${where}.errorRate`);
      if (rule.errorRate > 1) throw new FaultRuleError(`${where}.errorRate must be within 0..1`);
    }
    if (raw.status !== undefined) {
      const s = raw.status;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 100 || s > 599) throw new FaultRuleError(`${where}.status must be an HTTP status code`);
      rule.status = s;
    }
    if (raw.retryAfterSeconds !== undefined) rule.retryAfterSeconds = nonNegative(raw.retryAfterSeconds, `${where}.retryAfterSeconds`);
    if (raw.outage !== undefined) {
      const o = raw.outage;
      if (!isObject(o)) throw new FaultRuleError(`${where}.outage must be an object`);
      const outage: { fromMs?: number; untilMs: number } = { untilMs: nonNegative(o.untilMs, `${where}.outage.untilMs`) };
      if (o.fromMs !== undefined) outage.fromMs = nonNegative(o.fromMs, `${where}.outage.fromMs`);
      rule.outage = outage;
    }
    if (raw.reset !== undefined) rule.reset = flag(raw.reset, `${where}.reset`);
    if (raw.htmlLogin !== undefined) rule.htmlLogin = flag(raw.htmlLogin, `${where}.htmlLogin`);
    if (raw.truncatedJson !== undefined) rule.truncatedJson = flag(raw.truncatedJson, `${where}.truncatedJson`);
    if (raw.body !== undefined) rule.body = raw.body;
    if (raw.contentType !== undefined) {
      if (typeof raw.contentType !== 'string' || raw.contentType === '') throw new FaultRuleError(`${where}.contentType must be a string`);
      if (raw.body === undefined) throw new FaultRuleError(`${where}.contentType needs body`);
      rule.contentType = raw.contentType;
    }
    if (raw.hugeBodyBytes !== undefined) {
      const n = raw.hugeBodyBytes;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new FaultRuleError(`${where}.hugeBodyBytes must be a positive integer`);
      rule.hugeBodyBytes = n;
    }
    if (raw.wrongTypes !== undefined) rule.wrongTypes = flag(raw.wrongTypes, `${where}.wrongTypes`);
    if (raw.maxBodyBytes !== undefined) {
      const n = raw.maxBodyBytes;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new FaultRuleError(`${where}.maxBodyBytes must be a non-negative integer`);
      rule.maxBodyBytes = n;
    }
    if (raw.count !== undefined) {
      const c = raw.count;
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 1) throw new FaultRuleError(`${where}.count must be a positive integer`);
      rule.count = c;
    }
    return rule;
  });
}

/**
 * The `wrongTypes` fault: the same document with every type swapped — strings become their length, numbers strings,
 * booleans "yes"/"no", arrays objects keyed by index; null stays null.
 */
export function swapTypes(v: unknown): unknown {
  if (typeof v === 'string') return v.length;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), swapTypes(x)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swapTypes(x)]));
  return v;
}

/** JSON form of a rule (RegExp paths as "re:<source>", with the `\/` escapes RegExp adds undone), for the control API. */
export function faultRuleToJson(rule: FaultRule & { remaining?: number }): Record<string, unknown> {
  const { path, ...rest } = rule;
  return path === undefined ? rest : { ...rest, path: typeof path === 'string' ? path : `re:${path.source.replace(/\\\//g, '/')}` };
}
