import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Turn } from '../runtime/turn.ts';
import type { QueueEvent } from '../runtime/workqueue.ts';
import { credentialsRefused } from '../anchore/errors.ts';

/** Metric names: one place, documented in docs/metrics.md. */
/** METRICS_MAX_SERIES's default (the settings table declares it from here). */
export const DEFAULT_MAX_SERIES = 10_000;

export const METRIC = {
  buildInfo: 'anchore_operator_build_info',
  ready: 'anchore_operator_ready',
  reconcileTotal: 'anchore_operator_reconcile_total',
  reconcileDuration: 'anchore_operator_reconcile_duration_seconds',
  queueRetries: 'anchore_operator_workqueue_retries_total',
  queueWait: 'anchore_operator_workqueue_wait_seconds',
  anchoreRequests: 'anchore_operator_anchore_requests_total',
  anchoreRequestDuration: 'anchore_operator_anchore_request_duration_seconds',
  watchRestarts: 'anchore_operator_watch_restarts_total',
  watchLastEvent: 'anchore_operator_watch_last_event_timestamp_seconds',
  kubeEvents: 'anchore_operator_kube_events_total',
  watchObjects: 'anchore_operator_watch_cached_objects',
  imagesRegistered: 'anchore_operator_images_registered_total',
  registrationLatency: 'anchore_operator_image_registration_latency_seconds',
  images: 'anchore_operator_images',
  imagesSkipped: 'anchore_operator_container_images_skipped_total',
  inventoryReports: 'anchore_operator_inventory_reports_total',
  inventoryLastSuccess: 'anchore_operator_inventory_last_success_timestamp_seconds',
  inventoryDuration: 'anchore_operator_inventory_report_duration_seconds',
  inventoryBatchFailures: 'anchore_operator_inventory_batch_failures_total',
  inventoryBytes: 'anchore_operator_inventory_bytes_total',
  accountMissing: 'anchore_operator_account_missing',
  namespacesAccountMissing: 'anchore_operator_namespaces_account_missing',
  queueDepthGauge: 'anchore_operator_workqueue_depth',
  leader: 'anchore_operator_leader',
  seriesDropped: 'anchore_operator_metrics_series_dropped_total',
  seriesBudget: 'anchore_operator_metrics_series_budget',
  seriesExported: 'anchore_operator_metrics_series_exported',
  seriesCut: 'anchore_operator_metrics_series_cut',
  imageVulnerabilities: 'anchore_operator_image_vulnerabilities',
  imageFixableVulnerabilities: 'anchore_operator_image_fixable_vulnerabilities',
  workloadVulnerabilities: 'anchore_operator_workload_vulnerabilities',
  imageKnownExploited: 'anchore_operator_image_known_exploited_vulnerabilities',
  workloadKnownExploited: 'anchore_operator_workload_known_exploited_vulnerabilities',
  workloadMaxEpss: 'anchore_operator_workload_max_epss',
  vulnerabilityInfo: 'anchore_operator_vulnerability_info',
  bindingImages: 'anchore_operator_binding_images',
  bindingReady: 'anchore_operator_binding_ready',
  bindingCompliant: 'anchore_operator_binding_compliant',
  bindingLastEvaluation: 'anchore_operator_binding_last_evaluation_timestamp_seconds',
  oldestEvaluationAge: 'anchore_operator_evaluation_oldest_age_seconds',
  workloadPolicyFailures: 'anchore_operator_workload_policy_failed_images',
  admissionRequests: 'anchore_operator_admission_requests_total',
  admissionDuration: 'anchore_operator_admission_duration_seconds',
  admissionLookups: 'anchore_operator_admission_cache_lookups_total',
  admissionViolations: 'anchore_operator_admission_policy_violations_total',
  admissionUnjudged: 'anchore_operator_admission_unjudged_images_total',
  admissionBreakglass: 'anchore_operator_admission_breakglass_total',
  admissionRegistrations: 'anchore_operator_admission_registrations_total',
  credentialsRejected: 'anchore_operator_anchore_credentials_rejected',
  inventoryBatchLimit: 'anchore_operator_inventory_batch_limit_bytes',
  reportMetric: 'anchore_operator_anchore_report_metric',
  reportMetricCollected: 'anchore_operator_anchore_report_metric_collected_timestamp_seconds',
} as const;

