import { SEVERITIES } from '../anchore/anchore.port.ts';
import { type BindingInfo, CONDITION } from '../crds/types.ts';
import type { Store, WorkloadRef } from '../kube/cluster.port.ts';
import type { ImageRegistry } from '../model/images.port.ts';
import type { VulnerabilitySummary } from '../model/vulnerability-summary.ts';
import { METRIC, type OperatorMetrics } from '../telemetry/metrics.ts';

/** What the findings gauges read of the binding controller's state. */
export interface BindingFindings {
  /** Whether this install evaluates the binding (another install exports its own). */
  owns(b: BindingInfo): boolean;
  /** Failing images (tags) per workload, per binding key, from the last evaluation. */
  readonly failuresByWorkload: ReadonlyMap<string, ReadonlyMap<string, { workload: WorkloadRef; images: readonly string[] }>>;
  /** Last complete evaluation time (ms) per binding key. */
  readonly lastEvaluated: ReadonlyMap<string, number>;
}

/** What the findings gauges read of the vulnerability counts. */
export interface VulnerabilityFindings {
  get(key: string): VulnerabilitySummary | undefined;
  entries(): Iterable<[string, VulnerabilitySummary]>;
}

interface FindingsSources {
  metrics: OperatorMetrics;
  images: Pick<ImageRegistry, 'running' | 'workloadImages'>;
  vulnerabilities: VulnerabilityFindings;
  bindings: BindingFindings;
  bindingStores: Array<Store<BindingInfo>>;
  queues: Array<{ name: string; depth: number; delayedCount: number }>;
  /** Per-CVE series (off by default: cardinality). */
  cveSeries: boolean;
  isLeader: () => boolean;
}

/**
 * Registers the findings and freshness gauges. Every value is read from the operator's state at scrape time, so the
 * series of a deleted workload, an image no longer running or a deleted binding disappear by themselves. Labels carry
 * only bounded names (namespaces, workloads, images that run now); never uids, timestamps or error text. Each findings
 * gauge takes its series-budget tier from FINDINGS_TIERS (metrics.ts): binding- and workload-level gauges and those an
 * alert reads are critical (never cut), whatever order they are registered in here.
 */
