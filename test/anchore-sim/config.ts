// Simulator configuration: defaults, merging, strict validation (a typo in a test config should fail loudly rather
// than silently fall back to a default) and loading from a YAML/JSON file for the CLI.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { SimAccount, SimApiKey, SimConfig, SimConfigInput, SimPolicy, SimUser } from './types.ts';

/** The id Anchore gives its default policy bundle. */
export const DEFAULT_POLICY_ID = '2c53a13c-1765-11e8-82ef-23527761d060';

/** The name of the system admin account: its users may act as any account. */
export const ADMIN_ACCOUNT = 'admin';

/** Thrown for an invalid configuration; the message is one line, fit for a CLI. */
export class SimConfigError extends Error {
  override name = 'SimConfigError';
}

/** Fresh defaults (a new object each call, so callers may mutate the result). */
export function defaultConfig(): SimConfig {
  return {
    seed: 42,
    service_version: '5.26.0',
    api_version: '2',
    accounts: [
      {
        name: ADMIN_ACCOUNT,
        users: [{ username: 'admin', password: 'foobar' }],
        api_keys: [{ name: 'ci', value: 'ak-admin-secret' }],
      },
      { name: 'team-a', users: [{ username: 'team-a-user', password: 'team-a-pass' }], api_keys: [] },
    ],
    policies: {
      [ADMIN_ACCOUNT]: [
        { policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true },
        { policy_id: 'strict', name: 'Strict', active: false },
      ],
    },
    analysis: { queued_ms: 100, analyzing_ms: 300, fail_digests: [], fail_rate: 0 },
    token_ttl_seconds: 3600,
    refresh_token_ttl_seconds: 86400,
    integrations_enabled: true,
    error_shape: 'engine',
    openapi_missing: [],
    stored_evaluations: false,
    empty_full_tag_404: false,
    manifest_lists: {},
    reports_page_size: 3,
    inventory_ingest_overwrite: true,
    inventory_ttl_days: 120,
    strict: true,
  };
}

const KNOWN_KEYS = new Set(Object.keys(defaultConfig()));
const ANALYSIS_KEYS = new Set(['queued_ms', 'analyzing_ms', 'fail_digests', 'fail_rate']);
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(message: string): never {
  throw new SimConfigError(message);
}

function str(v: unknown, where: string, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) fail(`${where} must be a ${allowEmpty ? '' : 'non-empty '}string`);
  return v;
}

function num(v: unknown, where: string, min: number, max = Number.POSITIVE_INFINITY): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(`${where} must be a number in [${min}, ${max}]`);
  return v;
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') fail(`${where} must be true or false`);
  return v;
}

function strList(v: unknown, where: string): string[] {
  if (!Array.isArray(v)) fail(`${where} must be a list of strings`);
  return v.map((x, i) => str(x, `${where}[${i}]`));
}

function parseAccounts(v: unknown): SimAccount[] {
  if (!Array.isArray(v) || v.length === 0) fail('accounts must be a non-empty list');
  const names = new Set<string>();
  const usernames = new Set<string>();
  const keyValues = new Set<string>();
  return v.map((a, i): SimAccount => {
    const where = `accounts[${i}]`;
    if (!isObject(a)) fail(`${where} must be a mapping`);
    for (const k of Object.keys(a)) if (!['name', 'users', 'api_keys'].includes(k)) fail(`${where}: unknown key "${k}"`);
    const name = str(a.name, `${where}.name`);
    if (names.has(name)) fail(`${where}: duplicate account "${name}"`);
    names.add(name);
    if (!Array.isArray(a.users)) fail(`${where}.users must be a list`);
    const users = a.users.map((u, j): SimUser => {
      if (!isObject(u)) fail(`${where}.users[${j}] must be a mapping`);
      const username = str(u.username, `${where}.users[${j}].username`);
      if (username === '_api_key') fail(`${where}.users[${j}]: "_api_key" is reserved for API keys`);
      if (usernames.has(username)) fail(`${where}.users[${j}]: duplicate username "${username}"`);
      usernames.add(username);
      return { username, password: str(u.password, `${where}.users[${j}].password`) };
    });
    const apiKeysIn = a.api_keys ?? [];
    if (!Array.isArray(apiKeysIn)) fail(`${where}.api_keys must be a list`);
    const api_keys = apiKeysIn.map((k, j): SimApiKey => {
      if (!isObject(k)) fail(`${where}.api_keys[${j}] must be a mapping`);
      const value = str(k.value, `${where}.api_keys[${j}].value`);
      if (keyValues.has(value)) fail(`${where}.api_keys[${j}]: duplicate key value`);
      keyValues.add(value);
      const key: SimApiKey = { name: str(k.name, `${where}.api_keys[${j}].name`), value };
      if (k.username !== undefined) {
        key.username = str(k.username, `${where}.api_keys[${j}].username`);
        if (!users.some((u) => u.username === key.username)) fail(`${where}.api_keys[${j}]: user "${key.username}" is not in this account`);
      }
      return key;
    });
    return { name, users, api_keys };
  });
}

