import { describe, expect, it } from '@jest/globals';
import { parseReview, workloadOf } from '../../src/admission/review.ts';
import { type Sample, compareWithGoals, lateImages, lateness, missImages, openLoop, overOwnCall, parseAdmissionArgs, podReview, summarise, webhookConfiguration } from './admission.ts';

/** A fake clock the open loop sleeps on: time moves only when it sleeps, so schedules are exact. */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void>; advance: (ms: number) => void } {
  let t = 1000;
  return {
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

const sample = (i: number, latencyMs: number, error?: string): Sample<unknown> => ({ i, scheduledAt: i * 20, startedAt: i * 20 + (i % 3), latencyMs, ...(error ? { error } : { result: true }) });

describe('admission benchmark options', () => {
  it('when no option is given, then it is 50 requests/s for 20 s per scenario; --small is a few seconds at 10/s', () => {
    expect(parseAdmissionArgs(['--admission'])).toMatchObject({ rate: 50, seconds: 20, checkLatencyMs: 20, small: false });
    expect(parseAdmissionArgs(['--admission', '--small'])).toMatchObject({ rate: 10, seconds: 3, small: true });
  });
  it('when options are given, then they override the defaults; unknown or non-integer ones throw', () => {
    expect(parseAdmissionArgs(['--rate', '20', '--seconds', '5', '--check-latency-ms', '0', '--apiserver-rounds', '0', '--out', '/tmp/x.json'])).toMatchObject({
      rate: 20,
      seconds: 5,
      checkLatencyMs: 0,
      apiserverRounds: 0,
      out: '/tmp/x.json',
    });
    expect(parseAdmissionArgs(['--cpu-prof', '--trace-gc', '--node-arg', '--max-semi-space-size=4', '--node-arg', '--cpu-prof-interval=100'])).toMatchObject({
      cpuProf: true,
      heapProf: false,
      traceGc: true,
      nodeArgs: ['--max-semi-space-size=4', '--cpu-prof-interval=100'],
    });
    expect(() => parseAdmissionArgs(['--node-arg', 'x'])).toThrow(/--node-arg needs a node flag/);
    expect(() => parseAdmissionArgs(['--pods', '10'])).toThrow(/unknown option --pods/);
    expect(() => parseAdmissionArgs(['--rate', '0'])).toThrow(/--rate needs an integer ≥ 1/);
    expect(() => parseAdmissionArgs(['--rate', '2.5'])).toThrow(/integer/);
  });
  it('when rate × seconds is beyond the bound, then it throws (the miss set is one image per request)', () => {
    expect(() => parseAdmissionArgs(['--rate', '1000', '--seconds', '60'])).toThrow(/at most 20,000/);
  });
});

describe('miss images', () => {
  it('when a run asks for images, then each has its own valid digest, carried by the spec image with its tag, and a later range continues the numbering', () => {
    const a = missImages('a1b2', 50);
    expect(new Set(a.map((m) => m.digest)).size).toBe(50);
    for (const m of a) {
      expect(m.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(m.image).toBe(`${m.tag}@${m.digest}`);
      expect(m.pullString).toBe(`${m.tag.replace(/:1\.0$/, '')}@${m.digest}`);
    }
    expect(missImages('a1b2', 2, 49)[0]).toEqual(a[49]);
    expect(missImages('other', 1)[0]!.digest).not.toBe(a[0]!.digest);
  });

  it('when a run asks for tag-miss images, then each names only a tag of its own, and none shares a digest or tag with the miss set', () => {
    const late = lateImages('a1b2', 50);
    const miss = missImages('a1b2', 50);
    expect(new Set(late.map((m) => m.digest)).size).toBe(50);
    for (const m of late) {
      expect(m.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(m.image).toBe(m.tag);
      expect(m.image).not.toContain('@');
      expect(m.tag).toMatch(/^docker\.io\/acme\/a1b2-late-\d+:1\.0$/);
      expect(m.pullString).toBe(`${m.tag.replace(/:1\.0$/, '')}@${m.digest}`);
    }
    expect(late.some((m) => miss.some((x) => x.digest === m.digest || x.tag === m.tag))).toBe(false);
    expect(lateImages('a1b2', 1, 49)[0]).toEqual(late[49]);
  });
});

describe('podReview', () => {
  it('when a review is built, then the operator reads it as a Pod CREATE in the namespace with that one image and those labels', () => {
    const body = podReview({ uid: 'u-1', namespace: 'ns-a', name: 'p-1', image: 'docker.io/acme/app:1.0@sha256:' + 'a'.repeat(64), labels: { app: 'p-1' } });
    const parsed = parseReview(JSON.parse(JSON.stringify(body)));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.request).toMatchObject({ uid: 'u-1', operation: 'CREATE', namespace: 'ns-a', dryRun: false, kind: { kind: 'Pod' } });
    const w = workloadOf('Pod', parsed.request.object, 'ns-a');
    expect(w).toMatchObject({ name: 'p-1', namespace: 'ns-a', podLabels: { app: 'p-1' }, containers: [{ name: 'app', kind: 'container', image: 'docker.io/acme/app:1.0@sha256:' + 'a'.repeat(64) }] });
  });
});

describe('openLoop', () => {
  it('when answers are slower than the interval, then requests still leave on schedule (open loop) and every one is recorded in order', async () => {
    const clock = fakeClock();
    const started: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const samples = await openLoop({ rate: 100, count: 10, maxMs: 10_000, now: clock.now, sleep: clock.sleep }, async (i) => {
      started.push(clock.now());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // The answer comes after the loop has sent everything (setImmediate runs after the loop's microtasks).
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return i * 2;
    });
    expect(started).toEqual(Array.from({ length: 10 }, (_, i) => 1000 + i * 10));
    expect(samples.map((s) => s.i)).toEqual([...Array(10).keys()]);
    expect(samples.map((s) => s.result)).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    expect(samples.every((s) => s.startedAt === s.scheduledAt && s.error === undefined)).toBe(true);
    expect(maxInFlight).toBeGreaterThan(1);
  });

  it('when a request fails, then it is recorded with its error and the others are not held up', async () => {
    const samples = await openLoop({ rate: 1000, count: 5, maxMs: 5_000 }, async (i) => {
      if (i === 2) throw new Error('HTTP 500');
      return 'ok';
    });
    expect(samples.map((s) => s.error)).toEqual([undefined, undefined, 'HTTP 500', undefined, undefined]);
    expect(samples.every((s) => Number.isFinite(s.latencyMs))).toBe(true);
  });

  it('when answers do not come within maxMs, then the loop ends anyway and counts them, and the unsent ones, as errors', async () => {
    const clock = fakeClock();
    const samples = await openLoop({ rate: 10, count: 5, maxMs: 250, now: clock.now, sleep: clock.sleep }, () => new Promise<never>(() => {}));
    expect(samples).toHaveLength(5);
    expect(samples.slice(0, 3).every((s) => s.error?.includes('no answer'))).toBe(true);
    expect(samples.slice(3).every((s) => s.error?.includes('not sent'))).toBe(true);
  });
});

describe('summaries and goals', () => {
  it('when samples are summarised, then percentiles (two decimals) are over the answered ones and errors are counted apart', () => {
    const samples = [...Array.from({ length: 100 }, (_, i) => sample(i, (i + 1) / 10)), sample(100, 999, 'timeout')];
    expect(summarise(samples)).toEqual({ n: 101, errors: 1, p50: 5, p90: 9, p99: 9.9, max: 10 });
    expect(lateness(samples)).toEqual({ p99: 2, max: 2 });
    expect(summarise([]).p99).toBeNaN();
  });

  it("when each request's own Anchore call is subtracted, then what is left is matched by digest, and unmatched or failed requests are left out", () => {
    const samples = [sample(0, 25), sample(1, 30), sample(2, 24, 'HTTP 500'), sample(3, 2)];
    const calls = new Map([
      ['d0', 21],
      ['d1', 20],
      ['d2', 20],
    ]);
    expect(overOwnCall(samples, (i) => `d${i}`, calls)).toEqual({ n: 2, errors: 0, p50: 4, p90: 10, p99: 10, max: 10 });
  });

  it('when p99s are compared with issue 12, then a hit must be ≤ 5 ms and a miss ≤ the round trip p99 + 5 ms', () => {
    expect(compareWithGoals(4.2, 27.1, 23)).toEqual({ hit: { p99: 4.2, goalMs: 5, met: true }, miss: { p99: 27.1, goalMs: 28, met: true, overRoundTripMs: 4.1 } });
    const missed = compareWithGoals(5.01, 40, 23);
    expect(missed.hit.met).toBe(false);
    expect(missed.miss).toMatchObject({ met: false, overRoundTripMs: 17 });
  });

  it('when a tag miss is compared with issue 22, then it must be ≤ the lookup round trip p99 + the /check round trip p99 + 5 ms', () => {
    expect(compareWithGoals(4.2, 27.1, 23, { p99: 50, lookupRoundTripP99: 22.5 }).tagMiss).toEqual({ p99: 50, goalMs: 50.5, met: true, overRoundTripsMs: 4.5 });
    expect(compareWithGoals(4.2, 27.1, 23, { p99: 51, lookupRoundTripP99: 22.5 }).tagMiss).toMatchObject({ met: false, overRoundTripsMs: 5.5 });
  });
});

describe('webhookConfiguration', () => {
  it('when built, then it calls 127.0.0.1 with the CA for Pod CREATE in the named namespaces only, and does nothing on dry runs', () => {
    const cfg = webhookConfiguration('bench-x', 9443, 'PEM', ['ns-a']) as { webhooks: Array<Record<string, any>> };
    const w = cfg.webhooks[0]!;
    expect(w['clientConfig']).toEqual({ url: 'https://127.0.0.1:9443/validate', caBundle: Buffer.from('PEM').toString('base64') });
    expect(w['namespaceSelector']).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ns-a'] }] });
    expect(w['rules']).toEqual([{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }]);
    expect(w['sideEffects']).toBe('NoneOnDryRun');
  });
});