export function registerFindingsMetrics(src: FindingsSources): void {
  const { metrics, images, vulnerabilities, bindings } = src;
  // A binding not evaluated yet counts from operator start, not from 1970 (no stale alert at every restart).
  const startedAt = Date.now();

  metrics.stateGauge(METRIC.queueDepthGauge, 'Keys waiting in each work queue (ready, and delayed for backoff/requeue)', ['queue', 'state'], function* () {
    for (const q of src.queues) {
      yield [{ queue: q.name, state: 'ready' }, q.depth];
      yield [{ queue: q.name, state: 'delayed' }, q.delayedCount];
    }
  });
  metrics.stateGauge(METRIC.leader, '1 on the replica that holds the leader Lease and does the work (the only replica when leader election is off)', [], () => [[{}, src.isLeader() ? 1 : 0]]);

  const running = function* () {
    for (const [key, v] of vulnerabilities.entries()) {
      const img = images.running.get(key);
      if (img) yield { img, v };
    }
  };
  metrics.findingsGauge(METRIC.imageVulnerabilities, 'Vulnerabilities of each running image, by severity', ['account', 'image', 'digest', 'severity'], function* () {
    for (const { img, v } of running()) {
      for (const severity of SEVERITIES) yield [{ account: img.account, image: img.image.tag, digest: img.image.digest ?? '', severity }, v.bySeverity[severity]];
    }
  });
  metrics.findingsGauge(METRIC.imageFixableVulnerabilities, 'Vulnerabilities with a fix available, of each running image, by severity', ['account', 'image', 'digest', 'severity'], function* () {
    for (const { img, v } of running()) {
      for (const severity of SEVERITIES) yield [{ account: img.account, image: img.image.tag, digest: img.image.digest ?? '', severity }, v.fixableBySeverity[severity]];
    }
  });
  metrics.findingsGauge(METRIC.workloadVulnerabilities, 'Vulnerabilities across the distinct images a workload runs, by severity', ['namespace', 'kind', 'workload', 'severity'], function* () {
    for (const { workload, keys } of images.workloadImages().values()) {
      const totals = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<string, number>;
      let known = false;
      for (const k of keys) {
        const v = vulnerabilities.get(k);
        if (!v) continue;
        known = true;
        for (const s of SEVERITIES) totals[s] = (totals[s] ?? 0) + v.bySeverity[s];
      }
      if (!known) continue;
      for (const severity of SEVERITIES) yield [{ namespace: workload.namespace, kind: workload.kind, workload: workload.name, severity }, totals[severity] ?? 0];
    }
  });
  // Known-exploited (CISA KEV) and likely-exploited (EPSS) first. Only images and workloads that run a known-exploited
  // vulnerability get a KEV series (a small set, alerted on); every workload whose vulnerabilities Anchore scored gets
  // its highest EPSS (the dashboard ranks them).
  metrics.findingsGauge(METRIC.imageKnownExploited, 'Known-exploited vulnerabilities (CISA KEV) of each running image that has any', ['account', 'image', 'digest'], function* () {
    for (const { img, v } of running()) {
      if ((v.knownExploitedCount ?? 0) > 0) yield [{ account: img.account, image: img.image.tag, digest: img.image.digest ?? '' }, v.knownExploitedCount ?? 0];
    }
  });
  const perWorkload = function* () {
    for (const { workload, keys } of images.workloadImages().values()) {
      const kev = new Set<string>();
      let kevCount = 0;
      let epss: number | undefined;
      for (const k of keys) {
        const v = vulnerabilities.get(k);
        if (!v) continue;
        // Distinct ids across the workload's images where they are known; the count beyond the kept ids adds up.
        for (const id of v.knownExploited ?? []) kev.add(id);
        kevCount += Math.max(0, (v.knownExploitedCount ?? 0) - (v.knownExploited?.length ?? 0));
        if (v.maxEpss !== undefined && (epss === undefined || v.maxEpss.score > epss)) epss = v.maxEpss.score;
      }
      yield { workload, kev: kev.size + kevCount, epss };
    }
  };
  metrics.findingsGauge(METRIC.workloadKnownExploited, 'Known-exploited vulnerabilities (CISA KEV) across the images of each workload that runs any', ['namespace', 'kind', 'workload'], function* () {
    for (const w of perWorkload()) if (w.kev > 0) yield [{ namespace: w.workload.namespace, kind: w.workload.kind, workload: w.workload.name }, w.kev];
  });
  metrics.findingsGauge(
    METRIC.workloadMaxEpss,
    'Highest EPSS score (probability of exploitation in 30 days) among the vulnerabilities a workload runs',
    ['namespace', 'kind', 'workload'],
    function* () {
      for (const w of perWorkload()) if (w.epss !== undefined) yield [{ namespace: w.workload.namespace, kind: w.workload.kind, workload: w.workload.name }, w.epss];
    },
  );
  if (src.cveSeries) {
    metrics.findingsGauge(
      METRIC.vulnerabilityInfo,
      'One series per filtered CVE in a running image (opt-in: METRICS_CVE_SERIES)',
      ['image', 'digest', 'vuln_id', 'severity', 'package', 'fix'],
      function* () {
        for (const { img, v } of running()) {
          for (const c of v.cves ?? []) yield [{ image: img.image.tag, digest: img.image.digest ?? '', vuln_id: c.id, severity: c.severity, package: c.package, fix: c.fix ?? '' }, 1];
        }
      },
    );
  }

  const allBindings = function* () {
    // Only what this install owns: another install's bindings are its to export.
    for (const store of src.bindingStores) for (const b of store.list()) if (bindings.owns(b)) yield b;
  };
  const labelsOf = (b: BindingInfo) => ({ kind: b.kind, namespace: b.namespace ?? '', binding: b.name });
  metrics.findingsGauge(METRIC.bindingImages, 'Images covered by each binding, by result (from its status summary)', ['kind', 'namespace', 'binding', 'result'], function* () {
    for (const b of allBindings()) {
      const s = b.status.summary;
      if (!s) continue;
      for (const [result, n] of [
        ['pass', s.passed],
        ['fail', s.failed],
        ['warn', s.warned],
        ['pending', s.pending],
        ['error', s.errors],
      ] as const) {
        yield [{ ...labelsOf(b), result }, n];
      }
    }
  });
  metrics.findingsGauge(METRIC.bindingReady, '1 when the binding is Ready (evaluated), 0 otherwise', ['kind', 'namespace', 'binding', 'reason'], function* () {
    for (const b of allBindings()) {
      const c = b.status.conditions?.find((x) => x.type === CONDITION.ready);
      if (c) yield [{ ...labelsOf(b), reason: c.reason }, c.status === 'True' ? 1 : 0];
    }
  });
  metrics.findingsGauge(METRIC.bindingCompliant, '1 when every image the binding covers passes its policy, 0 when any fails', ['kind', 'namespace', 'binding'], function* () {
    for (const b of allBindings()) {
      const c = b.status.conditions?.find((x) => x.type === CONDITION.compliant);
      // Unknown (the binding selects no image) is neither compliant nor failing: no series.
      if (c && c.status !== 'Unknown') yield [labelsOf(b), c.status === 'True' ? 1 : 0];
    }
  });
  metrics.findingsGauge(
    METRIC.workloadPolicyFailures,
    'Images of a workload that fail the policy of a binding',
    ['binding_kind', 'binding_namespace', 'binding', 'namespace', 'kind', 'workload'],
    function* () {
      for (const b of allBindings()) {
        for (const { workload, images } of bindings.failuresByWorkload.get(b.key)?.values() ?? []) {
          yield [{ binding_kind: b.kind, binding_namespace: b.namespace ?? '', binding: b.name, namespace: workload.namespace, kind: workload.kind, workload: workload.name }, images.length];
        }
      }
    },
  );
  metrics.findingsGauge(METRIC.bindingLastEvaluation, 'Unix time of the last complete evaluation of each binding by this process', ['kind', 'namespace', 'binding'], function* () {
    for (const b of allBindings()) {
      const t = bindings.lastEvaluated.get(b.key);
      if (t !== undefined) yield [labelsOf(b), t / 1000];
    }
  });
  metrics.stateGauge(METRIC.oldestEvaluationAge, 'Age of the stalest binding evaluation (seconds); 0 without bindings', [], () => {
    let oldest = Infinity;
    let any = false;
    for (const b of allBindings()) {
      if (b.spec.suspend) continue;
      any = true;
      oldest = Math.min(oldest, bindings.lastEvaluated.get(b.key) ?? startedAt);
    }
    return [[{}, any ? (Date.now() - oldest) / 1000 : 0]];
  });
}
