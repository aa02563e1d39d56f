import type { AnchoreApi } from './anchore/anchore.port.ts';
import { AnchoreHttpClient } from './anchore/anchore.http.ts';
import { AnchoreError } from './anchore/errors.ts';
import { type Config, integrationConfiguration } from './config.ts';
import { BindingController } from './controllers/binding.controller.ts';
import { EvaluationCache } from './model/evaluation-cache.ts';
import { registerFindingsMetrics } from './reports/findings-metrics.ts';
import { ImageController } from './controllers/image.controller.ts';
import { AnchoreReachability } from './controllers/reachability.ts';
import { ReportsController } from './controllers/reports.controller.ts';
import { VulnerabilityController } from './controllers/vulnerability.controller.ts';
import { IntegrationController } from './controllers/integration.controller.ts';
import { InventoryController } from './controllers/inventory.controller.ts';
import { Scope } from './model/scope.ts';
import { KubeAccessReviewer } from './kube/access-review.ts';
import { KubeClient } from './kube/client.ts';
import { KubeLeaseLock } from './kube/lease.ts';
import { createClusterStores } from './kube/stores.ts';
import { WATCH_RESTART_REASONS } from './kube/reflector.ts';
import { KubeBindingStatusWriter, KubeEventRecorder } from './kube/writer.ts';
import { systemClock } from './runtime/clock.ts';
import { errorMessage } from './runtime/errors.ts';
import { ControllerSet } from './runtime/controller-set.ts';
import { LeaderElector } from './runtime/leader.ts';
import type { Logger } from './telemetry/logger.ts';
import { METRIC, OperatorMetrics } from './telemetry/metrics.ts';
import { startHealthServer, startMetricsServer } from './telemetry/server.ts';
import { VERSION } from './version.ts';
import { MissingAccounts, trackMissingAccounts } from './model/missing-accounts.ts';
import { AnchoreImages } from './model/anchore-images.ts';
import { ImageCatalog } from './model/image-catalog.ts';
import { startAdmissionServer } from './admission/server.ts';
import { AdmissionValidator } from './admission/validator.ts';

/** A startup failure that retrying cannot fix (bad credentials, wrong API version): main exits 1 with this line. */
export class FatalStartupError extends Error {
  override readonly name = 'FatalStartupError';
}

/**
 * What the running operator offers its caller: its ports, the two states its servers publish (/readyz, and the
 * anchore_operator_leader gauge), and stop. Nothing of its controllers or model: what they do is seen, by users and by
 * tests alike, through the Kubernetes API, /metrics, the log and what Anchore receives.
 */
export interface RunningOperator {
  readonly healthPort: number;
  readonly metricsPort: number;
  /** The admission webhook's port, when ADMISSION_ENABLED (served on every replica). */
  readonly admission: { port: number } | undefined;
  /** What /readyz answers. */
  isReady(): boolean;
  /** True while this replica does the work (always, without leader election): what anchore_operator_leader says. */
  isLeader(): boolean;
  /** Stops watches, drains queues up to the configured deadline, closes servers and connections. */
  stop(): Promise<void>;
}

export interface OperatorDeps {
  log: Logger;
  metrics?: OperatorMetrics;
  /** Replaces the HTTP client (tests); production always uses AnchoreHttpClient. */
  anchore?: AnchoreApi;
  /**
   * Called once when this replica lost the lease. Work has already stopped (queues cut without draining, so nothing
   * more reaches Anchore or the apiserver); the caller should finish stopping and exit non-zero, as client-go does.
   */
  onLeadershipLost?(): void;
}

/**
 * The composition root's body: config → adapters → controllers → servers. Startup order matters:
 * 1. health server first (liveness answers while we wait on Anchore);
 * 2. Anchore version and capability check: wrong API version or rejected credentials are fatal, an unreachable
 *    Anchore is retried (with backoff) and keeps /readyz failing;
 * 3. caches synced before any controller starts, so nothing is judged on a partial view.
 */
