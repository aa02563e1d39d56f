import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import type { AnchoreAuth } from './anchore/auth.ts';
import { AnchoreUrlError, parseAnchoreUrl } from './anchore/url.ts';
import type { MissingTagPolicy } from './discovery/container-image.ts';
import { compileGlobs } from './discovery/glob.ts';
import { parseLabelSelectorString } from './discovery/label-selector.ts';
import { validateLeaderTimings } from './runtime/leader.ts';

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The pod's namespace when running in a cluster (the service account mount), else undefined. */
function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Invalid configuration: main prints `message` as one line and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface AccountRoute {
  account: string;
  /** Namespace names or globs. */
  namespaces: string[];
}

export interface Config {
  anchore: {
    url: string;
    auth: AnchoreAuth;
    /** Default account (x-anchore-account) for namespaces no route claims. */
    account: string;
    caFile?: string;
    insecureSkipTlsVerify: boolean;
    timeoutMs: number;
    concurrency: number;
    ratePerSecond: number;
    burst: number;
  };
  clusterName: string;
  namespaces: { include: string[]; exclude: string[]; labelSelector?: string };
  images: { exclude: string[]; missingTagPolicy: MissingTagPolicy; registryOverride?: string };
  accounts: { routes: AccountRoute[]; namespaceLabel?: string };
  inventory: { enabled: boolean; intervalMs: number; debounceMs: number; minIntervalMs: number; batchBytes: number };
  integration: { enabled: boolean; healthIntervalMs: number; registrationId: string; instanceId: string; namespace?: string };
  registration: { workers: number; analysisPollMaxMs: number };
  bindings: {
    workers: number;
    evaluationConcurrency: number;
    policyPollMs: number;
    /** This install's name on the ClusterAnchorePolicyBindings it owns (status.install). */
    installId: string;
  };
  metrics: {
    maxSeries: number;
    vulnerabilities: boolean;
    vulnerabilityRefreshMs: number;
    cveSeries: boolean;
    cveMinSeverity: 'Critical' | 'High' | 'Medium' | 'Low' | 'Negligible' | 'Unknown';
    cveFixableOnly: boolean;
    reports: { enabled: boolean; metrics: string[]; intervalMs: number };
  };
  kube: { kubeconfig?: string; resyncMs: number; watchdogMs: number };
  http: { bindAddress: string; healthPort: number; metricsPort: number; metricsTls?: { certFile: string; keyFile: string } };
  leaderElection: {
    enabled: boolean;
    namespace: string;
    leaseName: string;
    /** Pod name plus a random suffix: unique per process. */
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  admission: AdmissionConfig;
  log: { level: string; pretty: boolean };
  shutdownDrainMs: number;
}

/** The validating admission webhook (docs/admission.md): served on every replica, leader or not. */
export interface AdmissionConfig {
  enabled: boolean;
  port: number;
  /** PEM pair for HTTPS (required when enabled; reloaded when the files change). */
  tls?: { certFile: string; keyFile: string };
  /** Longest wait for Anchore on a cache miss; must stay below the webhook's timeoutSeconds. */
  deadlineMs: number;
  /** Namespace names or globs never checked (the operator's own namespace is always exempt). */
  exemptNamespaces: string[];
  /** Register images Anchore does not hold, after answering a request that is not a dry run. */
  registerUnknown: boolean;
  /** The operator's own namespace (POD_NAMESPACE or the in-cluster one): always exempt. */
  ownNamespace?: string;
}

type Source = Record<string, unknown>;

/** Every setting, its default and meaning: the README table is generated from the same words. */
export const SETTINGS: ReadonlyArray<{ name: string; default: string; help: string }> = [
  { name: 'ANCHORE_URL', default: '(required)', help: 'Anchore API base URL, with or without a trailing /v2, e.g. https://anchore:8228 (a /v1 URL is refused)' },
  { name: 'ANCHORE_USERNAME', default: '', help: 'Username (Basic or OAuth). Needs permission to act as the routed accounts (x-anchore-account)' },
  { name: 'ANCHORE_PASSWORD / ANCHORE_PASSWORD_FILE', default: '', help: 'Password, or a file holding it (a mounted Secret)' },
  { name: 'ANCHORE_API_KEY / ANCHORE_API_KEY_FILE', default: '', help: 'API key (sent as Basic _api_key:<key>); instead of username/password' },
  { name: 'ANCHORE_AUTH_MODE', default: 'basic', help: 'basic | oauth (password grant, refreshed before expiry). API keys imply basic' },
  { name: 'ANCHORE_ACCOUNT', default: 'admin', help: 'Default Anchore account for namespaces no route claims' },
  { name: 'ANCHORE_CA_FILE', default: '', help: 'PEM CA bundle used to verify Anchore TLS' },
  { name: 'ANCHORE_INSECURE_SKIP_TLS_VERIFY', default: 'false', help: 'Disable TLS verification (testing only; logged as a warning)' },
  { name: 'ANCHORE_TIMEOUT_SECONDS', default: '60', help: 'Deadline of one Anchore HTTP request' },
  { name: 'ANCHORE_CONCURRENCY', default: '16', help: 'Maximum Anchore requests in flight' },
  { name: 'ANCHORE_RATE_LIMIT', default: '100', help: 'Anchore requests per second (sustained); ANCHORE_RATE_BURST (200) at once' },
  { name: 'CLUSTER_NAME', default: '(required)', help: 'Cluster name reported in the runtime inventory' },
  { name: 'NAMESPACES_INCLUDE', default: '(all)', help: 'Comma-separated namespace names or globs to watch' },
  { name: 'NAMESPACES_EXCLUDE', default: '', help: 'Comma-separated namespace names or globs to ignore (wins over include)' },
  { name: 'NAMESPACE_LABEL_SELECTOR', default: '', help: 'Only namespaces whose labels match this selector, e.g. anchore.io/scan!=false' },
  { name: 'IMAGES_EXCLUDE', default: '', help: 'Comma-separated globs on the normalised image (docker.io/library/nginx:1.25) to ignore' },
  { name: 'MISSING_TAG_POLICY', default: 'digest', help: 'Images run by digest only: digest (tag = digest hex) | insert (tag UNKNOWN) | drop' },
  { name: 'MISSING_REGISTRY_OVERRIDE', default: '', help: 'Registry for references that name none (instead of docker.io)' },
  { name: 'ACCOUNT_ROUTES', default: '', help: 'Namespace → account routes: "team-a:ns1,team-a-*;team-b:ns2" (or a YAML map in CONFIG_FILE)' },
  { name: 'ACCOUNT_NAMESPACE_LABEL', default: '', help: 'Namespace label naming the account (used when no route matches)' },
  { name: 'INVENTORY_ENABLED', default: 'true', help: 'Send the runtime inventory (POST /v2/kubernetes-inventory)' },
  { name: 'INVENTORY_INTERVAL_SECONDS', default: '60', help: 'Heartbeat: resend the full inventory at least this often' },
  { name: 'INVENTORY_DEBOUNCE_MS', default: '500', help: 'Wait this long after a change before sending' },
  { name: 'INVENTORY_MIN_INTERVAL_MS', default: '2000', help: 'Never send one account\'s inventory more often than this' },
  { name: 'INVENTORY_BATCH_BYTES', default: '0', help: 'Split a report into batches of at most this many bytes, on namespace boundaries (0 = no limit)' },
  { name: 'INTEGRATION_ENABLED', default: 'true', help: 'Register as an Anchore integration and send health reports (Enterprise ≥ 5.11)' },
  { name: 'HEALTH_REPORT_INTERVAL_SECONDS', default: '60', help: 'Health report interval (30–600)' },
  { name: 'INTEGRATION_ID', default: 'anchore-operator-<CLUSTER_NAME>', help: 'Stable registration id (registration_instance_id is the pod name)' },
  { name: 'REGISTRATION_WORKERS', default: '8', help: 'Images registered/polled in parallel' },
  { name: 'ANALYSIS_POLL_MAX_SECONDS', default: '60', help: 'Longest wait between analysis-status polls of one image' },
  { name: 'BINDING_WORKERS', default: '4', help: 'Policy bindings reconciled in parallel' },
  { name: 'EVALUATION_CONCURRENCY', default: '8', help: 'Anchore policy checks / vulnerability reads in flight (shared by all bindings)' },
  { name: 'POLICY_POLL_SECONDS', default: '60', help: "How often each account's active policy is checked for a change (0 = never)" },
  { name: 'METRICS_MAX_SERIES', default: '10000', help: 'Budget of findings series per scrape; beyond it series are dropped and counted' },
  { name: 'METRICS_VULNERABILITIES', default: 'true', help: 'Read vulnerability counts of every running analysed image for the findings metrics' },
  { name: 'VULNERABILITY_REFRESH_SECONDS', default: '3600', help: 'How often each image\'s vulnerability counts are read again' },
  { name: 'METRICS_CVE_SERIES', default: 'false', help: 'Export one series per CVE (high cardinality; filtered by the next two settings)' },
  { name: 'METRICS_CVE_MIN_SEVERITY', default: 'Critical', help: 'Per-CVE series only at or above this severity' },
  { name: 'METRICS_CVE_FIXABLE_ONLY', default: 'true', help: 'Per-CVE series only for vulnerabilities with a fix' },
  { name: 'REPORTS_METRICS_ENABLED', default: 'false', help: "Export Anchore's own account metrics from its Reports GraphQL API (POST /v2/reports/graphql)" },
  { name: 'REPORTS_METRICS', default: 'vulnerabilities.*', help: 'Comma-separated globs on the Reports metric ids to export' },
  { name: 'REPORTS_INTERVAL_SECONDS', default: '300', help: 'How often the Reports metrics are read' },
  { name: 'KUBECONFIG', default: '(in-cluster)', help: 'Kubeconfig path when running outside the cluster' },
  { name: 'RESYNC_INTERVAL_SECONDS', default: '600', help: 'Full relist of every watched resource (recovers missed events)' },
  { name: 'WATCH_WATCHDOG_SECONDS', default: '300', help: 'Relist a resource whose watch was silent this long' },
  { name: 'BIND_ADDRESS', default: '0.0.0.0', help: 'Address of the health and metrics servers' },
  { name: 'HEALTH_PORT', default: '8081', help: '/healthz and /readyz' },
  { name: 'METRICS_PORT', default: '8080', help: '/metrics' },
  { name: 'METRICS_SECURE', default: 'false', help: 'Serve /metrics over HTTPS; callers need a bearer token allowed to GET /metrics (TokenReview + SubjectAccessReview)' },
  { name: 'METRICS_CERT_FILE / METRICS_KEY_FILE', default: '', help: 'PEM certificate and key for METRICS_SECURE (reloaded when the files change)' },
  { name: 'ADMISSION_ENABLED', default: 'false', help: 'Serve the validating admission webhook (on every replica, leader or not); bindings choose audit, warn or deny (docs/admission.md)' },
  { name: 'ADMISSION_PORT', default: '9443', help: 'HTTPS port of the admission webhook (/validate)' },
  { name: 'ADMISSION_CERT_FILE / ADMISSION_KEY_FILE', default: '', help: 'PEM certificate and key of the admission webhook (required with ADMISSION_ENABLED; reloaded when the files change)' },
  { name: 'ADMISSION_DEADLINE_MS', default: '3000', help: "Longest wait for Anchore on a cache miss; keep it below the webhook's timeoutSeconds (the chart does)" },
  { name: 'ADMISSION_EXEMPT_NAMESPACES', default: 'kube-system', help: "Comma-separated namespace names or globs never checked; the operator's own namespace (POD_NAMESPACE) always is" },
  { name: 'ADMISSION_REGISTER_UNKNOWN', default: 'true', help: 'After answering a request that is not a dry run, register images Anchore does not hold yet (POST /v2/images)' },
  { name: 'INSTALL_ID', default: '(LEADER_ELECTION_NAMESPACE/LEADER_ELECTION_ID)', help: 'Names this install on the ClusterAnchorePolicyBindings it owns (status.install): another install leaves them alone; the anchore.io/install annotation hands one over' },
  { name: 'LEADER_ELECTION', default: 'true', help: 'Elect one working replica on a coordination.k8s.io Lease; the others serve health and metrics' },
  { name: 'LEADER_ELECTION_NAMESPACE', default: '(POD_NAMESPACE, in-cluster namespace, or default)', help: 'Namespace of the Lease' },
  { name: 'LEADER_ELECTION_ID', default: 'anchore-operator', help: 'Name of the Lease' },
  { name: 'LEASE_DURATION_SECONDS', default: '15', help: 'A follower takes over a lease not renewed for this long (client-go default)' },
  { name: 'RENEW_DEADLINE_SECONDS', default: '10', help: 'The leader stops working when it could not renew for this long' },
  { name: 'RETRY_PERIOD_SECONDS', default: '2', help: 'Interval of lease renewals and acquisition attempts' },
  { name: 'POD_NAME / POD_NAMESPACE', default: '(hostname)', help: 'Set from the downward API: instance id, lease identity, namespace for Events and the Lease' },
  { name: 'LOG_LEVEL', default: 'info', help: 'trace | debug | info | warn | error' },
  { name: 'LOG_PRETTY', default: 'false', help: 'Human-readable logs instead of JSON' },
  { name: 'SHUTDOWN_DRAIN_SECONDS', default: '20', help: 'On SIGTERM, wait this long for in-flight work' },
  { name: 'CONFIG_FILE', default: '', help: 'YAML file with any of these keys except KUBECONFIG, POD_NAME, POD_NAMESPACE (environment only); environment variables win' },
];

/** Settings only the environment can give (read before the file, or set by Kubernetes): refused in CONFIG_FILE. */
const ENV_ONLY: ReadonlyMap<string, string> = new Map([
  ['KUBECONFIG', 'is read from the environment only (the Kubernetes client loads it before any setting)'],
  ['POD_NAME', 'is set by Kubernetes (downward API), not by the config file'],
  ['POD_NAMESPACE', 'is set by Kubernetes (downward API), not by the config file'],
  ['CONFIG_FILE', 'cannot name another config file'],
]);

/** Reads CONFIG_FILE (if set) and the environment; throws ConfigError naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let file: Source = {};
  if (env['CONFIG_FILE']) {
    let text: string;
    try {
      text = readFileSync(env['CONFIG_FILE'], 'utf8');
    } catch (err) {
      throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: invalid YAML (${(err as Error).message.split('\n')[0]})`);
    }
    if (parsed != null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: expected a map of settings`);
    }
    file = (parsed ?? {}) as Source;
    const known = new Set(SETTINGS.flatMap((s) => s.name.split(' / ')).concat(['ANCHORE_RATE_BURST']));
    for (const k of Object.keys(file)) {
      if (ENV_ONLY.has(k)) throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: ${k} ${ENV_ONLY.get(k)}; remove it from the file`);
      if (!known.has(k)) throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: unknown setting "${k}"`);
    }
  }
  const r = new Reader(env, file);
  // Removed setting: the apiserver accepts Events about cluster-scoped objects only in namespace default.
  const eventNs = env['EVENT_NAMESPACE'];
  if (eventNs && eventNs !== 'default') {
    throw new ConfigError(`EVENT_NAMESPACE is no longer a setting: Events about cluster-scoped bindings must be in namespace default (the apiserver refuses them elsewhere); unset it`);
  }

  const url = r.string('ANCHORE_URL');
  if (!url) throw new ConfigError('ANCHORE_URL is required (e.g. https://anchore-api.anchore:8228)');
  try {
    parseAnchoreUrl(url);
  } catch (err) {
    if (err instanceof AnchoreUrlError) throw new ConfigError(err.message);
    throw err;
  }

  const apiKey = r.secret('ANCHORE_API_KEY');
  const username = r.string('ANCHORE_USERNAME');
  const password = r.secret('ANCHORE_PASSWORD');
  const mode = r.oneOf('ANCHORE_AUTH_MODE', ['basic', 'oauth'], 'basic');
  let auth: AnchoreAuth;
  if (apiKey) {
    if (username || password) throw new ConfigError('set either ANCHORE_API_KEY or ANCHORE_USERNAME/ANCHORE_PASSWORD, not both');
    auth = { type: 'apikey', key: apiKey };
  } else {
    if (!username || !password) {
      throw new ConfigError('Anchore credentials are required: ANCHORE_USERNAME and ANCHORE_PASSWORD (or _FILE), or ANCHORE_API_KEY');
    }
    auth = mode === 'oauth' ? { type: 'oauth', username, password } : { type: 'basic', username, password };
  }

  const caFile = r.string('ANCHORE_CA_FILE');
  if (caFile) {
    try {
      readFileSync(caFile);
    } catch (err) {
      throw new ConfigError(`ANCHORE_CA_FILE ${caFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }

  const clusterName = r.string('CLUSTER_NAME');
  if (!clusterName) throw new ConfigError('CLUSTER_NAME is required (the name Anchore shows for this cluster)');

  const include = r.list('NAMESPACES_INCLUDE');
  const exclude = r.list('NAMESPACES_EXCLUDE');
  for (const [name, globs] of [['NAMESPACES_INCLUDE', include], ['NAMESPACES_EXCLUDE', exclude]] as const) {
    const c = compileGlobs(globs);
    if (!c.ok) throw new ConfigError(`${name}: ${c.reason}`);
  }
  const labelSelector = r.string('NAMESPACE_LABEL_SELECTOR');
  if (labelSelector) {
    const s = parseLabelSelectorString(labelSelector);
    if (!s.ok) throw new ConfigError(`NAMESPACE_LABEL_SELECTOR: ${s.reason}`);
  }
  const imageExclude = r.list('IMAGES_EXCLUDE');
  const ie = compileGlobs(imageExclude);
  if (!ie.ok) throw new ConfigError(`IMAGES_EXCLUDE: ${ie.reason}`);

  const routes = r.accountRoutes('ACCOUNT_ROUTES');
  const healthSec = r.int('HEALTH_REPORT_INTERVAL_SECONDS', 60, 30, 600);
  const podName = env['POD_NAME'] || hostname();

  const cfg: Config = {
    anchore: {
      url,
      auth,
      account: r.string('ANCHORE_ACCOUNT') || 'admin',
      insecureSkipTlsVerify: r.bool('ANCHORE_INSECURE_SKIP_TLS_VERIFY', false),
      timeoutMs: r.int('ANCHORE_TIMEOUT_SECONDS', 60, 1, 3600) * 1000,
      concurrency: r.int('ANCHORE_CONCURRENCY', 16, 1, 1024),
      ratePerSecond: r.int('ANCHORE_RATE_LIMIT', 100, 1, 100_000),
      burst: r.int('ANCHORE_RATE_BURST', 200, 1, 100_000),
    },
    clusterName,
    namespaces: { include, exclude },
    images: { exclude: imageExclude, missingTagPolicy: r.oneOf('MISSING_TAG_POLICY', ['digest', 'insert', 'drop'], 'digest') },
    accounts: { routes },
    inventory: {
      enabled: r.bool('INVENTORY_ENABLED', true),
      intervalMs: r.int('INVENTORY_INTERVAL_SECONDS', 60, 5, 86_400) * 1000,
      debounceMs: r.int('INVENTORY_DEBOUNCE_MS', 500, 0, 600_000),
      minIntervalMs: r.int('INVENTORY_MIN_INTERVAL_MS', 2000, 0, 3_600_000),
      batchBytes: r.int('INVENTORY_BATCH_BYTES', 0, 0, 1 << 30),
    },
    integration: {
      enabled: r.bool('INTEGRATION_ENABLED', true),
      healthIntervalMs: healthSec * 1000,
      registrationId: r.string('INTEGRATION_ID') || `anchore-operator-${clusterName}`,
      instanceId: podName,
    },
    registration: {
      workers: r.int('REGISTRATION_WORKERS', 8, 1, 256),
      analysisPollMaxMs: r.int('ANALYSIS_POLL_MAX_SECONDS', 60, 1, 3600) * 1000,
    },
    bindings: {
      workers: r.int('BINDING_WORKERS', 4, 1, 64),
      evaluationConcurrency: r.int('EVALUATION_CONCURRENCY', 8, 1, 256),
      policyPollMs: r.int('POLICY_POLL_SECONDS', 60, 0, 86_400) * 1000,
      installId: '',
    },
    metrics: {
      maxSeries: r.int('METRICS_MAX_SERIES', 10_000, 0, 10_000_000),
      vulnerabilities: r.bool('METRICS_VULNERABILITIES', true),
      vulnerabilityRefreshMs: r.int('VULNERABILITY_REFRESH_SECONDS', 3600, 60, 7 * 86_400) * 1000,
      cveSeries: r.bool('METRICS_CVE_SERIES', false),
      cveMinSeverity: r.oneOf('METRICS_CVE_MIN_SEVERITY', ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'], 'Critical'),
      cveFixableOnly: r.bool('METRICS_CVE_FIXABLE_ONLY', true),
      reports: {
        enabled: r.bool('REPORTS_METRICS_ENABLED', false),
        metrics: r.list('REPORTS_METRICS').length ? r.list('REPORTS_METRICS') : ['vulnerabilities.*'],
        intervalMs: r.int('REPORTS_INTERVAL_SECONDS', 300, 30, 86_400) * 1000,
      },
    },
    kube: {
      resyncMs: r.int('RESYNC_INTERVAL_SECONDS', 600, 0, 86_400) * 1000,
      watchdogMs: r.int('WATCH_WATCHDOG_SECONDS', 300, 0, 86_400) * 1000,
    },
    http: {
      bindAddress: r.string('BIND_ADDRESS') || '0.0.0.0',
      healthPort: r.int('HEALTH_PORT', 8081, 0, 65535),
      metricsPort: r.int('METRICS_PORT', 8080, 0, 65535),
    },
    leaderElection: {
      enabled: r.bool('LEADER_ELECTION', true),
      namespace: r.string('LEADER_ELECTION_NAMESPACE') || env['POD_NAMESPACE'] || inClusterNamespace() || 'default',
      leaseName: r.string('LEADER_ELECTION_ID') || 'anchore-operator',
      identity: `${podName}_${randomUUID().slice(0, 8)}`,
      leaseDurationMs: r.int('LEASE_DURATION_SECONDS', 15, 2, 3600) * 1000,
      renewDeadlineMs: r.int('RENEW_DEADLINE_SECONDS', 10, 1, 3600) * 1000,
      retryPeriodMs: r.int('RETRY_PERIOD_SECONDS', 2, 1, 600) * 1000,
    },
    admission: {
      enabled: r.bool('ADMISSION_ENABLED', false),
      port: r.int('ADMISSION_PORT', 9443, 0, 65535),
      deadlineMs: r.int('ADMISSION_DEADLINE_MS', 3000, 50, 29_000),
      exemptNamespaces: r.raw('ADMISSION_EXEMPT_NAMESPACES') === undefined ? ['kube-system'] : r.list('ADMISSION_EXEMPT_NAMESPACES'),
      registerUnknown: r.bool('ADMISSION_REGISTER_UNKNOWN', true),
    },
    log: { level: r.oneOf('LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'info'), pretty: r.bool('LOG_PRETTY', false) },
    shutdownDrainMs: r.int('SHUTDOWN_DRAIN_SECONDS', 20, 0, 600) * 1000,
  };
  if (caFile) cfg.anchore.caFile = caFile;
  if (cfg.log.pretty) {
    try {
      createRequire(import.meta.url).resolve('pino-pretty');
    } catch {
      throw new ConfigError('LOG_PRETTY=true needs the pino-pretty package, a development dependency that the production image leaves out; use JSON logs there');
    }
  }
  if (cfg.leaderElection.enabled) {
    const problem = validateLeaderTimings(cfg.leaderElection);
    if (problem) throw new ConfigError(`LEASE_DURATION_SECONDS / RENEW_DEADLINE_SECONDS / RETRY_PERIOD_SECONDS: ${problem}`);
  }
  if (r.bool('METRICS_SECURE', false)) cfg.http.metricsTls = r.pemPair('METRICS', 'METRICS_SECURE needs METRICS_CERT_FILE and METRICS_KEY_FILE (PEM certificate and key)');
  const exempt = compileGlobs(cfg.admission.exemptNamespaces);
  if (!exempt.ok) throw new ConfigError(`ADMISSION_EXEMPT_NAMESPACES: ${exempt.reason}`);
  if (cfg.admission.enabled) {
    cfg.admission.tls = r.pemPair('ADMISSION', 'ADMISSION_ENABLED needs ADMISSION_CERT_FILE and ADMISSION_KEY_FILE (PEM certificate and key the apiserver trusts)');
  }
  if (labelSelector) cfg.namespaces.labelSelector = labelSelector;
  const override = r.string('MISSING_REGISTRY_OVERRIDE');
  if (override) cfg.images.registryOverride = override;
  const nsLabel = r.string('ACCOUNT_NAMESPACE_LABEL');
  if (nsLabel) cfg.accounts.namespaceLabel = nsLabel;
  const kubeconfig = env['KUBECONFIG'];
  if (kubeconfig) cfg.kube.kubeconfig = kubeconfig;
  if (env['POD_NAMESPACE']) cfg.integration.namespace = env['POD_NAMESPACE'];
  const ownNamespace = env['POD_NAMESPACE'] || inClusterNamespace();
  if (ownNamespace) cfg.admission.ownNamespace = ownNamespace;
  // Two installs in one cluster never share a Lease (namespace + name), so that pair names an install by default.
  cfg.bindings.installId = r.string('INSTALL_ID') || `${cfg.leaderElection.namespace}/${cfg.leaderElection.leaseName}`;
  if (cfg.bindings.installId.length > 253 || /\s/.test(cfg.bindings.installId)) {
    throw new ConfigError(`INSTALL_ID "${cfg.bindings.installId.slice(0, 300)}": at most 253 characters, no whitespace`);
  }
  return cfg;
}

/** The config as it may be logged: no credentials, only which kind of credential is in use. */
export function describeConfig(cfg: Config): Record<string, unknown> {
  const { auth, ...anchore } = cfg.anchore;
  return {
    ...cfg,
    anchore: { ...anchore, auth: auth.type, username: auth.type === 'apikey' ? '_api_key' : auth.username },
  };
}

class Reader {
  readonly #env: NodeJS.ProcessEnv;
  readonly #file: Source;
  constructor(env: NodeJS.ProcessEnv, file: Source) {
    this.#env = env;
    this.#file = file;
  }

