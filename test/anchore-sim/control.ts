// Control endpoints under /_sim for out-of-process users (CLI, demo, e2e). They need no Anchore auth, are never
// faulted and never recorded, and are not part of the Anchore API.
import type { SimulatorCore } from './core.ts';
import { faultRuleToJson, FaultRuleError, parseFaultRules } from './faults.ts';
import { isDigest } from './refs.ts';
import type { Reply } from './routes.ts';
import type { AnchoreSimulator, VerdictOverride, VulnerabilityInput } from './types.ts';

function fail(status: number, message: string): Reply {
  return { status, json: { message } };
}

function parseJson(raw: Buffer): { ok: true; value: unknown } | { ok: false } {
  if (raw.length === 0) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Handles a /_sim request. */
export function handleControl(sim: AnchoreSimulator, core: SimulatorCore, method: string, path: string, query: Record<string, string>, raw: Buffer): Reply {
  const parts = path
    .split('/')
    .slice(2)
    .map((p) => decodeURIComponent(p));
  const [head, second, third] = parts;
  const body = parseJson(raw);
  if (!body.ok) return fail(400, 'request body is not valid JSON');

  if (head === 'requests' && parts.length === 1) {
    if (method === 'GET') {
      const since = query.since === undefined ? undefined : Number(query.since);
      let pathFilter: string | RegExp | undefined = query.path;
      if (pathFilter?.startsWith('re:') === true) {
        try {
          pathFilter = new RegExp(pathFilter.slice(3));
        } catch (err) {
          return fail(400, `invalid path pattern: ${(err as Error).message}`);
        }
      }
      const filter: Parameters<typeof core.log.list>[0] = {};
      if (query.method !== undefined) filter.method = query.method;
      if (pathFilter !== undefined) filter.path = pathFilter;
      if (query.account !== undefined) filter.account = query.account;
      if (since !== undefined && Number.isFinite(since)) filter.sinceSeq = since;
      return { status: 200, json: core.log.list(filter) };
    }
    if (method === 'DELETE') {
      sim.clearRequests();
      return { status: 204 };
    }
  }

  if (head === 'faults' && parts.length === 1) {
    if (method === 'GET') return { status: 200, json: core.faults.list().map(faultRuleToJson) };
    if (method === 'PUT') {
      try {
        const rules = parseFaultRules(body.value);
        sim.setFaults(rules);
        return { status: 200, json: { rules: rules.length } };
      } catch (err) {
        if (err instanceof FaultRuleError) return fail(400, err.message);
        throw err;
      }
    }
    if (method === 'DELETE') {
      sim.clearFaults();
      return { status: 204 };
    }
  }

  if (head === 'state' && parts.length === 1 && method === 'GET') {
    const accounts: Record<string, unknown> = {};
    for (const name of core.auth.accountNames()) {
      const reports = core.inventory.reports(name);
      const last = reports.at(-1);
      accounts[name] = {
        images: sim.images(name),
        inventories: reports.length,
        last_inventory:
          last === undefined
            ? null
            : {
                received_at: new Date(last.receivedAt).toISOString(),
                bytes: last.bytes,
                cluster_name: last.body.cluster_name,
                timestamp: last.body.timestamp,
                namespaces: last.body.namespaces?.length ?? 0,
                pods: last.body.pods?.length ?? 0,
                containers: last.body.containers?.length ?? 0,
              },
      };
    }
    return { status: 200, json: { accounts, integrations: sim.integrations() } };
  }

  if (head === 'config' && parts.length === 1 && method === 'GET') return { status: 200, json: core.config };

  if (head === 'clock' && parts.length === 1) {
    const clock = (): Reply => ({ status: 200, json: { now: new Date(core.now()).toISOString(), offset_ms: core.clockOffsetMs } });
    if (method === 'GET') return clock();
    if (method === 'POST') {
      const v = body.value;
      const keys = isObject(v) ? Object.keys(v) : [];
      if (!isObject(v) || keys.length !== 1 || !['advance_ms', 'advance_days'].includes(keys[0]!)) return fail(400, 'body must be {"advance_ms": n} or {"advance_days": n}');
      const n = v[keys[0]!];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return fail(400, `${keys[0]} must be a number >= 0 (the clock only moves forward)`);
      core.advanceClock(keys[0] === 'advance_days' ? n * 86_400_000 : n);
      return clock();
    }
  }

  if (head === 'reset' && parts.length === 1 && method === 'POST') {
    sim.reset();
    return { status: 204 };
  }

  if ((head === 'verdicts' || head === 'vulnerabilities') && parts.length === 2 && second !== undefined) {
    if (!isDigest(second)) return fail(400, `not a sha256 digest: ${second}`);
    if (head === 'verdicts' && (method === 'PUT' || method === 'DELETE')) {
      const v = method === 'DELETE' || body.value === null ? undefined : body.value;
      if (v !== undefined && !isObject(v)) return fail(400, 'verdict must be an object {status, final_action, findings?} or null');
      try {
        sim.setVerdict(second, v as VerdictOverride | undefined, query.account);
      } catch (err) {
        return fail(400, (err as Error).message);
      }
      return { status: 204 };
    }
    if (head === 'vulnerabilities' && (method === 'PUT' || method === 'DELETE')) {
      const v = method === 'DELETE' || body.value === null ? undefined : body.value;
      if (v !== undefined && (!Array.isArray(v) || !v.every((x) => isObject(x) && typeof x.vuln === 'string' && typeof x.severity === 'string'))) {
        return fail(400, 'vulnerabilities must be an array of {vuln, severity, fix?, package?, package_type?, will_not_fix?} or null');
      }
      sim.setVulnerabilities(second, v as VulnerabilityInput[] | undefined);
      return { status: 204 };
    }
  }

  if (head === 'tokens' && second === 'expire' && parts.length === 2 && method === 'POST') {
    sim.expireTokens({ includeRefresh: query.include_refresh === 'true' });
    return { status: 204 };
  }

  if (head === 'users' && second !== undefined && third === 'revoke' && parts.length === 3 && method === 'POST') {
    sim.revokeCredentials(second);
    return { status: 204 };
  }

  if (head === 'accounts' && second !== undefined && third === 'active-policy' && parts.length === 3 && method === 'PUT') {
    const policyId = isObject(body.value) ? body.value.policy_id : undefined;
    if (typeof policyId !== 'string') return fail(400, 'body must be {"policy_id": "..."}');
    try {
      sim.setActivePolicy(second, policyId);
    } catch (err) {
      return fail(404, (err as Error).message);
    }
    return { status: 204 };
  }

  return fail(404, `unknown control endpoint: ${method} ${path}`);
}
