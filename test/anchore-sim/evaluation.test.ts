import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DEFAULT_POLICY_ID, SEVERITIES, startSimulator } from './index.ts';
import type { AnchoreSimulator } from './index.ts';
import { TEAM_A, call, digestOf, digestSource } from './test-client.ts';

let sim: AnchoreSimulator;

beforeAll(async () => {
  // Instant analysis, except for one digest that stays queued, so "not analyzed" is easy to produce.
  sim = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => sim.reset());

async function addAnalyzed(target: AnchoreSimulator, digest: string, tag = 'nginx:1'): Promise<void> {
  const res = await call(target.url, 'POST', '/v2/images', { json: digestSource('nginx', digest, tag) });
  expect(res.body.analysis_status).toBe('analyzed');
}

function hex(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

describe('vulnerabilities', () => {
  it('when listing vulnerability types, then all, os and non-os are offered', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const res = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln`);
    expect(res.body).toEqual(['all', 'os', 'non-os']);
  });

  it('when the same digest is queried in two simulators with the same seed, then the vulnerabilities are identical', async () => {
    const twin = await startSimulator({ config: { analysis: { queued_ms: 0, analyzing_ms: 0 } } });
    try {
      await addAnalyzed(sim, digestOf('a'));
      await addAnalyzed(twin, digestOf('a'));
      const strip = (b: any): unknown => b.vulnerabilities.map((v: any) => [v.vuln, v.severity, v.package, v.fix, v.will_not_fix]);
      const here = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/all?vendor_only=false`);
      const there = await call(twin.url, 'GET', `/v2/images/${digestOf('a')}/vuln/all?vendor_only=false`);
      expect(strip(here.body)).toEqual(strip(there.body));
    } finally {
      await twin.stop();
    }
  });

  it('when vulnerabilities are generated, then severities, fixes and will_not_fix are all represented across images', async () => {
    const all: any[] = [];
    for (let i = 1; i <= 15; i++) {
      await addAnalyzed(sim, hex(i));
      all.push(...(await call(sim.url, 'GET', `/v2/images/${hex(i)}/vuln/all?vendor_only=false`)).body.vulnerabilities);
    }
    expect(new Set(all.map((v) => v.severity))).toEqual(new Set(SEVERITIES));
    expect(all.some((v) => v.fix !== 'None')).toBe(true);
    expect(all.some((v) => v.fix === 'None')).toBe(true);
    expect(all.some((v) => v.will_not_fix)).toBe(true);
  });

  it('when vendor_only is left at its default, then will_not_fix findings are hidden', async () => {
    let digest: string | undefined;
    for (let i = 1; i <= 40 && digest === undefined; i++) {
      await addAnalyzed(sim, hex(i));
      const everything = (await call(sim.url, 'GET', `/v2/images/${hex(i)}/vuln/all?vendor_only=false`)).body.vulnerabilities;
      if (everything.some((v: any) => v.will_not_fix)) digest = hex(i);
    }
    expect(digest).toBeDefined();
    const all = (await call(sim.url, 'GET', `/v2/images/${digest}/vuln/all?vendor_only=false`)).body.vulnerabilities;
    const vendor = (await call(sim.url, 'GET', `/v2/images/${digest}/vuln/all`)).body.vulnerabilities;
    expect(vendor.length).toBeLessThan(all.length);
    expect(vendor.every((v: any) => !v.will_not_fix)).toBe(true);
  });

  it('when filtering by os and non-os, then the two parts make up all', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const get = async (t: string): Promise<any[]> => (await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/${t}`)).body.vulnerabilities;
    const [all, os, nonOs] = [await get('all'), await get('os'), await get('non-os')];
    expect(os.length + nonOs.length).toBe(all.length);
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/all`)).body.vulnerability_type).toBe('all');
  });

  it('when the vuln type is unknown, then 400', async () => {
    await addAnalyzed(sim, digestOf('a'));
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/kernel`)).status).toBe(400);
  });

  it('when the image is not analyzed yet, then 404 "image is not analyzed"', async () => {
    const slow = await startSimulator({ config: { analysis: { queued_ms: 60_000, analyzing_ms: 0 } } });
    try {
      await call(slow.url, 'POST', '/v2/images', { json: digestSource('nginx', digestOf('a'), 'nginx:1') });
      for (const path of [`/v2/images/${digestOf('a')}/vuln/all`, `/v2/images/${digestOf('a')}/check?tag=nginx:1`]) {
        const res = await call(slow.url, 'GET', path);
        expect(res.status).toBe(404);
        expect(res.body.message).toContain('image is not analyzed');
      }
    } finally {
      await slow.stop();
    }
  });

  it('when setVulnerabilities is used, then exactly those vulnerabilities are served', async () => {
    await addAnalyzed(sim, digestOf('a'));
    sim.setVulnerabilities(digestOf('a'), [
      { vuln: 'CVE-2024-0001', severity: 'Critical', fix: '3.0.14', package: 'openssl-3.0.13' },
      { vuln: 'GHSA-xxxx', severity: 'Low', package: 'lodash-4.17.20', package_type: 'npm' },
    ]);
    const res = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/all`);
    expect(res.body.vulnerabilities.map((v: any) => [v.vuln, v.severity, v.package_name, v.package_version, v.fix])).toEqual([
      ['CVE-2024-0001', 'Critical', 'openssl', '3.0.13', '3.0.14'],
      ['GHSA-xxxx', 'Low', 'lodash', '4.17.20', 'None'],
    ]);
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/vuln/os`)).body.vulnerabilities).toHaveLength(1);
  });
});

describe('policy check', () => {
  it('when checking, then a PolicyEvaluation for the active policy is returned', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const res = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ policy_id: DEFAULT_POLICY_ID, image_digest: digestOf('a'), evaluated_tag: 'docker.io/nginx:1' });
    expect(res.body.evaluations).toHaveLength(1);
    const ev = res.body.evaluations[0];
    expect(ev).toMatchObject({
      status: expect.stringMatching(/^(pass|fail)$/),
      final_action: expect.stringMatching(/^(go|warn|stop)$/),
      final_action_reason: 'policy_evaluation',
      image_allowlisted: false,
      image_denylisted: false,
      image_mapped_to_rule: true,
      evaluation_problems: [],
    });
    expect(ev.number_of_findings).toBe(ev.details.findings.length);
    expect(ev.details.policy.id).toBe(DEFAULT_POLICY_ID);
  });

  it('when checking the same image twice, then the verdict is the same (deterministic)', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const verdict = async (): Promise<unknown> => {
      const ev = (await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1&interactive=true`)).body.evaluations[0];
      return [ev.status, ev.final_action, ev.details.findings];
    };
    expect(await verdict()).toEqual(await verdict());
  });

  it('when many images are checked, then the verdict mix is mostly go with some warn and stop, and findings agree', async () => {
    const counts: Record<string, number> = { go: 0, warn: 0, stop: 0 };
    for (let i = 1; i <= 100; i++) {
      await addAnalyzed(sim, hex(i));
      const ev = (await call(sim.url, 'GET', `/v2/images/${hex(i)}/check?tag=nginx:1`)).body.evaluations[0];
      counts[ev.final_action]!++;
      expect(ev.status).toBe(ev.final_action === 'stop' ? 'fail' : 'pass');
      expect(ev.details.findings.every((f: any) => f.action === ev.final_action)).toBe(true);
      expect(ev.number_of_findings > 0).toBe(ev.final_action !== 'go');
    }
    expect(counts.go).toBeGreaterThan(50);
    expect(counts.warn).toBeGreaterThan(3);
    expect(counts.stop).toBeGreaterThan(3);
  });

  it('when setVerdict overrides a digest, then /check reports it, and clearing restores the generated verdict', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const url = `/v2/images/${digestOf('a')}/check?tag=nginx:1`;
    const before = (await call(sim.url, 'GET', url)).body.evaluations[0].final_action;
    const forced = before === 'stop' ? ({ status: 'pass', final_action: 'go', findings: 0 } as const) : ({ status: 'fail', final_action: 'stop', findings: 4 } as const);
    sim.setVerdict(digestOf('a'), forced);
    const after = (await call(sim.url, 'GET', url)).body.evaluations[0];
    expect([after.status, after.final_action, after.number_of_findings]).toEqual([forced.status, forced.final_action, forced.findings]);
    sim.setVerdict(digestOf('a'), undefined);
    expect((await call(sim.url, 'GET', url)).body.evaluations[0].final_action).toBe(before);
  });

  it('when setVerdict names an account, then only that account sees it', async () => {
    await addAnalyzed(sim, digestOf('a'));
    await call(sim.url, 'POST', '/v2/images', { auth: TEAM_A, json: digestSource('nginx', digestOf('a'), 'nginx:1') });
    sim.setVerdict(digestOf('a'), { status: 'fail', final_action: 'stop', findings: 1 }, 'team-a');
    sim.setVerdict(digestOf('a'), { status: 'pass', final_action: 'warn', findings: 2 }, 'admin');
    const a = (await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`, { auth: TEAM_A })).body.evaluations[0];
    const admin = (await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`)).body.evaluations[0];
    expect(a.final_action).toBe('stop');
    expect(admin.final_action).toBe('warn');
  });

  it('when tag is missing, then 400', async () => {
    await addAnalyzed(sim, digestOf('a'));
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check`)).status).toBe(400);
  });

  it('when the policy_id is unknown, then 404; when it is known, then that policy is evaluated', async () => {
    await addAnalyzed(sim, digestOf('a'));
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1&policy_id=nope`)).status).toBe(404);
    const strict = await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1&policy_id=strict`);
    expect(strict.body.policy_id).toBe('strict');
  });

  it('when the active policy changes, then /check without policy_id uses it', async () => {
    await addAnalyzed(sim, digestOf('a'));
    sim.setActivePolicy('admin', 'strict');
    expect((await call(sim.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`)).body.policy_id).toBe('strict');
    const policies = (await call(sim.url, 'GET', '/v2/policies')).body;
    expect(policies.filter((p: any) => p.active).map((p: any) => p.policy_id)).toEqual(['strict']);
  });

  it('when detail=false, then details is null; when history=true, then earlier evaluations are included', async () => {
    await addAnalyzed(sim, digestOf('a'));
    const base = `/v2/images/${digestOf('a')}/check?tag=nginx:1`;
    expect((await call(sim.url, 'GET', `${base}&detail=false`)).body.evaluations[0].details).toBeNull();
    const hist = await call(sim.url, 'GET', `${base}&history=true`);
    expect(hist.body.evaluations).toHaveLength(2);
  });

  it('when stored_evaluations is on, then only interactive=true evaluates and otherwise 404 until one exists', async () => {
    const stored = await startSimulator({ config: { stored_evaluations: true, analysis: { queued_ms: 0, analyzing_ms: 0 } } });
    try {
      await addAnalyzed(stored, digestOf('a'));
      const base = `/v2/images/${digestOf('a')}/check?tag=nginx:1`;
      expect((await call(stored.url, 'GET', base)).status).toBe(404);
      const first = await call(stored.url, 'GET', `${base}&interactive=true`);
      expect(first.status).toBe(200);
      const forced = first.body.evaluations[0].final_action === 'stop' ? ({ status: 'pass', final_action: 'go' } as const) : ({ status: 'fail', final_action: 'stop' } as const);
      stored.setVerdict(digestOf('a'), forced);
      const cached = (await call(stored.url, 'GET', base)).body.evaluations[0];
      expect(cached).toEqual(first.body.evaluations[0]);
      const fresh = (await call(stored.url, 'GET', `${base}&interactive=true`)).body.evaluations[0];
      expect(fresh.final_action).toBe(forced.final_action);
    } finally {
      await stored.stop();
    }
  });

  it('when an account has no policy at all, then /check without policy_id answers 404', async () => {
    const none = await startSimulator({ config: { policies: { 'team-a': [] }, analysis: { queued_ms: 0, analyzing_ms: 0 } } });
    try {
      await call(none.url, 'POST', '/v2/images', { auth: TEAM_A, json: digestSource('nginx', digestOf('a'), 'nginx:1') });
      const res = await call(none.url, 'GET', `/v2/images/${digestOf('a')}/check?tag=nginx:1`, { auth: TEAM_A });
      expect(res.status).toBe(404);
    } finally {
      await none.stop();
    }
  });
});

describe('policies', () => {
  it('when listing policies, then a bare array of PolicyRecords with exactly one active is returned', async () => {
    const res = await call(sim.url, 'GET', '/v2/policies');
    expect(Array.isArray(res.body)).toBe(true);
    expect(res.body.map((p: any) => [p.policy_id, p.active, p.account_name])).toEqual([
      [DEFAULT_POLICY_ID, true, 'admin'],
      ['strict', false, 'admin'],
    ]);
  });

  it('when getting a policy, then its record (with the document) or 404 is returned', async () => {
    const res = await call(sim.url, 'GET', '/v2/policies/strict');
    expect(res.body).toMatchObject({ policy_id: 'strict', name: 'Strict', policy: { id: 'strict' } });
    expect((await call(sim.url, 'GET', '/v2/policies/nope')).status).toBe(404);
  });

  it('when an account has no configured policies, then it gets the default bundle', async () => {
    const res = await call(sim.url, 'GET', '/v2/policies', { auth: TEAM_A });
    expect(res.body.map((p: any) => [p.policy_id, p.active, p.account_name])).toEqual([[DEFAULT_POLICY_ID, true, 'team-a']]);
  });
});
