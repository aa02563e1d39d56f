import { describe, expect, it, jest } from '@jest/globals';
import { AnchoreError } from '../anchore/errors.ts';
import { FakeAnchore, anchoreError } from './fake-anchore.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const add = (a: FakeAnchore, digest: string, tag = 'docker.io/library/nginx:1.27') => a.addImage('admin', { tag, digestPullString: `docker.io/library/nginx@${digest}` });

describe('FakeAnchore', () => {
  it('when an image is added, then it is listed and got in that account only, analysed at once by default, and an add of a held digest adds its tag', async () => {
    const a = new FakeAnchore();
    expect(await add(a, D1)).toMatchObject({ image_digest: D1, analysis_status: 'analyzed', full_tags: ['docker.io/library/nginx:1.27'] });
    await add(a, D1, 'docker.io/library/nginx:latest');
    expect(await a.listImages('admin')).toEqual([expect.objectContaining({ image_digest: D1, full_tags: ['docker.io/library/nginx:1.27', 'docker.io/library/nginx:latest'] })]);
    expect(await a.listImages('admin', { fullTag: 'docker.io/library/nginx:latest' })).toHaveLength(1);
    expect(await a.listImages('admin', { fullTag: 'docker.io/library/redis:7' })).toHaveLength(0);
    expect(await a.listImages('team-a')).toEqual([]);
    await expect(a.getImage('team-a', D1)).rejects.toMatchObject({ kind: 'not-found', status: 404 });
    // Answers are copies: a caller cannot change what Anchore holds.
    (await a.getImage('admin', D1)).full_tags.push('x');
    expect((await a.getImage('admin', D1)).full_tags).toHaveLength(2);
  });

  it('when analysis takes time, then the image is not_analyzed until then (fake timers), and checks say not-found meanwhile', async () => {
    jest.useFakeTimers();
    try {
      const a = new FakeAnchore();
      a.analysisMs = 1000;
      expect((await add(a, D1)).analysis_status).toBe('not_analyzed');
      await expect(a.checkImage('admin', D1, 'docker.io/library/nginx:1.27')).rejects.toMatchObject({ kind: 'not-found' });
      await jest.advanceTimersByTimeAsync(1000);
      expect((await a.getImage('admin', D1)).analysis_status).toBe('analyzed');
      a.analysisMs = undefined;
      expect((await add(a, D2)).analysis_status).toBe('not_analyzed');
      a.analyze('admin', D2, 'analysis_failed');
      expect((await a.getImage('admin', D2)).analysis_status).toBe('analysis_failed');
    } finally {
      jest.useRealTimers();
    }
  });

  it('when a verdict is set, then checks of the image answer it against the active policy or the one named; an unknown policy is not-found', async () => {
    const a = new FakeAnchore({
      images: { admin: [{ image_digest: D1 }, { image_digest: D2 }] },
      policies: {
        admin: [
          { policy_id: 'p1', name: 'Strict', active: true },
          { policy_id: 'p2', name: 'Lax', active: false },
        ],
      },
    });
    a.verdicts.set(D1, { status: 'fail', findings: [{ gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: 'CVE-1' }] });
    expect(await a.checkImage('admin', D1, 'docker.io/x:1')).toMatchObject({
      policy_id: 'p1',
      image_digest: D1,
      evaluated_tag: 'docker.io/x:1',
      status: 'fail',
      final_action: 'stop',
      number_of_findings: 1,
    });
    expect(await a.checkImage('admin', D2, 'docker.io/x:2', 'p2')).toMatchObject({ policy_id: 'p2', status: 'pass', final_action: 'go', number_of_findings: 0 });
    await expect(a.checkImage('admin', D2, 'docker.io/x:2', 'nope')).rejects.toMatchObject({ kind: 'not-found' });
    expect(await a.getPolicy('admin', 'p2')).toMatchObject({ name: 'Lax' });
    await expect(a.getPolicy('admin', 'nope')).rejects.toMatchObject({ kind: 'not-found' });
    expect(await a.listPolicies('team-a')).toEqual([]);
  });

  it('when failures are injected, then the next calls of that operation throw them in order, then it answers again; down() lasts until heal()', async () => {
    const a = new FakeAnchore();
    const custom = new Error('boom');
    a.fail('listImages', 'unavailable', 2);
    a.fail('listImages', custom);
    const seen: unknown[] = [];
    for (let i = 0; i < 4; i++) seen.push(await a.listImages('admin').catch((e: unknown) => e));
    expect(seen[0]).toBeInstanceOf(AnchoreError);
    expect(seen[0]).toMatchObject({ kind: 'unavailable', status: 503, operation: 'listImages' });
    expect(seen[1]).toMatchObject({ kind: 'unavailable' });
    expect(seen[2]).toBe(custom);
    expect(seen[3]).toEqual([]);
    // Other operations are not affected.
    a.down('checkImage', 'auth');
    await expect(a.listPolicies('admin')).resolves.toEqual([]);
    for (let i = 0; i < 3; i++) await expect(a.checkImage('admin', D1, 't')).rejects.toMatchObject({ kind: 'auth', status: 401 });
    a.heal();
    await expect(a.checkImage('admin', D1, 't')).rejects.toMatchObject({ kind: 'not-found' });
    // A function of the call.
    a.fail('getImage', (c) => anchoreError('rejected', c.op, `refused ${c.subject}`));
    await expect(a.getImage('admin', D2)).rejects.toMatchObject({ kind: 'rejected', message: `refused ${D2}` });
  });

  it('when accounts are listed, then a call for another account throws account-not-found', async () => {
    const a = new FakeAnchore({ accounts: ['admin'] });
    await expect(a.listImages('admin')).resolves.toEqual([]);
    await expect(a.postKubernetesInventory('team-aa', { cluster_name: 'c', timestamp: 't', namespaces: [], nodes: [], pods: [], containers: [] })).rejects.toMatchObject({
      kind: 'account-not-found',
      status: 404,
    });
    expect(a.inventories).toEqual([]);
  });

  it('records every call, and what was posted: inventories, registrations, health reports', async () => {
    const a = new FakeAnchore();
    await a.postKubernetesInventory('admin', { cluster_name: 'c1', timestamp: 't', namespaces: [{ uid: 'u', name: 'shop' }], nodes: [], pods: [], containers: [] });
    const uuid = await a.registerIntegration('admin', {
      registration_id: 'reg-1',
      registration_instance_id: 'pod-1',
      type: 'k8s_inventory_agent',
      name: 'n',
      version: '1',
      started_at: 't',
      uptime: 0,
      username: 'admin',
      explicitly_account_bound: [],
      namespaces: [],
      cluster_name: 'c1',
      health_report_interval: 30,
    });
    await a.sendHealthReport('admin', uuid, { uptime: 1, health_report_interval: 30, errors: [], accounts: {} });
    await a.listImages('admin').catch(() => undefined);
    expect(a.inventories).toEqual([{ account: 'admin', inventory: expect.objectContaining({ cluster_name: 'c1' }) }]);
    expect(a.registrations[0]?.registration.registration_id).toBe('reg-1');
    expect(a.healthReports).toEqual([{ account: 'admin', uuid, report: expect.objectContaining({ uptime: 1 }) }]);
    expect(a.calls.map((c) => c.op)).toEqual(['postKubernetesInventory', 'registerIntegration', 'sendHealthReport', 'listImages']);
    expect(a.callsOf('sendHealthReport', 'admin')).toEqual([{ op: 'sendHealthReport', account: 'admin', subject: uuid }]);
  });

  it('answers vulnerabilities of held images and the Reports API from its tables', async () => {
    const a = new FakeAnchore({ images: { admin: [{ image_digest: D1 }] } });
    a.vulns.set(D1, [{ id: 'CVE-1', severity: 'High', package: 'openssl' }]);
    expect(await a.vulnerabilities('admin', D1)).toEqual([{ id: 'CVE-1', severity: 'High', package: 'openssl' }]);
    await expect(a.vulnerabilities('admin', D2)).rejects.toMatchObject({ kind: 'not-found' });
    a.reportCatalog.push({ id: 'm1', name: 'M1', metricType: 'gauge' });
    a.reportPoints.set('m1', [
      { collectedAt: '2026-01-01T00:00:00Z', value: 1 },
      { collectedAt: '2026-01-02T00:00:00Z', value: 2 },
    ]);
    expect(await a.reportMetrics('admin')).toEqual([{ id: 'm1', name: 'M1', metricType: 'gauge' }]);
    expect(await a.reportMetricData('admin', 'm1', new Date('2026-01-01T12:00:00Z'), new Date('2026-01-03T00:00:00Z'))).toEqual([{ collectedAt: '2026-01-02T00:00:00Z', value: 2 }]);
    await expect(a.reportMetricData('admin', 'nope', new Date(0), new Date())).rejects.toMatchObject({ kind: 'not-found' });
  });
});