export async function startOperator(cfg: Config, deps: OperatorDeps): Promise<RunningOperator> {
  const log = deps.log;
  const metrics = deps.metrics ?? new OperatorMetrics(undefined, { version: VERSION, maxSeries: cfg.metrics.maxSeries });
  let anchoreOk = false;
  let stopped = false;
  // Built once the controllers exist; the readiness check reads it (unset until then: nothing rejected yet).
  const late: { reachability?: AnchoreReachability } = {};
  // Built before the caches (the pod cache keeps only the namespaces in scope); a bad filter fails here, before any I/O.
  const scope = new Scope({
    namespaces: cfg.namespaces,
    imageExclude: cfg.images.exclude,
    imagePolicy: { missingTagPolicy: cfg.images.missingTagPolicy, ...(cfg.images.registryOverride ? { registryOverride: cfg.images.registryOverride } : {}) },
    defaultAccount: cfg.anchore.account,
    routes: cfg.accounts.routes,
    ...(cfg.accounts.namespaceLabel ? { accountLabel: cfg.accounts.namespaceLabel } : {}),
  });
  // Constructed only (no I/O until started): the health checks read the caches.
  const kube = new KubeClient({ ...(cfg.kube.kubeconfig ? { kubeconfig: cfg.kube.kubeconfig } : {}), userAgent: `anchore-operator/${VERSION}` });
  const stores = createClusterStores({
    client: kube,
    log: log.child({ component: 'informer' }),
    relistIntervalMs: cfg.kube.resyncMs,
    watchdogMs: cfg.kube.watchdogMs,
    podNamespaces: (ns) => scope.includesNamespace(ns),
    metrics: {
      watchRestart: (resource, reason) => metrics.watchRestarts.inc({ resource, reason }),
      event: (resource) => metrics.watchLastEvent.set({ resource }, Date.now() / 1000),
      listed: (resource) => metrics.watchLastEvent.set({ resource }, Date.now() / 1000),
    },
  });
  const ready = (): boolean => anchoreOk && stores.synced() && !stopped;
  const health = await startHealthServer({
    host: cfg.http.bindAddress,
    port: cfg.http.healthPort,
    log,
    checks: [
      { name: 'shutdown', ok: () => !stopped, detail: () => 'shutting down (admission still answers until the endpoints have moved)' },
      { name: 'anchore', ok: () => anchoreOk, detail: () => 'Anchore has not answered the version check yet' },
      // The informers start once Anchore answered: until then the caches wait on Anchore, not on the apiserver.
      { name: 'caches', ok: () => stores.synced(), detail: () => (anchoreOk ? 'informer caches not synced yet' : 'informers start once Anchore answers') },
      {
        name: 'anchore-credentials',
        ok: () => late.reachability?.credentialsRejected === undefined,
        detail: () => `Anchore rejects the operator credentials (401) since ${late.reachability?.credentialsRejected ?? '?'}: update the Secret (read again when it changes)`,
        // With admission on, this replica still judges from what it knows; failing readiness would hand every review
        // to the webhook's failurePolicy. The metric and the alert say it then.
        advisory: () => cfg.admission.enabled,
      },
    ],
  }).catch(async (err: unknown) => {
    await kube.close();
    throw err;
  });
  const metricsServer = await startMetricsServer({
    host: cfg.http.bindAddress,
    port: cfg.http.metricsPort,
    registry: metrics.registry,
    log,
    afterScrape: () => metrics.releaseComputed(),
    ...(cfg.http.metricsTls ? { tls: cfg.http.metricsTls, access: new KubeAccessReviewer(kube) } : {}),
  }).catch(async (err: unknown) => {
    await Promise.allSettled([health.close(), kube.close()]);
    throw err;
  });
  metrics.ready.set(0);

  // Every Anchore request outcome goes to the metrics, and to the reachability tracker once the controllers exist.
  const requestObservers: Array<(e: Parameters<OperatorMetrics['anchoreRequest']>[0]) => void> = [(e) => metrics.anchoreRequest(e)];
  const http =
    deps.anchore === undefined
      ? new AnchoreHttpClient({
          url: cfg.anchore.url,
          auth: cfg.anchore.auth,
          ...(cfg.anchore.caFile ? { caFile: cfg.anchore.caFile } : {}),
          insecureSkipTlsVerify: cfg.anchore.insecureSkipTlsVerify,
          timeouts: { requestMs: cfg.anchore.timeoutMs },
          concurrency: cfg.anchore.concurrency,
          ratePerSecond: cfg.anchore.ratePerSecond,
          burst: cfg.anchore.burst,
          userAgent: `anchore-operator/${VERSION}`,
          log: log.child({ component: 'anchore' }),
          onRequest: (e) => {
            for (const observe of requestObservers) observe(e);
          },
        })
      : undefined;
  const anchore: AnchoreApi = deps.anchore ?? (http as AnchoreHttpClient);

  // Counters exist from the start (at 0), so dashboards and rate() see them before the first restart.
  for (const r of stores.all) {
    for (const reason of WATCH_RESTART_REASONS) metrics.watchRestarts.inc({ resource: r.resource, reason }, 0);
  }
  metrics.stateGauge(METRIC.watchObjects, 'Objects held in each informer cache', ['resource'], () => stores.all.map((r) => [{ resource: r.resource }, r.size] as [{ resource: string }, number]));

  const missingAccounts = new MissingAccounts(log, metrics);
  // Cleared when nothing names a missing account any more; the namespaces each one strands, gauged.
  trackMissingAccounts({ missing: missingAccounts, scope, stores, metrics });
  // The shared image model: built here, written by the image controller (leader) and by Anchore's lists (every
  // replica), read by admission, bindings and metrics.
  const catalog = new ImageCatalog();
  const anchoreImages = new AnchoreImages({
    anchore,
    catalog,
    refreshMs: cfg.registration.imagesRefreshMs,
    clock: systemClock,
    log: log.child({ component: 'anchore-images' }),
    onAccountListed: (account) => missingAccounts.present(account),
  });
  const images = new ImageController({
    stores,
    scope,
    anchore,
    catalog,
    anchoreImages,
    missingAccounts,
    clusterName: cfg.clusterName,
    workers: cfg.registration.workers,
    analysisPollMaxMs: cfg.registration.analysisPollMaxMs,
    log,
    metrics,
  });
  const inventory = new InventoryController({
    stores,
    scope,
    anchore,
    clusterName: cfg.clusterName,
    intervalMs: cfg.inventory.intervalMs,
    debounceMs: cfg.inventory.debounceMs,
    minIntervalMs: cfg.inventory.minIntervalMs,
    batchBytes: cfg.inventory.batchBytes,
    splitNamespaces: cfg.inventory.splitNamespaces,
    budgetSeconds: cfg.inventory.budgetSeconds,
    budgetFloorBytesPerSecond: cfg.inventory.budgetFloorBytesPerSecond,
    missingAccounts,
    log,
    metrics,
  });
  const cveFilter = cfg.metrics.cveSeries ? { minSeverity: cfg.metrics.cveMinSeverity, fixableOnly: cfg.metrics.cveFixableOnly } : undefined;
  const evaluations = new EvaluationCache(anchore, cfg.bindings.evaluationConcurrency, Date.now, cveFilter ? { cveFilter } : {});
  // An image Anchore no longer holds (gone from its list, on every replica; or a 404): no verdict of it is served again.
  catalog.onVanished((v) => evaluations.forgetImage(v.account, v.digests));
  const events = new KubeEventRecorder({ client: kube, log, instance: cfg.integration.instanceId, metrics });
  const bindings = new BindingController({
    stores,
    bindings: stores.bindings,
    clusterBindings: stores.clusterBindings,
    scope,
    images,
    cache: evaluations,
    writer: new KubeBindingStatusWriter(kube),
    events,
    workers: cfg.bindings.workers,
    policyPollMs: cfg.bindings.policyPollMs,
    installId: cfg.bindings.installId,
    missingAccounts,
    log,
    metrics,
  });
  const vulnerabilities = new VulnerabilityController({
    images,
    cache: evaluations,
    refreshMs: cfg.metrics.vulnerabilityRefreshMs,
    workers: 4,
    log,
    metrics,
  });
  const reports = cfg.metrics.reports.enabled
    ? new ReportsController({
        anchore,
        accounts: () => scope.staticAccounts,
        metrics: cfg.metrics.reports.metrics,
        intervalMs: cfg.metrics.reports.intervalMs,
        log,
        operatorMetrics: metrics,
      })
    : undefined;
  const integration = cfg.integration.enabled
    ? new IntegrationController({
        anchore,
        account: cfg.anchore.account,
        username: cfg.anchore.auth.type === 'apikey' ? '_api_key' : cfg.anchore.auth.username,
        clusterName: cfg.clusterName,
        registrationId: cfg.integration.registrationId,
        instanceId: cfg.integration.instanceId,
        ...(cfg.integration.namespace ? { namespace: cfg.integration.namespace } : {}),
        version: VERSION,
        healthIntervalMs: cfg.integration.healthIntervalMs,
        accounts: scope.staticAccounts,
        namespaces: cfg.namespaces.include.patterns,
        configuration: integrationConfiguration(cfg),
        inventoryStatus: () => inventory.status(),
        log,
      })
    : undefined;

  // Started and stopped together: at once, or while this replica holds the lease.
  const controllers = new ControllerSet(
    [
      { name: 'image', start: () => images.start(), queue: images.queue },
      { name: 'inventory', enabled: cfg.inventory.enabled, start: () => inventory.start(), queue: inventory.queue },
      // Bindings announce verdicts: first learn which Events already stand, so a restart or a failover repeats none.
      { name: 'binding', after: () => events.seed(), start: () => bindings.start(), stop: () => bindings.stop(), queue: bindings.queue },
      { name: 'vulnerability', enabled: cfg.metrics.vulnerabilities, start: () => vulnerabilities.start(), queue: vulnerabilities.queue },
      ...(integration ? [{ name: 'integration', start: () => integration.start(), stop: () => integration.stop() }] : []),
      ...(reports ? [{ name: 'reports', start: () => reports.start(), stop: () => reports.stop() }] : []),
    ],
    log,
  );
  metrics.stateGauge(METRIC.inventoryBatchLimit, "Byte limit of an account's inventory batches learned from Anchore answering 413 (only accounts that were refused)", ['account'], () =>
    inventory.learnedLimits(),
  );
  // Registers the credentials-rejected gauge (after the batch-limit gauge: /metrics keeps its order).
  const reachability = new AnchoreReachability({
    probe: () => anchore.version(),
    credentialProbe: () => anchore.listPolicies(cfg.anchore.account),
    probeMs: 5_000,
    clock: systemClock,
    log: log.child({ component: 'anchore' }),
    metrics,
    onRecovered: (downForMs) => {
      const moved = controllers.retryFailedNow();
      log.info({ downForMs, retriedNow: moved }, 'Anchore is back: retrying backed-off work now');
    },
    onCredentialsAccepted: () => {
      const moved = controllers.retryFailedNow();
      log.info({ retriedNow: moved }, 'credentials accepted: retrying backed-off work now');
    },
  });
  late.reachability = reachability;
  requestObservers.push((e) => reachability.observe(e));
  const le = cfg.leaderElection;
  const elector = le.enabled
    ? new LeaderElector({
        lock: new KubeLeaseLock(kube, le.namespace, le.leaseName),
        identity: le.identity,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        clock: systemClock,
        log: log.child({ component: 'leader-election' }),
        ...controllers.leadership(() => deps.onLeadershipLost?.(), { lease: `${le.namespace}/${le.leaseName}`, identity: le.identity }),
      })
    : undefined;
  const isLeader = (): boolean => (elector ? elector.isLeader() : controllers.working);
  registerFindingsMetrics({
    metrics,
    images,
    vulnerabilities,
    bindings,
    bindingStores: [stores.bindings, stores.clusterBindings],
    queues: controllers.queues,
    cveSeries: cfg.metrics.cveSeries,
    isLeader,
  });

  let admission: { port: number; validator: AdmissionValidator; close(): Promise<void> } | undefined;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Not ready from here on (as /readyz says), not 1 until the process is gone.
    metrics.ready.set(0);
    const stopping = Date.now();
    reachability.stop();
    anchoreImages.stop();
    await controllers.stop(cfg.shutdownDrainMs);
    // Release the lease only after the work drained, so the next leader does not overlap with it.
    await elector?.stop();
    // The webhook keeps answering (from live caches) while /readyz fails, until the endpoints have moved to the other
    // replicas: closing the port at once would leave the apiserver a window of refused calls on every rollout.
    const handOff = admission ? cfg.admission.shutdownDelayMs - (Date.now() - stopping) : 0;
    if (handOff > 0) {
      log.info({ ms: handOff }, 'still answering admission reviews while the endpoints move');
      await new Promise((r) => setTimeout(r, handOff));
    }
    admission?.validator.stop();
    stores.stop();
    await Promise.allSettled([health.close(), metricsServer.close(), admission?.close(), kube.close(), http?.close()]);
  };

  try {
    await checkAnchore(anchore, cfg.anchore.account, log, () => stopped);
    anchoreOk = true;
    log.info('starting informers');
    await stores.start();
    log.info({ pods: stores.pods.size, namespaces: stores.namespaces.size, nodes: stores.nodes.size }, 'caches synced');
    if (cfg.admission.enabled && cfg.admission.tls) {
      // Every replica answers admission from its own caches: admission never waits for leader election.
      const validator = new AdmissionValidator({
        bindings: stores.bindings,
        clusterBindings: stores.clusterBindings,
        namespaces: stores.namespaces,
        scope,
        owns: (b) => bindings.owns(b),
        catalog,
        anchoreImages,
        cache: evaluations,
        anchore,
        access: new KubeAccessReviewer(kube),
        clock: systemClock,
        events,
        config: cfg.admission,
        ...(cfg.admission.ownNamespace ? { ownNamespace: cfg.admission.ownNamespace } : {}),
        clusterName: cfg.clusterName,
        log,
        metrics,
      });
      const server = await startAdmissionServer({
        host: cfg.http.bindAddress,
        port: cfg.admission.port,
        ...cfg.admission.tls,
        review: (r) => validator.review(r),
        log,
        metrics,
      });
      validator.start(scope.staticAccounts);
      admission = { port: server.port, validator, close: () => server.close() };
    }
    // Every replica keeps Anchore's image lists fresh (the ones loaded so far, and those admission loads).
    if (cfg.registration.imagesRefreshMs > 0) anchoreImages.start();
  } catch (err) {
    await stop();
    throw err;
  }
  if (elector) {
    log.info({ lease: `${le.namespace}/${le.leaseName}`, identity: le.identity }, 'campaigning for leadership');
    elector.start();
  } else {
    controllers.start();
  }
  metrics.ready.set(1);
  log.info('operator ready');

  return {
    healthPort: health.port,
    metricsPort: metricsServer.port,
    admission: admission ? { port: admission.port } : undefined,
    isReady: ready,
    isLeader,
    stop,
  };
}

