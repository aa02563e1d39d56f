import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { KubeApiError } from './client.ts';
import { KubeEventRecorder, microTime } from './writer.ts';

const log = createLogger({ level: 'silent', pretty: false });

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function recorder(opts: { minIntervalMs?: number; repeatMs?: number; ratePerSecond?: number; burst?: number; maxPending?: number } = {}): { rec: KubeEventRecorder; bodies: Array<Record<string, unknown>> } {
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
    const client = { request: async (_m: string, p: string, o?: { body?: unknown }) => { paths.push(p); bodies.push(o?.body as never); return undefined as never; } };
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
        if (fail === 'reject') throw new KubeApiError(422, 'Invalid', 'Event.events.k8s.io "prod.1" is invalid: metadata.namespace: does not match regarding');
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

  it('when hundreds of objects need an event at once, then writes are paced and the backlog beyond the cap is dropped and counted', async () => {
    const { rec, bodies } = recorder({ ratePerSecond: 5, burst: 2, maxPending: 4 });
    for (let i = 0; i < 10; i++) rec.event({ ...dep, name: `web-${i}` }, 'Warning', 'AnchorePolicyFailed', 'Evaluate', 'fails');
    await flush();
    expect(bodies).toHaveLength(2); // the burst
    expect(rec.dropped).toBe(6);
    await new Promise((r) => setTimeout(r, 600)); // 5/s: the other two of the four accepted follow
    expect(bodies.map((b) => (b['regarding'] as { name: string }).name)).toEqual(['web-0', 'web-1', 'web-2', 'web-3']);
  });

  it('when a time is formatted, then it has microsecond precision', () => {
    expect(microTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05.678000Z');
  });
});