function parsePolicies(v: unknown, accounts: SimAccount[]): Record<string, SimPolicy[]> {
  if (!isObject(v)) fail('policies must be a mapping of account name to a list of policies');
  const out: Record<string, SimPolicy[]> = {};
  for (const [account, list] of Object.entries(v)) {
    if (!accounts.some((a) => a.name === account)) fail(`policies: unknown account "${account}"`);
    if (!Array.isArray(list)) fail(`policies.${account} must be a list`);
    const ids = new Set<string>();
    out[account] = list.map((p, i): SimPolicy => {
      const where = `policies.${account}[${i}]`;
      if (!isObject(p)) fail(`${where} must be a mapping`);
      const policy_id = str(p.policy_id, `${where}.policy_id`);
      if (ids.has(policy_id)) fail(`${where}: duplicate policy_id "${policy_id}"`);
      ids.add(policy_id);
      const policy: SimPolicy = { policy_id, name: str(p.name, `${where}.name`), active: p.active === undefined ? false : bool(p.active, `${where}.active`) };
      if (p.description !== undefined) policy.description = str(p.description, `${where}.description`, true);
      return policy;
    });
    if (out[account].filter((p) => p.active).length > 1) fail(`policies.${account}: more than one active policy`);
  }
  return out;
}

/**
 * Merges `input` over the defaults and validates the result.
 * @throws SimConfigError with a one-line message on any invalid or unknown key.
 */
export function resolveConfig(input: SimConfigInput = {}): SimConfig {
  if (!isObject(input)) fail('config must be a mapping');
  for (const k of Object.keys(input)) if (!KNOWN_KEYS.has(k)) fail(`unknown config key "${k}"`);
  const d = defaultConfig();
  const raw = input as Record<string, unknown>;
  const pick = <K extends keyof SimConfig>(k: K): unknown => (raw[k] === undefined ? d[k] : raw[k]);

  const accounts = parseAccounts(pick('accounts'));
  // The default policies name the default accounts; with custom accounts, keep only those that still exist.
  const policiesIn = raw.policies === undefined ? Object.fromEntries(Object.entries(d.policies).filter(([a]) => accounts.some((x) => x.name === a))) : raw.policies;

  const analysisIn = raw.analysis === undefined ? {} : raw.analysis;
  if (!isObject(analysisIn)) fail('analysis must be a mapping');
  for (const k of Object.keys(analysisIn)) if (!ANALYSIS_KEYS.has(k)) fail(`unknown config key "analysis.${k}"`);
  const a = { ...d.analysis, ...analysisIn };

  const errorShape = pick('error_shape');
  if (errorShape !== 'engine' && errorShape !== 'spec' && errorShape !== 'alternate') fail('error_shape must be one of engine, spec, alternate');

  const manifestLists = pick('manifest_lists');
  if (!isObject(manifestLists)) fail('manifest_lists must be a mapping of digest to digest');
  for (const [k, val] of Object.entries(manifestLists)) {
    if (!DIGEST_RE.test(k) || typeof val !== 'string' || !DIGEST_RE.test(val)) fail(`manifest_lists: "${k}" must map a sha256 digest to a sha256 digest`);
  }

  const seed = num(pick('seed'), 'seed', -2147483648, 4294967295);
  if (!Number.isInteger(seed)) fail('seed must be an integer');

  // Anchore's chart refuses anything but a whole number of days >= 1 (-1, "overwrite instead", is no longer valid).
  const inventoryTtlDays = num(pick('inventory_ttl_days'), 'inventory_ttl_days', 1);
  if (!Number.isInteger(inventoryTtlDays)) fail('inventory_ttl_days must be a whole number of days');

  return {
    seed,
    service_version: str(pick('service_version'), 'service_version'),
    api_version: str(pick('api_version'), 'api_version', true),
    accounts,
    policies: parsePolicies(policiesIn, accounts),
    analysis: {
      queued_ms: num(a.queued_ms, 'analysis.queued_ms', 0),
      analyzing_ms: num(a.analyzing_ms, 'analysis.analyzing_ms', 0),
      fail_digests: strList(a.fail_digests, 'analysis.fail_digests'),
      fail_rate: num(a.fail_rate, 'analysis.fail_rate', 0, 1),
    },
    token_ttl_seconds: num(pick('token_ttl_seconds'), 'token_ttl_seconds', 0),
    refresh_token_ttl_seconds: num(pick('refresh_token_ttl_seconds'), 'refresh_token_ttl_seconds', 0),
    integrations_enabled: bool(pick('integrations_enabled'), 'integrations_enabled'),
    error_shape: errorShape,
    openapi_missing: strList(pick('openapi_missing'), 'openapi_missing'),
    stored_evaluations: bool(pick('stored_evaluations'), 'stored_evaluations'),
    empty_full_tag_404: bool(pick('empty_full_tag_404'), 'empty_full_tag_404'),
    manifest_lists: { ...(manifestLists as Record<string, string>) },
    reports_page_size: num(pick('reports_page_size'), 'reports_page_size', 1),
    inventory_ingest_overwrite: bool(pick('inventory_ingest_overwrite'), 'inventory_ingest_overwrite'),
    inventory_ttl_days: inventoryTtlDays,
    strict: bool(pick('strict'), 'strict'),
  };
}

/**
 * Reads a YAML (or JSON, which is YAML) config file and validates it.
 * @throws SimConfigError when the file cannot be read, parsed or validated.
 */
export function loadConfigFile(path: string): SimConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    fail(`cannot parse config file ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return resolveConfig({});
  if (!isObject(parsed)) fail(`config file ${path} must contain a mapping`);
  try {
    return resolveConfig(parsed);
  } catch (err) {
    if (err instanceof SimConfigError) fail(`${path}: ${err.message}`);
    throw err;
  }
}