/**
 * Waits until Anchore answers as a V2 server. Unreachable → retry with backoff (we are not ready meanwhile).
 * V1 server, rejected credentials, or a missing required operation → FatalStartupError with the cause.
 */
async function checkAnchore(anchore: AnchoreApi, account: string, log: Logger, stopped: () => boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const v = await anchore.version();
      if (v.api !== '2') {
        throw new FatalStartupError(`Anchore at ANCHORE_URL reports API version ${v.api ? `"${v.api}"` : '(none)'}; this operator needs the V2 API (Anchore Enterprise 5.x)`);
      }
      const caps = await anchore.capabilities();
      if (!caps.specAvailable) log.warn('Anchore publishes no /v2/openapi.json; cannot check which operations it supports');
      if (caps.missingRequired.length) {
        throw new FatalStartupError(`Anchore lacks operations this operator needs: ${caps.missingRequired.join(', ')}`);
      }
      if (caps.missingOptional.length) log.warn({ missing: caps.missingOptional }, 'Anchore lacks optional operations; the features using them are off');
      // Version and spec are anonymous: prove the credentials (and the default account) with one small scoped call.
      try {
        await anchore.listPolicies(account);
      } catch (err) {
        if (err instanceof AnchoreError && err.kind === 'auth' && err.status === 403) {
          log.warn({ account, err: err.message }, 'credentials accepted, but they may not list policies in the default account; policy bindings will fail there');
        } else if (err instanceof AnchoreError && err.kind === 'not-found') {
          throw new FatalStartupError(`Anchore account "${account}" (ANCHORE_ACCOUNT) does not exist or is not visible to this user: ${err.message}`);
        } else {
          throw err;
        }
      }
      log.info({ service: v.service, api: v.api }, 'Anchore answered');
      return;
    } catch (err) {
      if (err instanceof FatalStartupError) throw err;
      if (err instanceof AnchoreError && err.kind === 'auth') {
        throw new FatalStartupError(`Anchore rejected the operator's credentials: ${err.message}`);
      }
      // Mistakes that waiting cannot fix: say the cause and the fix once, and stop (exit 1), rather than "not reachable
      // yet" for ever.
      if (err instanceof AnchoreError && err.kind === 'tls') throw new FatalStartupError(`cannot talk to Anchore at ANCHORE_URL: ${err.message}`);
      if (err instanceof AnchoreError && err.kind === 'not-found' && err.operation === 'version_check') {
        throw new FatalStartupError(
          `ANCHORE_URL answers 404 for both /v2/version and /version (${err.message}): its path is wrong; give the base URL Anchore serves /v2 under, e.g. https://anchore.example.com:8228, with no other path`,
        );
      }
      if (stopped()) throw err;
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
      log.warn({ err: errorMessage(err), retryInMs: delay }, 'Anchore not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