  raw(name: string): unknown {
    const e = this.#env[name];
    if (e !== undefined && e !== '') return e;
    return this.#file[name];
  }

  string(name: string): string {
    const v = this.raw(name);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(`${name}: expected a string`);
    return String(v).trim();
  }

  /** NAME or NAME_FILE (a mounted Secret); trailing newlines in files are dropped. */
  secret(name: string): string {
    const direct = this.string(name);
    const path = this.string(`${name}_FILE`);
    if (direct && path) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
    if (!path) return direct;
    try {
      return readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
    } catch (err) {
      throw new ConfigError(`${name}_FILE ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }

  /** <PREFIX>_CERT_FILE and <PREFIX>_KEY_FILE, both set and readable; `missing` is the error when either is absent. */
  pemPair(prefix: string, missing: string): { certFile: string; keyFile: string } {
    const certFile = this.string(`${prefix}_CERT_FILE`);
    const keyFile = this.string(`${prefix}_KEY_FILE`);
    if (!certFile || !keyFile) throw new ConfigError(missing);
    for (const [name, file] of [[`${prefix}_CERT_FILE`, certFile], [`${prefix}_KEY_FILE`, keyFile]] as const) {
      try {
        readFileSync(file);
      } catch (err) {
        throw new ConfigError(`${name} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
      }
    }
    return { certFile, keyFile };
  }

