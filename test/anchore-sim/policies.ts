// Policies per account, exactly one active each (unless an account is configured with none).
import { DEFAULT_POLICY_ID } from './config.ts';
import { isoSeconds } from './images.ts';
import type { SimConfig, SimPolicy } from './types.ts';

interface PolicyEntry {
  policy: SimPolicy;
  createdAt: number;
}

/** Policy records as the API serves them. */
export class PolicyStore {
  private readonly byAccount = new Map<string, PolicyEntry[]>();
  private readonly config: SimConfig;
  private readonly startedAt: number;

  constructor(config: SimConfig, now: () => number) {
    this.config = config;
    this.startedAt = now();
    this.reset();
  }

  /** Back to the configured policies and active flags. */
  reset(): void {
    this.byAccount.clear();
    for (const a of this.config.accounts) {
      const configured = this.config.policies[a.name];
      const list = configured === undefined ? [{ policy_id: DEFAULT_POLICY_ID, name: 'Default bundle', active: true }] : configured.map((p) => ({ ...p, active: p.active === true }));
      if (list.length > 0 && !list.some((p) => p.active)) list[0]!.active = true;
      this.byAccount.set(
        a.name,
        list.map((policy) => ({ policy, createdAt: this.startedAt })),
      );
    }
  }

  find(account: string, policyId: string): SimPolicy | undefined {
    return this.byAccount.get(account)?.find((e) => e.policy.policy_id === policyId)?.policy;
  }

  active(account: string): SimPolicy | undefined {
    return this.byAccount.get(account)?.find((e) => e.policy.active === true)?.policy;
  }

  /**
   * Makes `policyId` the account's only active policy.
   * @throws Error when the account or policy is unknown.
   */
  setActive(account: string, policyId: string): void {
    const list = this.byAccount.get(account);
    if (list === undefined) throw new Error(`unknown account "${account}"`);
    if (!list.some((e) => e.policy.policy_id === policyId)) throw new Error(`unknown policy "${policyId}" in account "${account}"`);
    for (const e of list) e.policy.active = e.policy.policy_id === policyId;
  }

  /** Deletes a policy (an admin removing it in Anchore); false when there was none. */
  remove(account: string, policyId: string): boolean {
    const list = this.byAccount.get(account);
    const i = list?.findIndex((e) => e.policy.policy_id === policyId) ?? -1;
    if (list === undefined || i < 0) return false;
    list.splice(i, 1);
    return true;
  }

  /**
   * Adds (or replaces) a policy, inactive unless `active` is set (then the only active one).
   * @throws Error for an unknown account.
   */
  put(account: string, policy: SimPolicy): void {
    const list = this.byAccount.get(account);
    if (list === undefined) throw new Error(`unknown account "${account}"`);
    const i = list.findIndex((e) => e.policy.policy_id === policy.policy_id);
    const entry = { policy: { ...policy, active: false }, createdAt: this.startedAt };
    if (i >= 0) list[i] = entry;
    else list.push(entry);
    if (policy.active === true) this.setActive(account, policy.policy_id);
  }

  /** PolicyRecord objects for GET /v2/policies. */
  records(account: string, detail: boolean): Array<Record<string, unknown>> {
    return (this.byAccount.get(account) ?? []).map((e) => this.record(account, e, detail));
  }

  /** One PolicyRecord, or undefined. */
  recordOf(account: string, policyId: string, detail: boolean): Record<string, unknown> | undefined {
    const e = this.byAccount.get(account)?.find((x) => x.policy.policy_id === policyId);
    return e === undefined ? undefined : this.record(account, e, detail);
  }

  private record(account: string, e: PolicyEntry, detail: boolean): Record<string, unknown> {
    const ts = isoSeconds(e.createdAt);
    return {
      policy_id: e.policy.policy_id,
      name: e.policy.name,
      description: e.policy.description ?? `${e.policy.name} (simulated)`,
      active: e.policy.active === true,
      account_name: account,
      policy_source: 'local',
      created_at: ts,
      last_updated: ts,
      policy: detail ? policyDocument(e.policy, e.createdAt) : null,
    };
  }
}

/**
 * A small but well-formed policy document (the `policy` member of a PolicyRecord and of evaluation details). Rule
 * actions are upper-case and `last_updated` is a number (epoch seconds), as the spec's Policy schema has them.
 */
export function policyDocument(p: SimPolicy, lastUpdatedMs: number): Record<string, unknown> {
  const ruleSetId = `${p.policy_id}-rules`;
  return {
    id: p.policy_id,
    name: p.name,
    version: '2',
    description: p.description ?? `${p.name} (simulated)`,
    last_updated: Math.floor(lastUpdatedMs / 1000),
    rule_sets: [
      {
        id: ruleSetId,
        name: `${p.name} rules`,
        version: '2',
        rules: [
          {
            id: `${p.policy_id}-crit`,
            gate: 'vulnerabilities',
            trigger: 'package',
            action: 'STOP',
            params: [
              { name: 'severity', value: 'high' },
              { name: 'severity_comparison', value: '>=' },
            ],
          },
          {
            id: `${p.policy_id}-med`,
            gate: 'vulnerabilities',
            trigger: 'package',
            action: 'WARN',
            params: [
              { name: 'severity', value: 'medium' },
              { name: 'severity_comparison', value: '=' },
            ],
          },
        ],
      },
    ],
    allowlists: [],
    allowlisted_images: [],
    denylisted_images: [],
    mappings: [{ id: `${p.policy_id}-map`, name: 'default', registry: '*', repository: '*', image: { type: 'tag', value: '*' }, rule_set_ids: [ruleSetId], allowlist_ids: [] }],
  };
}
