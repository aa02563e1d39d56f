import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { systemClock } from '../runtime/clock.ts';
import { createLogger } from '../telemetry/logger.ts';
import { OperatorMetrics } from '../telemetry/metrics.ts';
import { AnchoreReachability } from './reachability.ts';

const log = createLogger({ level: 'silent', pretty: false });

describe('AnchoreReachability', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('when a call finds Anchore unavailable, then it probes every interval until a probe answers, then reports recovery once', async () => {
    let up = false;
    const probe = jest.fn(async () => {
      if (!up) throw new Error('ECONNREFUSED');
    });
    const recovered: number[] = [];
    const r = new AnchoreReachability({ probe, probeMs: 5_000, onRecovered: (ms) => recovered.push(ms), log, clock: systemClock });
    r.observe({ status: 0, errorKind: 'unavailable' });
    r.observe({ status: 503, errorKind: 'unavailable' });
    expect(r.down).toBe(true);
    await jest.advanceTimersByTimeAsync(15_000);
    expect(probe).toHaveBeenCalledTimes(3);
    up = true;
    await jest.advanceTimersByTimeAsync(5_000);
    expect(recovered).toEqual([20_000]);
    expect(r.down).toBe(false);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(probe).toHaveBeenCalledTimes(4);
    r.stop();
  });

  it('when an ordinary call succeeds while down, then that is the recovery (no wait for the probe)', async () => {
    const recovered: number[] = [];
    const r = new AnchoreReachability({ probe: async () => Promise.reject(new Error('x')), probeMs: 5_000, onRecovered: (ms) => recovered.push(ms), log, clock: systemClock });
    r.observe({ status: 0, errorKind: 'unavailable' });
    await jest.advanceTimersByTimeAsync(1_000);
    r.observe({ status: 200 });
    expect(recovered).toEqual([1_000]);
    r.observe({ status: 200 });
    expect(recovered).toHaveLength(1);
    r.stop();
  });

  it('when errors are not about reachability (auth, not found, a 200 that could not be read), then nothing changes', () => {
    const onRecovered = jest.fn();
    const r = new AnchoreReachability({ probe: async () => undefined, probeMs: 5_000, onRecovered, log, clock: systemClock });
    r.observe({ status: 401, errorKind: 'auth' });
    r.observe({ status: 404, errorKind: 'not-found' });
    // A malformed answer: Anchore did answer, so backed-off work must not be released by a probe every 5 s.
    r.observe({ status: 200, errorKind: 'protocol' });
    expect(r.down).toBe(false);
    r.observe({ status: 200 });
    expect(onRecovered).not.toHaveBeenCalled();
    r.stop();
  });

  it('when Anchore answers 401, then the rejection is said once, probed every interval with credentials, and cleared by the first authenticated success', async () => {
    const lines: string[] = [];
    const sink = { write: (l: string) => void lines.push(l) };
    const logged = createLogger({ level: 'info', pretty: false }, sink);
    let fixed = false;
    const accepted: number[] = [];
    // The credential probe is an ordinary authenticated call: its outcome reaches observe() like any other.
    const holder: { r?: AnchoreReachability } = {};
    const credentialProbe = jest.fn(async () => {
      holder.r?.observe(fixed ? { status: 200, authenticated: true } : { status: 401, errorKind: 'auth', authenticated: true });
    });
    const r = new AnchoreReachability({
      probe: async () => undefined,
      credentialProbe,
      probeMs: 5_000,
      onRecovered: () => undefined,
      onCredentialsAccepted: () => accepted.push(1),
      log: logged,
      clock: systemClock,
    });
    holder.r = r;
    for (let i = 0; i < 26; i++) r.observe({ operation: 'add_image', status: 401, errorKind: 'auth', authenticated: true });
    expect(r.credentialsRejected).toBeDefined();
    // An anonymous success (the version check) proves nothing about the credentials.
    r.observe({ status: 200, authenticated: false });
    expect(r.credentialsRejected).toBeDefined();
    await jest.advanceTimersByTimeAsync(15_000);
    expect(credentialProbe).toHaveBeenCalledTimes(3);
    fixed = true;
    await jest.advanceTimersByTimeAsync(5_000);
    expect(r.credentialsRejected).toBeUndefined();
    expect(accepted).toEqual([1]);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(credentialProbe).toHaveBeenCalledTimes(4);
    expect(lines.filter((l) => l.includes('rejects the operator credentials'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('accepts the operator credentials again'))).toHaveLength(1);
    r.stop();
  });

  it('when given the metrics, then anchore_operator_anchore_credentials_rejected is 1 while the credentials are rejected and 0 otherwise', async () => {
    const metrics = new OperatorMetrics(undefined, { defaultMetrics: false });
    const r = new AnchoreReachability({ probe: async () => undefined, probeMs: 5_000, onRecovered: () => {}, log, clock: systemClock, metrics });
    const gauge = async (): Promise<string | undefined> => (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith('anchore_operator_anchore_credentials_rejected '));
    expect(await gauge()).toBe('anchore_operator_anchore_credentials_rejected 0');
    r.observe({ status: 401, errorKind: 'auth', authenticated: true });
    expect(await gauge()).toBe('anchore_operator_anchore_credentials_rejected 1');
    r.observe({ status: 200, authenticated: true });
    expect(await gauge()).toBe('anchore_operator_anchore_credentials_rejected 0');
    r.stop();
  });
});