/** Admission answers in milliseconds on a cache hit: the buckets start well below the 5 ms goal. */
const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Priority tiers of the findings series, in the order the series budget is spent on them (docs/metrics.md, "Series
 * budget"). `critical` series are never cut: the binding- and workload-level series and every findings metric an alert
 * or recording rule in deploy/monitoring reads (a unit test holds the rule files to this). The others are cut when the
 * budget runs out, the last tier first: per-CVE series, then per-image series, then account-level ones.
 */
export const SERIES_TIERS = ['critical', 'account', 'image', 'cve'] as const;
export type SeriesTier = (typeof SERIES_TIERS)[number];

/**
 * The tier of every findings metric (a findings gauge whose name is not here cannot be registered). A metric an alert
 * or recording rule reads must be `critical`: src/reports/findings-metrics.test.ts checks the shipped rule files.
 */
export const FINDINGS_TIERS: Readonly<Record<string, SeriesTier>> = {
  // Per binding: bindings x 5 results, or one series per binding.
  [METRIC.bindingImages]: 'critical',
  [METRIC.bindingReady]: 'critical',
  [METRIC.bindingCompliant]: 'critical',
  [METRIC.bindingLastEvaluation]: 'critical',
  // Per binding and failing workload; per workload and severity.
  [METRIC.workloadPolicyFailures]: 'critical',
  [METRIC.workloadVulnerabilities]: 'critical',
  // Per workload that runs a known-exploited vulnerability (few): the AnchoreKnownExploitedRunning alert reads it.
  [METRIC.workloadKnownExploited]: 'critical',
  // Per workload, for the riskiest-workloads dashboard row only: cut with the per-image series, before any alert's.
  [METRIC.workloadMaxEpss]: 'image',
  // Per running image with a known-exploited vulnerability (few).
  [METRIC.imageKnownExploited]: 'image',
  // Per image, but the AnchoreNewCriticalVulnerabilityWithFix alert reads it: running images x 6 severities.
  [METRIC.imageFixableVulnerabilities]: 'critical',
  // Anchore's own report metrics: accounts x selected report metrics.
  [METRIC.reportMetric]: 'account',
  [METRIC.reportMetricCollected]: 'account',
  [METRIC.imageVulnerabilities]: 'image',
  [METRIC.vulnerabilityInfo]: 'cve',
};

type Rows = () => Iterable<[Partial<Record<string, string>>, number]>;

/** The series of a gauge as prom-client's get() answers them. */
type Series<L extends string> = Awaited<ReturnType<Gauge<L>['get']>>['values'];

interface BudgetedGauge {
  readonly name: string;
  readonly tier: SeriesTier;
  readonly gauge: Gauge<string>;
  readonly labelNames: readonly string[];
  readonly read: Rows;
  /** What the budget allotted it in the current allocation (in the order read). */
  series: Series<string>;
}

/**
 * A findings gauge: its series are what the series budget allotted it in the scrape it is collected in, kept as one
 * list rather than set one by one into prom-client's per-series hash map (tens of thousands of hashed keys a scrape).
 * get() answers them as prom-client's own Gauge would have, in the order they were allotted.
 */
class FindingsGauge<L extends string> extends Gauge<L> {
  readonly #allotted: () => Promise<Series<L>>;

  constructor(config: { name: string; help: string; labelNames: L[]; registers: Registry[] }, allotted: () => Promise<Series<L>>) {
    super(config);
    this.#allotted = allotted;
  }

  override async get(): Promise<Awaited<ReturnType<Gauge<L>['get']>>> {
    const values = await this.#allotted();
    return { ...(await super.get()), values };
  }
}

const perTier = (): Record<SeriesTier, number> => ({ critical: 0, account: 0, image: 0, cve: 0 });

/**
 * The findings series budget, spent once per scrape over every findings gauge together, tier by tier
 * (SERIES_TIERS), whatever order the gauges were registered or are collected in. Critical series are always exported,
 * even beyond the budget (they then use it all up); the cuttable tiers get what is left, and whatever does not fit is
 * left out of the scrape and counted by metric (the dropped counter) and by tier (`cut`).
 *
 * Scrape boundaries: every participant (each findings gauge and the budget's own metrics) awaits enter() in its
 * collect(). The first participant of a scrape finds the previous allocation already used by it, so it spends the
 * budget anew for all of them; the others in the same scrape wait for that allocation and take it. release() (after a
 * scrape is served) forgets the allocation, so the next scrape always starts afresh.
 *
 * Spending goes through every findings row (tens of thousands at 50,000 pods, cut ones included), so it runs in
 * turns of a few milliseconds with the event loop free between them (Turn); an allocation begun while another is
 * still being spent waits for it, so two never write the gauges at once.
 */
class SeriesBudget {
  readonly max: number;
  readonly #dropped: Counter<'metric'>;
  readonly #members: BudgetedGauge[] = [];
  readonly #participants = new Set<object>();
  /** Participants not yet collected under the current allocation (undefined: none made yet). */
  #pending: Set<object> | undefined;
  /** The allocation being (or last) spent: collects of the same scrape wait for it. */
  #spending: Promise<void> = Promise.resolve();
  #used = 0;
  #exported = perTier();
  #cut = perTier();

  constructor(max: number, dropped: Counter<'metric'>) {
    this.max = max;
    this.#dropped = dropped;
  }

  /** A metric whose collect() calls enter(): it sees the allocation of the scrape it is collected in. */
  join(participant: object): void {
    this.#participants.add(participant);
    this.#pending = undefined;
  }

  add(member: Omit<BudgetedGauge, 'series'>): void {
    this.#members.push({ ...member, series: [] });
    // Zero from the start, so the counter has a series (and rate() a base) for every findings metric.
    this.#dropped.inc({ metric: member.name }, 0);
    this.join(member.gauge);
  }

  /** Resolves once the allocation of the scrape `participant` is collected in is spent. */
  enter(participant: object): Promise<void> {
    if (this.#pending?.delete(participant)) return this.#spending;
    const pending = new Set(this.#participants);
    pending.delete(participant);
    this.#pending = pending;
    const spend = (): Promise<void> => this.#spend();
    this.#spending = this.#spending.then(spend, spend).catch((err: unknown) => {
      // A failed allocation is not taken by the next scrape: its first collect spends anew.
      if (this.#pending === pending) this.#pending = undefined;
      throw err;
    });
    return this.#spending;
  }

  release(): void {
    this.#pending = undefined;
    for (const m of this.#members) m.series = [];
  }

  /** The series allotted to a member in the allocation of the scrape `gauge` is collected in. */
  async allotted(gauge: object): Promise<Series<string>> {
    await this.enter(gauge);
    return this.#members.find((m) => m.gauge === gauge)?.series ?? [];
  }

  tierOf(name: string): SeriesTier | undefined {
    return this.#members.find((m) => m.name === name)?.tier;
  }

  /** Findings series in the last allocation (more than `max` when the critical series alone exceed it). */
  get used(): number {
    return this.#used;
  }
  exported(tier: SeriesTier): number {
    return this.#exported[tier];
  }
  cut(tier: SeriesTier): number {
    return this.#cut[tier];
  }

  async #spend(): Promise<void> {
    const exported = perTier();
    const cutPerTier = perTier();
    let used = 0;
    const turn = new Turn();
    for (const tier of SERIES_TIERS) {
      for (const m of this.#members) {
        if (m.tier !== tier) continue;
        const series: Series<string> = [];
        const seen = new Set<string>();
        let cut = 0;
        for (const [labels, value] of m.read()) {
          if (turn.due()) await turn.next();
          // Unique label sets by construction; a duplicate would make Prometheus reject the whole scrape.
          const id = JSON.stringify(m.labelNames.map((l) => labels[l] ?? ''));
          if (seen.has(id)) continue;
          seen.add(id);
          if (tier !== 'critical' && used >= this.max) {
            cut++;
            continue;
          }
          used++;
          exported[tier]++;
          series.push({ value: checkedValue(value), labels: checkedLabels(m, labels) });
        }
        // A gauge without labels has its one series at 0 until set (as prom-client's own reset() leaves it).
        m.series = series.length === 0 && m.labelNames.length === 0 ? [{ value: 0, labels: {} }] : series;
        if (cut > 0) {
          cutPerTier[tier] += cut;
          this.#dropped.inc({ metric: m.name }, cut);
        }
      }
    }
    this.#used = used;
    this.#exported = exported;
    this.#cut = cutPerTier;
  }
}

/** What prom-client's Gauge.set() refuses: a value that is not a number. */
function checkedValue(value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`Value is not a valid number: ${String(value)}`);
  return value;
}

/** What prom-client's Gauge.set() refuses: a label the gauge was not declared with. */
function checkedLabels(m: BudgetedGauge, labels: Partial<Record<string, string>>): Partial<Record<string, string>> {
  for (const l in labels) if (!m.labelNames.includes(l)) throw new Error(`Added label "${l}" is not included in initial labelset: ${JSON.stringify(m.labelNames)}`);
  return labels;
}

/** All of the operator's metrics, built on one registry that is passed in (no module-level singletons). */
export class OperatorMetrics {
  readonly registry: Registry;
  readonly ready: Gauge;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly queueRetries: Counter<'queue'>;
  readonly queueWait: Histogram<'queue'>;
  readonly anchoreRequests: Counter<'operation' | 'code' | 'error'>;
  readonly anchoreRequestDuration: Histogram<'operation'>;
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  readonly watchLastEvent: Gauge<'resource'>;
  readonly kubeEvents: Counter<'result'>;
  readonly imagesRegistered: Counter<'account'>;
  readonly registrationLatency: Histogram;
  readonly imagesSkipped: Counter<'reason'>;
  readonly inventoryReports: Counter<'account' | 'result'>;
  readonly inventoryBatchFailures: Counter<'account' | 'reason'>;
  readonly inventoryBytes: Counter<'account' | 'kind'>;
  readonly inventoryLastSuccess: Gauge<'account'>;
  readonly inventoryDuration: Histogram;
  readonly seriesDropped: Counter<'metric'>;
  readonly admissionRequests: Counter<'kind' | 'verdict'>;
  readonly admissionDuration: Histogram<'lookup'>;
  readonly admissionLookups: Counter<'result'>;
  readonly admissionViolations: Counter<'enforcement'>;
  readonly admissionUnjudged: Counter<'failure_policy' | 'reason'>;
  readonly admissionBreakglass: Counter<'namespace'>;
  readonly admissionRegistrations: Counter<'outcome'>;
  /** Series budget shared by the findings gauges, spent once per scrape in tier order. */
  readonly budget: SeriesBudget;

  /**
   * `tiers` adds series tiers for findings metrics that are not in FINDINGS_TIERS (tests; the operator declares all of
   * its findings metrics there).
   */
  constructor(registry: Registry = new Registry(), opts: { version?: string; defaultMetrics?: boolean; maxSeries?: number; tiers?: Record<string, SeriesTier> } = {}) {
    this.registry = registry;
    const r = [registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'anchore_operator_' });
    new Gauge({ name: METRIC.buildInfo, help: 'Build information (always 1)', labelNames: ['version', 'node_version'], registers: r }).set(
      { version: opts.version ?? 'dev', node_version: process.version },
      1,
    );
    this.ready = new Gauge({ name: METRIC.ready, help: '1 when caches are synced and Anchore answered the version check', registers: r });
    this.reconcileTotal = new Counter({ name: METRIC.reconcileTotal, help: 'Reconciles by controller and result', labelNames: ['controller', 'result'], registers: r });
    this.reconcileDuration = new Histogram({ name: METRIC.reconcileDuration, help: 'Reconcile duration', labelNames: ['controller'], buckets: DURATION_BUCKETS, registers: r });
    this.queueRetries = new Counter({ name: METRIC.queueRetries, help: 'Keys requeued after a failure', labelNames: ['queue'], registers: r });
    this.queueWait = new Histogram({ name: METRIC.queueWait, help: 'Time a key waited in the queue before a worker took it', labelNames: ['queue'], buckets: DURATION_BUCKETS, registers: r });
    this.anchoreRequests = new Counter({
      name: METRIC.anchoreRequests,
      help: 'Anchore HTTP requests by operation, status code (0 = no response) and, for failed ones, error kind',
      labelNames: ['operation', 'code', 'error'],
      registers: r,
    });
    this.anchoreRequestDuration = new Histogram({ name: METRIC.anchoreRequestDuration, help: 'Anchore HTTP request duration', labelNames: ['operation'], buckets: DURATION_BUCKETS, registers: r });
    this.watchRestarts = new Counter({ name: METRIC.watchRestarts, help: 'Watch restarts by resource and reason', labelNames: ['resource', 'reason'], registers: r });
    this.watchLastEvent = new Gauge({ name: METRIC.watchLastEvent, help: 'Unix time of the last watch event per resource', labelNames: ['resource'], registers: r });
    this.kubeEvents = new Counter({
      name: METRIC.kubeEvents,
      help: 'Kubernetes Events by outcome: sent, rejected (the apiserver refused it), failed, dropped (too many waiting), suppressed (repeat)',
      labelNames: ['result'],
      registers: r,
    });
    this.imagesRegistered = new Counter({ name: METRIC.imagesRegistered, help: 'Images added to Anchore (POST /v2/images) by account', labelNames: ['account'], registers: r });
    this.registrationLatency = new Histogram({ name: METRIC.registrationLatency, help: 'From first seeing an image running to Anchore accepting it', buckets: DURATION_BUCKETS, registers: r });
    this.imagesSkipped = new Counter({ name: METRIC.imagesSkipped, help: 'Container images not registered, by reason (invalid, excluded, dropped, pulling)', labelNames: ['reason'], registers: r });
    this.inventoryReports = new Counter({ name: METRIC.inventoryReports, help: 'Runtime inventory reports by account and result', labelNames: ['account', 'result'], registers: r });
    this.inventoryLastSuccess = new Gauge({ name: METRIC.inventoryLastSuccess, help: 'Unix time of the last inventory report Anchore accepted', labelNames: ['account'], registers: r });
    this.inventoryBytes = new Counter({
      name: METRIC.inventoryBytes,
      help: 'JSON bytes of runtime inventory batches sent to Anchore, by account and kind (full: everything; changed: only the namespaces that changed)',
      labelNames: ['account', 'kind'],
      registers: r,
    });
    this.inventoryBatchFailures = new Counter({
      name: METRIC.inventoryBatchFailures,
      help: 'Inventory batches Anchore did not accept in the account they belong to, by reason (account_missing: sent to the default account instead; error: not delivered; too_large: 413, cut and sent again; undeliverable: one namespace too large alone)',
      labelNames: ['account', 'reason'],
      registers: r,
    });
    this.inventoryDuration = new Histogram({ name: METRIC.inventoryDuration, help: 'Time to build and send one account inventory', buckets: DURATION_BUCKETS, registers: r });
    this.seriesDropped = new Counter({
      name: METRIC.seriesDropped,
      help: 'Findings series left out of a scrape because the series budget (METRICS_MAX_SERIES) ran out, by metric (critical-tier metrics never are)',
      labelNames: ['metric'],
      registers: r,
      // Counts the drops of the scrape it is collected in, wherever it sits in it.
      collect: () => this.budget.enter(this.seriesDropped),
    });
    this.admissionRequests = new Counter({
      name: METRIC.admissionRequests,
      help: 'Admission reviews answered, by object kind and verdict (allowed, warned, denied, exempt, inherited, breakglass, error)',
      labelNames: ['kind', 'verdict'],
      registers: r,
    });
    this.admissionDuration = new Histogram({
      name: METRIC.admissionDuration,
      help: 'Time to answer an admission review, by how its images were judged (hit: all from cache, miss: Anchore was asked, none: nothing to judge)',
      labelNames: ['lookup'],
      buckets: ADMISSION_BUCKETS,
      registers: r,
    });
    this.admissionLookups = new Counter({
      name: METRIC.admissionLookups,
      help: 'Image verdicts admission needed, by where they came from: hit (evaluation cache or binding status, no Anchore call) or miss (one Anchore call)',
      labelNames: ['result'],
      registers: r,
    });
    this.admissionViolations = new Counter({
      name: METRIC.admissionViolations,
      help: 'Images failing a binding at admission, by the binding enforcement (audit, warn, deny)',
      labelNames: ['enforcement'],
      registers: r,
    });
    this.admissionUnjudged = new Counter({
      name: METRIC.admissionUnjudged,
      help: 'Images admission could not judge, by the binding failurePolicy and why (not_in_anchore, not_analyzed, anchore_unavailable, deadline, invalid_reference)',
      labelNames: ['failure_policy', 'reason'],
      registers: r,
    });
    this.admissionBreakglass = new Counter({
      name: METRIC.admissionBreakglass,
      help: 'Admission requests let through by the anchore.io/admission-breakglass annotation, by namespace',
      labelNames: ['namespace'],
      registers: r,
    });
    this.admissionRegistrations = new Counter({
      name: METRIC.admissionRegistrations,
      help: 'Images admission offered to register with Anchore, by outcome (registered, failed, or why not: request_denied, repository_not_allowed, over_review_limit, over_namespace_limit, over_global_limit)',
      labelNames: ['outcome'],
      registers: r,
    });
    this.budget = new SeriesBudget(opts.maxSeries ?? DEFAULT_MAX_SERIES, this.seriesDropped);
    this.#tiers = { ...FINDINGS_TIERS, ...opts.tiers };
    const budget = this.budget;
    // The budget's own metrics see the allocation of the scrape they are collected in, wherever they sit in it.
    budget.join(this.seriesDropped);
    const budgetGauge = new Gauge({
      name: METRIC.seriesBudget,
      help: 'The findings series budget (METRICS_MAX_SERIES)',
      registers: r,
      async collect() {
        await budget.enter(this);
        this.set(budget.max);
      },
    });
    budget.join(budgetGauge);
    const exported = new Gauge({
      name: METRIC.seriesExported,
      help: 'Findings series in this scrape, by tier (critical series are never cut, so their count can exceed the budget)',
      labelNames: ['tier'],
      registers: r,
      async collect() {
        await budget.enter(this);
        for (const tier of SERIES_TIERS) this.set({ tier }, budget.exported(tier));
      },
    });
    budget.join(exported);
    const cut = new Gauge({
      name: METRIC.seriesCut,
      help: 'Findings series left out of this scrape because the series budget (METRICS_MAX_SERIES) ran out, by tier (0: none)',
      labelNames: ['tier'],
      registers: r,
      async collect() {
        await budget.enter(this);
        for (const tier of SERIES_TIERS) if (tier !== 'critical') this.set({ tier }, budget.cut(tier));
      },
    });
    budget.join(cut);
  }

  readonly #tiers: Readonly<Record<string, SeriesTier>>;

  /**
   * A findings gauge computed at scrape time and counted against the series budget in the tier FINDINGS_TIERS gives
   * its name (an unknown name throws). When the budget runs out, the series of the cuttable tiers that do not fit are
   * left out of that scrape and counted in anchore_operator_metrics_series_dropped_total and
   * anchore_operator_metrics_series_cut.
   */
  findingsGauge<L extends string>(name: string, help: string, labelNames: L[], read: () => Iterable<[Partial<Record<L, string>>, number]>): Gauge<L> {
    const tier = this.#tiers[name];
    if (!tier) throw new Error(`findings metric ${name} has no series tier: declare it in FINDINGS_TIERS (src/telemetry/metrics.ts)`);
    const budget = this.budget;
    const gauge: FindingsGauge<L> = new FindingsGauge<L>({ name, help, labelNames, registers: [this.registry] }, () => budget.allotted(gauge));
    budget.add({ name, tier, gauge, labelNames, read: read as Rows });
    this.#computed.push(gauge);
    return gauge;
  }

  /** A gauge computed at scrape time from current state, so series of vanished objects disappear by themselves. */
  stateGauge<L extends string>(name: string, help: string, labelNames: L[], read: () => Iterable<[Partial<Record<L, string>>, number]>): Gauge<L> {
    const gauge = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const seen = new Set<string>();
        for (const [labels, value] of read()) {
          // Unique label sets by construction; a duplicate would make Prometheus reject the whole scrape.
          const id = JSON.stringify(labelNames.map((l) => labels[l] ?? ''));
          if (seen.has(id)) continue;
          seen.add(id);
          this.set(labels, value);
        }
      },
    });
    this.#computed.push(gauge);
    return gauge;
  }

  readonly #computed: Array<Gauge<string>> = [];

  /**
   * Drops the series of every computed gauge. They are recomputed at each scrape anyway; keeping thousands of label
   * sets between scrapes only costs memory (about 4 MiB at the 10,000-series budget). Called after a scrape is served.
   */
  releaseComputed(): void {
    for (const g of this.#computed) g.reset();
    this.budget.release();
  }

  /**
   * The work-queue hook every controller uses: reconcile count/duration, queue wait, retries, and one warning line
   * per failed attempt (`what` names the work, e.g. "image registration").
   */
  queueObserver(controller: string, log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void }, what: string): (e: QueueEvent<string>) => void {
    return (e) => {
      this.reconcileTotal.inc({ controller, result: e.outcome });
      this.reconcileDuration.observe({ controller }, e.durationMs / 1000);
      this.queueWait.observe({ queue: controller }, e.waitMs / 1000);
      if (e.outcome === 'error') {
        this.queueRetries.inc({ queue: controller });
        const fields = { key: e.key, failures: e.failures, err: e.error instanceof Error ? e.error.message : String(e.error) };
        // Rejected credentials are said once, by the reachability tracker (and its metric); one line per key and
        // controller would bury it.
        if (credentialsRefused(e.error)) log.debug(fields, `${what} failed; will retry`);
        else log.warn(fields, `${what} failed; will retry`);
      }
    };
  }

  /**
   * Records one Anchore HTTP attempt (the client's onRequest hook). A failed attempt carries its AnchoreError kind in
   * the `error` label — the only way to tell a 200 that was a proxy's login page or a malformed body (code="200",
   * error="protocol") from a good one. Successful attempts have no `error` label.
   */
  anchoreRequest(e: { operation: string; status: number; durationMs: number; errorKind?: string }): void {
    this.anchoreRequests.inc(e.errorKind ? { operation: e.operation, code: String(e.status), error: e.errorKind } : { operation: e.operation, code: String(e.status) });
    this.anchoreRequestDuration.observe({ operation: e.operation }, e.durationMs / 1000);
  }
}