  list(name: string): string[] {
    const v = this.raw(name);
    if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter(Boolean);
    return this.string(name)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  int(name: string, def: number, min: number, max: number): number {
    const s = this.string(name);
    if (!s) return def;
    if (!/^-?\d+$/.test(s)) throw new ConfigError(`${name}: "${s}" is not a whole number`);
    const n = Number(s);
    if (n < min || n > max) throw new ConfigError(`${name}: ${n} is out of range ${min}..${max}`);
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const s = this.string(name).toLowerCase();
    if (!s) return def;
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    throw new ConfigError(`${name}: "${s}" is not a boolean (true/false)`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], def: T): T {
    const s = this.string(name);
    if (!s) return def;
    if (!allowed.includes(s as T)) throw new ConfigError(`${name}: "${s}" must be one of ${allowed.join(', ')}`);
    return s as T;
  }

  accountRoutes(name: string): AccountRoute[] {
    const v = this.raw(name);
    if (v === undefined || v === null || v === '') return [];
    const routes: AccountRoute[] = [];
    if (typeof v === 'object' && !Array.isArray(v)) {
      for (const [account, ns] of Object.entries(v as Source)) {
        const list = Array.isArray(ns) ? ns.map(String) : String(ns).split(',');
        routes.push({ account, namespaces: list.map((s) => s.trim()).filter(Boolean) });
      }
    } else {
      for (const part of String(v).split(';').map((s) => s.trim()).filter(Boolean)) {
        const i = part.indexOf(':');
        if (i <= 0) throw new ConfigError(`${name}: "${part}" must look like account:namespace,namespace`);
        routes.push({ account: part.slice(0, i).trim(), namespaces: part.slice(i + 1).split(',').map((s) => s.trim()).filter(Boolean) });
      }
    }
    for (const route of routes) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]*$/.test(route.account)) throw new ConfigError(`${name}: "${route.account}" is not a valid account name`);
      if (route.namespaces.length === 0) throw new ConfigError(`${name}: account ${route.account} has no namespaces`);
      const c = compileGlobs(route.namespaces);
      if (!c.ok) throw new ConfigError(`${name}: ${c.reason}`);
    }
    return routes;
  }
}

/**
 * The settings sent as the integration registration's `configuration`, so Anchore's UI shows how this install is set
 * up. Non-secret settings only, by construction (an allow-list): never credentials, the CA or the URL's query.
 */
export function integrationConfiguration(cfg: Config): Record<string, unknown> {
  return {
    anchore_account: cfg.anchore.account,
    namespaces: { include: cfg.namespaces.include, exclude: cfg.namespaces.exclude, ...(cfg.namespaces.labelSelector ? { label_selector: cfg.namespaces.labelSelector } : {}) },
    account_routes: cfg.accounts.routes.map((r) => ({ account: r.account, namespaces: r.namespaces })),
    ...(cfg.accounts.namespaceLabel ? { account_namespace_label: cfg.accounts.namespaceLabel } : {}),
    image_exclude: cfg.images.exclude,
    missing_tag_policy: cfg.images.missingTagPolicy,
    inventory: { enabled: cfg.inventory.enabled, interval_seconds: cfg.inventory.intervalMs / 1000, batch_bytes: cfg.inventory.batchBytes },
    health_report_interval_seconds: cfg.integration.healthIntervalMs / 1000,
  };
}
