import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { KubeError } from './errors.ts';
import { KubeEventRecorder } from './writer.ts';

const log = createLogger({ level: 'silent', pretty: false });

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function recorder(opts: { minIntervalMs?: number; repeatMs?: number; ratePerSecond?: number; burst?: number; maxBacklog?: number } = {}): {
  rec: KubeEventRecorder;
  bodies: Array<Record<string, unknown>>;
} {
  const bodies: Array<Record<string, unknown>> = [];
  const client = {
    request: async (_m: string, _p: string, o?: { body?: unknown }) => {
      bodies.push(o?.body as Record<string, unknown>);
      return undefined as never;
    },
  };
  return { rec: new KubeEventRecorder({ client, log, instance: 'pod-1', ...opts }), bodies };
}

const dep = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'shop' };

describe('KubeEventRecorder outcomes', () => {
  const capb = { apiVersion: 'anchore.io/v1alpha1', kind: 'ClusterAnchorePolicyBinding', name: 'prod' };

  it('when the object is cluster-scoped, then its Event goes to namespace default (the only one the apiserver accepts)', async () => {
    const paths: string[] = [];
    const bodies: Array<{ metadata: { namespace: string } }> = [];
    const client = {
      request: async (_m: string, p: string, o?: { body?: unknown }) => {
        paths.push(p);
        bodies.push(o?.body as never);
        return undefined as never;
      },
    };
    const rec = new KubeEventRecorder({ client, log, instance: 'pod-1' });
    rec.event(capb, 'Warning', 'PolicyFailed', 'Evaluate', 'x');
    await flush();
    expect(paths).toEqual(['/apis/events.k8s.io/v1/namespaces/default/events']);
    expect(bodies[0]?.metadata.namespace).toBe('default');
  });

  it('when the apiserver refuses an Event, then it is counted as rejected and logged with the cause, never silently lost', async () => {
    const lines: string[] = [];
    const warnLog = createLogger({ level: 'warn', pretty: false }, { write: (s: string) => void lines.push(s) });
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    let fail: 'reject' | 'down' | undefined = 'reject';
    const client = {
      request: async () => {
        if (fail === 'reject') throw new KubeError(422, 'Invalid', 'Event.events.k8s.io "prod.1" is invalid: metadata.namespace: does not match regarding');
        if (fail === 'down') throw new Error('ECONNRESET');
        return undefined as never;
      },
    };
    const rec = new KubeEventRecorder({ client, log: warnLog, instance: 'pod-1', metrics, minIntervalMs: 0, repeatMs: 0 });
    rec.event(capb, 'Warning', 'PolicyFailed', 'Evaluate', 'a');
    await flush();
    fail = 'down';
    rec.event(capb, 'Warning', 'PolicyFailed', 'Evaluate', 'b');
    await flush();
    fail = undefined;
    rec.event(capb, 'Warning', 'PolicyFailed', 'Evaluate', 'c');
    await flush();
    expect(rec.rejected).toBe(1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('anchore_operator_kube_events_total{result="rejected"} 1');
    expect(text).toContain('anchore_operator_kube_events_total{result="failed"} 1');
    expect(text).toContain('anchore_operator_kube_events_total{result="sent"} 1');
    expect(lines.filter((l) => l.includes('the apiserver refused a Kubernetes Event') && l.includes('does not match regarding'))).toHaveLength(1);
  });
});

describe('KubeEventRecorder', () => {
  it('when an event is recorded, then it is a valid events.k8s.io/v1 Event with MicroTime and a client-go style name', async () => {
    const { rec, bodies } = recorder();
    rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'nginx fails');
    await flush();
    const b = bodies[0] as { metadata: { name: string; namespace: string }; eventTime: string; reportingController: string; regarding: unknown };
    expect(b.metadata.name).toMatch(/^web\.[0-9a-f]+$/);
    expect(b.metadata.namespace).toBe('shop');
    expect(b.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(b.reportingController).toBe('anchore.io/anchore-operator');
    expect(b.regarding).toEqual(dep);
  });

  it('when the same object and reason fire repeatedly, then only one event per interval goes out', async () => {
    const { rec, bodies } = recorder({ minIntervalMs: 60_000 });
    for (let i = 0; i < 50; i++) rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', `note ${i}`);
    rec.event(dep, 'Normal', 'PolicyPassed', 'Evaluate', 'ok');
    rec.event({ ...dep, name: 'api' }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'x');
    await flush();
    expect(bodies).toHaveLength(3);
    expect(rec.suppressed).toBe(49);
  });

  it('when a cluster-scoped object is the subject, then the event goes to the configured namespace', async () => {
    const { rec, bodies } = recorder();
    rec.event({ apiVersion: 'anchore.io/v1alpha1', kind: 'ClusterAnchorePolicyBinding', name: 'prod' }, 'Normal', 'PolicyPassed', 'Evaluate', 'ok');
    await flush();
    expect((bodies[0] as { metadata: { namespace: string } }).metadata.namespace).toBe('default');
  });

  it('when hundreds of objects need an event at once, then every one is written, paced, none dropped', async () => {
    const { rec, bodies } = recorder({ ratePerSecond: 50, burst: 5 });
    for (let i = 0; i < 40; i++) rec.event({ ...dep, name: `web-${i}` }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'fails');
    await flush();
    expect(bodies.length).toBeLessThanOrEqual(5); // the burst; the rest wait for the pace
    expect(rec.backlog).toBeGreaterThanOrEqual(35);
    await new Promise((r) => setTimeout(r, 1200)); // 50/s: the other 35 follow within ~0.7 s
    expect(bodies.map((b) => (b['regarding'] as { name: string }).name)).toEqual(Array.from({ length: 40 }, (_, i) => `web-${i}`));
    expect(rec.dropped).toBe(0);
    expect(rec.backlog).toBe(0);
  });

  it('when a newer Event about the same object waits behind the pace, then it replaces the waiting one (coalesced, counted)', async () => {
    const { rec, bodies } = recorder({ ratePerSecond: 20, burst: 1, minIntervalMs: 0, repeatMs: 0 });
    rec.event({ ...dep, name: 'first' }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'x');
    rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'old');
    rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'new');
    await new Promise((r) => setTimeout(r, 300));
    expect(bodies.map((b) => b['note'])).toEqual(['x', 'new']);
    expect(rec.coalesced).toBe(1);
  });

  it('when the backlog holds maxBacklog distinct objects, then further Events are dropped, counted and logged', async () => {
    const { rec } = recorder({ ratePerSecond: 1, burst: 1, maxBacklog: 3 });
    for (let i = 0; i < 6; i++) rec.event({ ...dep, name: `web-${i}` }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'fails');
    expect(rec.dropped).toBe(3);
  });

  it('when Events already stand in the apiserver (seed), then an identical one is not written again, a changed one is', async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const gets: string[] = [];
    const standing = {
      reportingController: 'anchore.io/anchore-operator',
      reason: 'AnchorePolicyFailed',
      note: 'nginx fails',
      eventTime: new Date(Date.now() - 120_000).toISOString(),
      regarding: { kind: 'Deployment', namespace: 'shop', name: 'web' },
    };
    const other = { ...standing, reportingController: 'someone-else', regarding: { ...standing.regarding, name: 'api' } };
    const client = {
      request: async (m: string, p: string, o?: { body?: unknown }) => {
        if (m === 'GET') {
          gets.push(p);
          return (p.includes('continue=') ? { items: [{ ...standing, regarding: { ...standing.regarding, name: 'db' } }] } : { metadata: { continue: 'page2' }, items: [standing, other] }) as never;
        }
        bodies.push(o?.body as Record<string, unknown>);
        return undefined as never;
      },
    };
    const rec = new KubeEventRecorder({ client, log, instance: 'pod-2' });
    expect(await rec.seed()).toBe(2);
    expect(gets[0]).toContain('fieldSelector=reportingController%3Danchore.io%2Fanchore-operator');
    rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'nginx fails'); // stands: not again
    rec.event({ ...dep, name: 'db' }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'redis fails'); // changed: written
    rec.event({ ...dep, name: 'api' }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'nginx fails'); // not ours: written
    await flush();
    expect(bodies.map((b) => (b['regarding'] as { name: string }).name)).toEqual(['db', 'api']);
    expect(rec.suppressed).toBe(1);
  });

  it('when listing existing Events is refused, then seeding logs the cause and recording still works', async () => {
    const bodies: unknown[] = [];
    const client = {
      request: async (m: string, _p: string, o?: { body?: unknown }) => {
        if (m === 'GET') throw new KubeError(403, 'Forbidden', 'events.events.k8s.io is forbidden');
        bodies.push(o?.body);
        return undefined as never;
      },
    };
    const rec = new KubeEventRecorder({ client, log, instance: 'pod-2' });
    expect(await rec.seed()).toBe(0);
    rec.event(dep, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'x', { apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', name: 'b', namespace: 'shop' });
    await flush();
    expect(bodies).toHaveLength(1);
    expect((bodies[0] as { related: { name: string } }).related.name).toBe('b');
  });
});
