import { X509Certificate, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import type { AnchoreAuth } from './anchore/auth.ts';
import { ANCHORE_CLIENT_DEFAULTS, HEALTH_REPORT_INTERVAL_MAX_S, HEALTH_REPORT_INTERVAL_MIN_S } from './anchore/anchore.port.ts';
import { AnchoreUrlError, parseAnchoreUrl } from './anchore/url.ts';
import type { MissingTagPolicy } from './discovery/container-image.ts';
import { compileGlobs, Globs } from './discovery/glob.ts';
import { imageExclusionGlobs } from './discovery/image-filter.ts';
import { parseLabelSelectorString } from './discovery/label-selector.ts';
import { validateLeaderTimings } from './runtime/leader.ts';
import { DEFAULT_MAX_SERIES } from './telemetry/metrics.ts';

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

/** Reads a file a setting names; a ConfigError naming the setting when it cannot be read. */
function readSettingFile(setting: string, path: string): Buffer;
function readSettingFile(setting: string, path: string, encoding: 'utf8'): string;
function readSettingFile(setting: string, path: string, encoding?: 'utf8'): Buffer | string {
  try {
    return encoding ? readFileSync(path, encoding) : readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${setting} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

interface AccountRoute {
  account: string;
  /** Namespace names or globs, compiled. */
  namespaces: Globs;
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
  /** Globs compiled once here and handed on as they are (src/discovery/glob.ts Globs; `.patterns` for display). */
  namespaces: { include: Globs; exclude: Globs; labelSelector?: string };
  images: { exclude: Globs; missingTagPolicy: MissingTagPolicy; registryOverride?: string };
  accounts: { routes: AccountRoute[]; namespaceLabel?: string };
  inventory: {
    enabled: boolean;
    intervalMs: number;
    debounceMs: number;
    minIntervalMs: number;
    batchBytes: number;
    splitNamespaces: boolean;
    budgetSeconds: number;
    budgetFloorBytesPerSecond: number;
  };
  integration: { enabled: boolean; healthIntervalMs: number; registrationId: string; instanceId: string; namespace?: string };
  registration: { workers: number; analysisPollMaxMs: number; imagesRefreshMs: number };
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
    reports: { enabled: boolean; metrics: Globs; intervalMs: number };
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
  /** Bounds on those registrations: per review, per namespace and minute, per minute in all. */
  registerLimits: { perReview: number; perNamespacePerMinute: number; perMinute: number };
  /** Globs on the image repository (registry/path) that admission may register; empty: any non-IP, non-localhost registry. */
  registerRepositories: string[];
  /** Users whose Pods/ReplicaSets/Jobs, created for a controlling owner, inherit the owner's admission. */
  trustedControllers: string[];
  /** On SIGTERM, keep answering reviews this long (readiness off) so the endpoints move before the port closes. */
  shutdownDelayMs: number;
  /** The operator's own namespace (POD_NAMESPACE or the in-cluster one): always exempt. */
  ownNamespace?: string;
}

type Source = Record<string, unknown>;

/** What every setting shares: its meaning, and how the README table names it when the key alone would not. */
interface Described {
  help: string;
  /** The table's Name cell, when the row covers more than the key (a pair of settings). */
  label?: string;
  /** The table's Default cell, when the loader works the default out (or there is none: the setting is required). */
  shown?: string;
  /** Accepted, but a neighbour's row describes it instead of a row of its own. */
  unlisted?: true;
}
interface IntSetting extends Described {
  kind: 'int';
  default: number;
  min: number;
  max: number;
}
interface BoolSetting extends Described {
  kind: 'bool';
  default: boolean;
}
interface OneOfSetting<T extends string = string> extends Described {
  kind: 'oneOf';
  allowed: readonly T[];
  default: T;
}
interface TextSetting extends Described {
  kind: 'text';
  default: string;
}
/** Comma-separated (or a YAML list). `clearable`: an empty value means none, else it means the default. */
interface ListSetting extends Described {
  kind: 'list';
  default: readonly string[];
  clearable?: true;
}
/** NAME, or NAME_FILE naming a file that holds it. */
interface SecretSetting extends Described {
  kind: 'secret';
}
/** PREFIX_CERT_FILE and PREFIX_KEY_FILE. */
interface PemSetting extends Described {
  kind: 'pem';
}
/** Read by the loader itself (the environment only, or a shape of its own). */
interface OtherSetting extends Described {
  kind: 'other';
}
type Setting = IntSetting | BoolSetting | OneOfSetting | TextSetting | ListSetting | SecretSetting | PemSetting | OtherSetting;
type More = Omit<Described, 'help'>;

const int = (def: number, min: number, max: number, help: string, more?: More): IntSetting => ({ kind: 'int', default: def, min, max, help, ...more });
const bool = (def: boolean, help: string): BoolSetting => ({ kind: 'bool', default: def, help });
const oneOf = <const T extends string>(allowed: readonly T[], def: NoInfer<T>, help: string): OneOfSetting<T> => ({ kind: 'oneOf', allowed, default: def, help });
const text = (def: string, help: string, more?: More): TextSetting => ({ kind: 'text', default: def, help, ...more });
const list = (def: readonly string[], help: string, more?: More & { clearable?: true }): ListSetting => ({ kind: 'list', default: def, help, ...more });
const secret = (help: string): SecretSetting => ({ kind: 'secret', help });
const pem = (help: string): PemSetting => ({ kind: 'pem', help });
const other = (help: string, more?: More): OtherSetting => ({ kind: 'other', help, ...more });

/** Declared ahead: ANCHORE_RATE_LIMIT's row quotes its default. */
const RATE_BURST = int(ANCHORE_CLIENT_DEFAULTS.burst, 1, 100_000, "Anchore requests at once (the rate limiter's bucket)", { unlisted: true });

/**
 * Every setting, declared once: the loader reads its default and range from here, and the README's configuration table
 * is generated from the same words (SETTINGS, by node scripts/readme-settings.ts; readme-settings --check fails when it
 * is stale). In table order; the key is the environment variable (or the prefix of a pair).
 */
const SPEC = {
  ANCHORE_URL: text('', 'Anchore API base URL, with or without a trailing /v2, e.g. https://anchore:8228 (a /v1 URL is refused)', { shown: '(required)' }),
  ANCHORE_USERNAME: text('', 'Username (Basic or OAuth). Needs permission to act as the routed accounts (x-anchore-account)'),
  ANCHORE_PASSWORD: secret('Password, or a file holding it (a mounted Secret)'),
  ANCHORE_API_KEY: secret('API key (sent as Basic _api_key:KEY); instead of username/password'),
  ANCHORE_AUTH_MODE: oneOf(['basic', 'oauth'], 'basic', 'basic | oauth (password grant, refreshed before expiry). API keys imply basic'),
  ANCHORE_ACCOUNT: text('admin', 'Default Anchore account for namespaces no route claims'),
  ANCHORE_CA_FILE: text('', 'PEM CA bundle used to verify Anchore TLS'),
  ANCHORE_INSECURE_SKIP_TLS_VERIFY: bool(false, 'Disable TLS verification (testing only; logged as a warning)'),
  ANCHORE_TIMEOUT_SECONDS: int(ANCHORE_CLIENT_DEFAULTS.requestTimeoutS, 1, 3600, 'Deadline of one Anchore HTTP request'),
  ANCHORE_CONCURRENCY: int(ANCHORE_CLIENT_DEFAULTS.concurrency, 1, 1024, 'Maximum Anchore requests in flight'),
  ANCHORE_RATE_LIMIT: int(ANCHORE_CLIENT_DEFAULTS.ratePerSecond, 1, 100_000, `Anchore requests per second (sustained); ANCHORE_RATE_BURST (${RATE_BURST.default}) at once`),
  ANCHORE_RATE_BURST: RATE_BURST,
  CLUSTER_NAME: text('', 'Cluster name reported in the runtime inventory', { shown: '(required)' }),
  NAMESPACES_INCLUDE: list([], 'Comma-separated namespace names or globs to watch', { shown: '(all)' }),
  NAMESPACES_EXCLUDE: list([], 'Comma-separated namespace names or globs to ignore (wins over include)'),
  NAMESPACE_LABEL_SELECTOR: text('', 'Only namespaces whose labels match this selector, e.g. anchore.io/scan!=false'),
  IMAGES_EXCLUDE: list([], 'Comma-separated globs on the normalised image (docker.io/library/nginx:1.25) to ignore'),
  MISSING_TAG_POLICY: oneOf(['digest', 'insert', 'drop'], 'digest', 'Images run by digest only: digest (tag = digest hex) | insert (tag UNKNOWN) | drop'),
  MISSING_REGISTRY_OVERRIDE: text('', 'Registry for references that name none (instead of docker.io)'),
  ACCOUNT_ROUTES: other('Namespace → account routes: "team-a:ns1,team-a-*;team-b:ns2" (or a YAML map in CONFIG_FILE)'),
  ACCOUNT_NAMESPACE_LABEL: text('', 'Namespace label naming the account (used when no route matches)'),
  INVENTORY_ENABLED: bool(true, 'Send the runtime inventory (POST /v2/kubernetes-inventory)'),
  INVENTORY_INTERVAL_SECONDS: int(
    600,
    5,
    86_400,
    'Full report (heartbeat) at least this often; between two, only the namespaces that changed are sent. Above 900 s, AnchoreInventoryStale fires in a quiet cluster',
  ),
  INVENTORY_DEBOUNCE_MS: int(250, 0, 600_000, 'Wait this long after a change before sending'),
  INVENTORY_MIN_INTERVAL_MS: int(1000, 0, 3_600_000, "Never send one account's inventory more often than this"),
  INVENTORY_BUDGET_SECONDS: int(
    60,
    0,
    86_400,
    "Reports of changed namespaces cost Anchore, with the full ones, no more bytes than one full report every this many seconds (k8s-inventory's default poll); 0 = no budget",
  ),
  INVENTORY_BUDGET_MIN_BYTES_PER_SECOND: int(32_768, 1, 1 << 30, 'The budget of changed-namespace reports is never below this, however small the cluster'),
  INVENTORY_BATCH_BYTES: int(0, 0, 1 << 30, 'Split a report into batches of at most this many bytes, on namespace boundaries (0 = no limit; a 413 from Anchore lowers it by itself)'),
  INVENTORY_SPLIT_NAMESPACES: bool(
    false,
    'A namespace too large for one batch is sent in parts of its pods. Only for Anchore with inventory_ingest_overwrite off: with it on, each part would erase the others (docs/anchore-contract.md)',
  ),
  INTEGRATION_ENABLED: bool(true, 'Register as an Anchore integration and send health reports (Enterprise ≥ 5.11)'),
  HEALTH_REPORT_INTERVAL_SECONDS: int(60, HEALTH_REPORT_INTERVAL_MIN_S, HEALTH_REPORT_INTERVAL_MAX_S, `Health report interval (${HEALTH_REPORT_INTERVAL_MIN_S}–${HEALTH_REPORT_INTERVAL_MAX_S})`),
  INTEGRATION_ID: text('', 'Stable registration id (registration_instance_id is the pod name)', { shown: 'anchore-operator-<CLUSTER_NAME>' }),
  REGISTRATION_WORKERS: int(8, 1, 256, 'Images registered/polled in parallel'),
  ANALYSIS_POLL_MAX_SECONDS: int(60, 1, 3600, 'Longest wait between analysis-status polls of one image'),
  ANCHORE_IMAGES_REFRESH_SECONDS: int(
    300,
    0,
    86_400,
    "How often each account's image list is read again on every replica: images CI added, and images deleted from Anchore (re-registered; 0 = never)",
  ),
  BINDING_WORKERS: int(4, 1, 64, 'Policy bindings reconciled in parallel'),
  EVALUATION_CONCURRENCY: int(8, 1, 256, 'Anchore policy checks / vulnerability reads in flight (shared by all bindings)'),
  POLICY_POLL_SECONDS: int(60, 0, 86_400, "How often each account's active policy is checked for a change (0 = never)"),
  METRICS_MAX_SERIES: int(
    DEFAULT_MAX_SERIES,
    0,
    10_000_000,
    'Budget of findings series per scrape: per-CVE, then per-image series are cut (and counted) beyond it; the series alerts read are never cut',
  ),
  METRICS_VULNERABILITIES: bool(true, 'Read vulnerability counts of every running analysed image for the findings metrics'),
  VULNERABILITY_REFRESH_SECONDS: int(3600, 60, 7 * 86_400, "How often each image's vulnerability counts are read again"),
  METRICS_CVE_SERIES: bool(false, 'Export one series per CVE (high cardinality; filtered by the next two settings)'),
  METRICS_CVE_MIN_SEVERITY: oneOf(['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'], 'Critical', 'Per-CVE series only at or above this severity'),
  METRICS_CVE_FIXABLE_ONLY: bool(true, 'Per-CVE series only for vulnerabilities with a fix'),
  REPORTS_METRICS_ENABLED: bool(false, "Export Anchore's own account metrics from its Reports GraphQL API (POST /v2/reports/graphql)"),
  REPORTS_METRICS: list(['vulnerabilities.*'], 'Comma-separated globs on the Reports metric ids to export'),
  REPORTS_INTERVAL_SECONDS: int(300, 30, 86_400, 'How often the Reports metrics are read'),
  KUBECONFIG: other('Kubeconfig path when running outside the cluster', { shown: '(in-cluster)' }),
  RESYNC_INTERVAL_SECONDS: int(600, 0, 86_400, 'Full relist of every watched resource (recovers missed events)'),
  WATCH_WATCHDOG_SECONDS: int(300, 0, 86_400, 'Relist a resource whose watch was silent this long'),
  BIND_ADDRESS: text('0.0.0.0', 'Address of the health and metrics servers'),
  HEALTH_PORT: int(8081, 0, 65535, '/healthz and /readyz'),
  METRICS_PORT: int(8080, 0, 65535, '/metrics'),
  METRICS_SECURE: bool(false, 'Serve /metrics over HTTPS; callers need a bearer token allowed to GET /metrics (TokenReview + SubjectAccessReview)'),
  METRICS: pem('PEM certificate and key for METRICS_SECURE (reloaded when the files change)'),
  ADMISSION_ENABLED: bool(false, 'Serve the validating admission webhook (on every replica, leader or not); bindings choose audit, warn or deny (docs/admission.md)'),
  ADMISSION_PORT: int(9443, 0, 65535, 'HTTPS port of the admission webhook (/validate)'),
  ADMISSION: pem('PEM certificate and key of the admission webhook (required with ADMISSION_ENABLED; reloaded when the files change)'),
  ADMISSION_DEADLINE_MS: int(3000, 50, 29_000, "Longest wait for Anchore on a cache miss; keep it below the webhook's timeoutSeconds (the chart does)"),
  ADMISSION_EXEMPT_NAMESPACES: list(['kube-system'], "Comma-separated namespace names or globs never checked; the operator's own namespace (POD_NAMESPACE) always is", { clearable: true }),
  ADMISSION_REGISTER_UNKNOWN: bool(
    true,
    'After answering a request that is not a dry run, register images Anchore does not hold yet (POST /v2/images); bounded by the next four settings (docs/admission.md)',
  ),
  ADMISSION_REGISTER_MAX_PER_REVIEW: int(5, 0, 1000, 'Most images one review may register'),
  ADMISSION_REGISTER_NAMESPACE_PER_MINUTE: int(20, 0, 100_000, 'Most images admission registers per namespace per minute'),
  ADMISSION_REGISTER_PER_MINUTE: int(60, 0, 100_000, 'Most images admission registers per minute in all'),
  ADMISSION_REGISTER_REPOSITORIES: list([], 'Globs on registry/repository admission may register, e.g. ghcr.io/acme/**', {
    shown: '(any registry named by host name; never IP addresses or localhost)',
  }),
  ADMISSION_TRUSTED_CONTROLLERS: list(
    ['system:kube-controller-manager', ...['replicaset', 'deployment', 'job', 'cronjob', 'daemon-set', 'statefulset', 'replication'].map((c) => `system:serviceaccount:kube-system:${c}-controller`)],
    "Users (exact names) whose objects, created for a controlling owner (Pods of a ReplicaSet, ReplicaSets of a Deployment, Jobs of a CronJob…), inherit the owner's admission: self-healing is never blocked",
    { shown: "kube-controller-manager's controllers", clearable: true },
  ),
  ADMISSION_SHUTDOWN_DELAY_SECONDS: int(10, 0, 600, 'On SIGTERM, keep answering reviews this long (not ready meanwhile) so the endpoints move before the port closes'),
  INSTALL_ID: text('', 'Names this install on the ClusterAnchorePolicyBindings it owns (status.install): another install leaves them alone; the anchore.io/install annotation hands one over', {
    shown: '(LEADER_ELECTION_NAMESPACE/LEADER_ELECTION_ID)',
  }),
  LEADER_ELECTION: bool(true, 'Elect one working replica on a coordination.k8s.io Lease; the others serve health and metrics'),
  LEADER_ELECTION_NAMESPACE: text('', 'Namespace of the Lease', { shown: '(POD_NAMESPACE, in-cluster namespace, or default)' }),
  LEADER_ELECTION_ID: text('anchore-operator', 'Name of the Lease'),
  LEASE_DURATION_SECONDS: int(15, 2, 3600, 'A follower takes over a lease not renewed for this long (client-go default)'),
  RENEW_DEADLINE_SECONDS: int(10, 1, 3600, 'The leader stops working when it could not renew for this long'),
  RETRY_PERIOD_SECONDS: int(2, 1, 600, 'Interval of lease renewals and acquisition attempts'),
  POD_NAME: other('Set from the downward API: instance id, lease identity, namespace for Events and the Lease', { label: 'POD_NAME / POD_NAMESPACE', shown: '(hostname)' }),
  LOG_LEVEL: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'info', 'trace | debug | info | warn | error | fatal | silent'),
  LOG_PRETTY: bool(false, 'Human-readable logs instead of JSON'),
  SHUTDOWN_DRAIN_SECONDS: int(20, 0, 600, 'On SIGTERM, wait this long for in-flight work'),
  CONFIG_FILE: other('YAML file with any of these keys except KUBECONFIG, POD_NAME, POD_NAMESPACE (environment only); environment variables win'),
} satisfies Record<string, Setting>;

type Spec = typeof SPEC;
/** The settings of one kind, so the Reader is only asked to parse a setting the way it is declared. */
type Named<K extends Setting['kind']> = { [N in keyof Spec]: Spec[N]['kind'] extends K ? N : never }[keyof Spec];

/** The environment variables a declared setting stands for (a secret's _FILE twin, a PEM pair, a labelled pair). */
function names(key: string, s: Setting): string[] {
  if (s.kind === 'secret') return [key, `${key}_FILE`];
  if (s.kind === 'pem') return [`${key}_CERT_FILE`, `${key}_KEY_FILE`];
  return s.label ? s.label.split(' / ') : [key];
}

/** The table's Default cell: the typed default as a user would write it, unless the declaration says otherwise. */
function defaultText(s: Setting): string {
  if (s.shown !== undefined) return s.shown;
  switch (s.kind) {
    case 'int':
    case 'bool':
      return String(s.default);
    case 'oneOf':
    case 'text':
      return s.default;
    case 'list':
      return s.default.join(',');
    default:
      return '';
  }
}

/** Every setting, its default and meaning: the README table is generated from the same words. */
export const SETTINGS: ReadonlyArray<{ name: string; default: string; help: string }> = Object.entries(SPEC as Record<string, Setting>)
  .filter(([, s]) => !s.unlisted)
  .map(([key, s]) => ({ name: names(key, s).join(' / '), default: defaultText(s), help: s.help }));

/** Every key CONFIG_FILE may hold (before ENV_ONLY takes some away). */
const KNOWN: ReadonlySet<string> = new Set(Object.entries(SPEC as Record<string, Setting>).flatMap(([key, s]) => names(key, s)));

/**
 * First words of settings that other software commonly uses too (the downward API's POD_IP, operator-sdk's
 * WATCH_NAMESPACE, a platform's CLUSTER_DOMAIN or LOG_FORMAT, …): a variable starting with one of them is not refused
 * as a mistake. Every other first word of a setting is one of the operator's prefixes (RESERVED_PREFIXES).
 */
const SHARED_WORDS: ReadonlySet<string> = new Set(['POD', 'LOG', 'CONFIG', 'BIND', 'CLUSTER', 'WATCH', 'RESYNC', 'LEASE', 'RENEW', 'RETRY', 'SHUTDOWN', 'INSTALL', 'POLICY', 'KUBECONFIG']);

/**
 * The operator's own prefixes (ANCHORE_, ADMISSION_, INVENTORY_, METRICS_, NAMESPACES_, …): the first word of its
 * settings, less SHARED_WORDS. The environment of the operator's container is its configuration, so a variable with
 * one of these prefixes that is not a setting (ANCHORE_ACOUNT, a removed setting) is refused at start rather than
 * silently ignored, except the service-link variables Kubernetes injects (see serviceLinkVariable).
 */
export const RESERVED_PREFIXES: readonly string[] = [...new Set([...KNOWN].map((n) => n.split('_')[0] as string))].filter((w) => !SHARED_WORDS.has(w)).map((w) => `${w}_`);

const PROTOCOL = '(TCP|UDP|SCTP)';
const isPort = (v: string): boolean => /^\d{1,5}$/.test(v) && Number(v) <= 65535;
/** proto://ip:port as the kubelet writes it (net.JoinHostPort: an IPv6 address in brackets). */
function isServiceUrl(v: string, proto?: string, port?: string): boolean {
  const m = /^(tcp|udp|sctp):\/\/(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  if (!m) return false;
  const ip = m[2] ?? m[3] ?? '';
  return isIP(ip) !== 0 && isPort(m[4] ?? '') && (proto === undefined || m[1] === proto.toLowerCase()) && (port === undefined || m[4] === port);
}

/**
 * Whether `name=value` is a service-link variable the kubelet injects for every Service in the pod's namespace
 * (enableServiceLinks, on by default): `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT[_<PORT NAME>]`, `<SVC>_PORT`,
 * `<SVC>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`, where SVC is the Service name in capitals with - as _. A Service named
 * anchore-operator (the chart's, with the release named so) gives ANCHORE_OPERATOR_SERVICE_HOST and the like. The name
 * and the value must both have the shape the kubelet writes (an IP address, a port, proto://ip:port), so a mistyped
 * setting that happens to end in _PORT (ADMISSION_WEBHOOK_PORT=9443) is still refused.
 */
export function serviceLinkVariable(name: string, value: string): boolean {
  if (/^[A-Z0-9_]+_SERVICE_HOST$/.test(name)) return isIP(value) !== 0;
  if (/^[A-Z0-9_]+_SERVICE_PORT(_[A-Z0-9_]+)?$/.test(name)) return isPort(value);
  const m = new RegExp(`^[A-Z0-9_]+_PORT_(\\d{1,5})_${PROTOCOL}(_PROTO|_PORT|_ADDR)?$`).exec(name);
  if (m) {
    const [, port = '', proto = '', part] = m;
    if (part === '_PROTO') return value === proto.toLowerCase();
    if (part === '_PORT') return value === port;
    if (part === '_ADDR') return isIP(value) !== 0;
    return isServiceUrl(value, proto, port);
  }
  return /^[A-Z0-9_]+_PORT$/.test(name) && isServiceUrl(value);
}

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * The known variable closest to `name`: one or two edits away (ANCHORE_ACOUNT → ANCHORE_ACCOUNT), else one it begins
 * or is the beginning of (INVENTORY_INTERVAL → INVENTORY_INTERVAL_SECONDS, LEADER_ELECTION_ENABLED → LEADER_ELECTION),
 * else the one fewest edits away. Ties: the first in table order.
 */
export function closestSetting(name: string): string {
  let best = '';
  let bestDistance = Infinity;
  for (const known of KNOWN) {
    const d = editDistance(name, known);
    if (d < bestDistance) [best, bestDistance] = [known, d];
  }
  if (bestDistance <= 2) return best;
  const related = [...KNOWN].filter((k) => k.startsWith(`${name}_`) || name.startsWith(`${k}_`)).sort((a, b) => Math.abs(a.length - name.length) - Math.abs(b.length - name.length));
  return related[0] ?? best;
}

/**
 * Why `name=value` from the environment is refused, or undefined: a variable with one of the operator's prefixes
 * (RESERVED_PREFIXES) that is no setting and no service-link variable Kubernetes injects. One line, naming the
 * variable and the closest setting.
 */
export function unknownVariable(name: string, value: string): string | undefined {
  if (KNOWN.has(name) || !RESERVED_PREFIXES.some((p) => name.startsWith(p)) || serviceLinkVariable(name, value)) return undefined;
  return `${name} is not a setting of this operator (did you mean ${closestSetting(name)}?); the container's environment is its configuration, so correct or remove it`;
}

/** Settings only the environment can give (read before the file, or set by Kubernetes): refused in CONFIG_FILE. */
const ENV_ONLY: ReadonlyMap<string, string> = new Map([
  ['KUBECONFIG', 'is read from the environment only (the Kubernetes client loads it before any setting)'],
  ['POD_NAME', 'is set by Kubernetes (downward API), not by the config file'],
  ['POD_NAMESPACE', 'is set by Kubernetes (downward API), not by the config file'],
  ['CONFIG_FILE', 'cannot name another config file'],
]);

/** Reads each setting the way SPEC declares it: its default, range or choices come from there. */
class Reader {
  readonly #env: NodeJS.ProcessEnv;
  readonly #file: Source;
  constructor(env: NodeJS.ProcessEnv, file: Source) {
    this.#env = env;
    this.#file = file;
  }

  #raw(name: string): unknown {
    const e = this.#env[name];
    if (e !== undefined && e !== '') return e;
    return this.#file[name];
  }

  #text(name: string): string {
    const v = this.#raw(name);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(`${name}: expected a string`);
    return String(v).trim();
  }

  string(name: Named<'text'>): string {
    return this.#text(name) || SPEC[name].default;
  }

  /** NAME or NAME_FILE (a mounted Secret); trailing newlines in files are dropped. */
  secret(name: Named<'secret'>): string {
    const direct = this.#text(name);
    const path = this.#text(`${name}_FILE`);
    if (direct && path) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
    if (!path) return direct;
    return readSettingFile(`${name}_FILE`, path, 'utf8').replace(/[\r\n]+$/, '');
  }

  /** `{ secretFile }` when the secret came from NAME_FILE (the client reads it again when it changes). */
  secretFile(name: Named<'secret'>): { secretFile?: string } {
    const path = this.#text(`${name}_FILE`);
    return path ? { secretFile: path } : {};
  }

  /** <PREFIX>_CERT_FILE and <PREFIX>_KEY_FILE, both set and readable; `missing` is the error when either is absent. */
  pemPair(prefix: Named<'pem'>, missing: string): { certFile: string; keyFile: string } {
    const certFile = this.#text(`${prefix}_CERT_FILE`);
    const keyFile = this.#text(`${prefix}_KEY_FILE`);
    if (!certFile || !keyFile) throw new ConfigError(missing);
    for (const [name, file] of [
      [`${prefix}_CERT_FILE`, certFile],
      [`${prefix}_KEY_FILE`, keyFile],
    ] as const) {
      readSettingFile(name, file);
    }
    return { certFile, keyFile };
  }

  list(name: Named<'list'>): string[] {
    const spec: ListSetting = SPEC[name];
    const v = this.#raw(name);
    if (v === undefined) return [...spec.default];
    const items = Array.isArray(v)
      ? v.map((x) => String(x).trim()).filter(Boolean)
      : this.#text(name)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
    return items.length || spec.clearable ? items : [...spec.default];
  }

  int(name: Named<'int'>): number {
    const { default: def, min, max } = SPEC[name];
    const s = this.#text(name);
    if (!s) return def;
    if (!/^-?\d+$/.test(s)) throw new ConfigError(`${name}: "${s}" is not a whole number`);
    const n = Number(s);
    if (n < min || n > max) throw new ConfigError(`${name}: ${n} is out of range ${min}..${max}`);
    return n;
  }

  bool(name: Named<'bool'>): boolean {
    const s = this.#text(name).toLowerCase();
    if (!s) return SPEC[name].default;
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    throw new ConfigError(`${name}: "${s}" is not a boolean (true/false)`);
  }

  /** One of the declared choices, typed as the declaration's union (checked here, hence the cast). */
  oneOf<N extends Named<'oneOf'>>(name: N): Spec[N]['default'] {
    const spec: OneOfSetting = SPEC[name];
    const s = this.#text(name) || spec.default;
    if (!spec.allowed.includes(s)) throw new ConfigError(`${name}: "${s}" must be one of ${spec.allowed.join(', ')}`);
    return s as Spec[N]['default'];
  }

  accountRoutes(name: Named<'other'>): AccountRoute[] {
    const v = this.#raw(name);
    if (v === undefined || v === null || v === '') return [];
    const routes: Array<{ account: string; namespaces: string[] }> = [];
    if (typeof v === 'object' && !Array.isArray(v)) {
      for (const [account, ns] of Object.entries(v as Source)) {
        const list = Array.isArray(ns) ? ns.map(String) : String(ns).split(',');
        routes.push({ account, namespaces: list.map((s) => s.trim()).filter(Boolean) });
      }
    } else {
      for (const part of String(v)
        .split(';')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const i = part.indexOf(':');
        if (i <= 0) throw new ConfigError(`${name}: "${part}" must look like account:namespace,namespace`);
        routes.push({
          account: part.slice(0, i).trim(),
          namespaces: part
            .slice(i + 1)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        });
      }
    }
    return routes.map((route) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]*$/.test(route.account)) throw new ConfigError(`${name}: "${route.account}" is not a valid account name`);
      if (route.namespaces.length === 0) throw new ConfigError(`${name}: account ${route.account} has no namespaces`);
      return { account: route.account, namespaces: compiledGlobs(name, route.namespaces) };
    });
  }
}

/** A glob setting compiled once (the compiled form is what the rest of the operator gets); a bad glob is a ConfigError. */
function compiledGlobs(setting: string, patterns: readonly string[]): Globs {
  const c = Globs.compile(patterns);
  if (!c.ok) throw new ConfigError(`${setting}: ${c.reason}`);
  return c.value;
}

/** Reads CONFIG_FILE (if set) and the environment; throws ConfigError naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  for (const [name, value] of Object.entries(env)) {
    const refused = unknownVariable(name, value ?? '');
    if (refused) throw new ConfigError(refused);
  }
  let file: Source = {};
  if (env['CONFIG_FILE']) {
    const text = readSettingFile('CONFIG_FILE', env['CONFIG_FILE'], 'utf8');
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
    for (const k of Object.keys(file)) {
      if (ENV_ONLY.has(k)) throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: ${k} ${ENV_ONLY.get(k)}; remove it from the file`);
      if (!KNOWN.has(k)) throw new ConfigError(`CONFIG_FILE ${env['CONFIG_FILE']}: unknown setting "${k}"`);
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
  const mode = r.oneOf('ANCHORE_AUTH_MODE');
  let auth: AnchoreAuth;
  if (apiKey) {
    if (username || password) throw new ConfigError('set either ANCHORE_API_KEY or ANCHORE_USERNAME/ANCHORE_PASSWORD, not both');
    auth = { type: 'apikey', key: apiKey, ...r.secretFile('ANCHORE_API_KEY') };
  } else {
    if (!username || !password) {
      throw new ConfigError('Anchore credentials are required: ANCHORE_USERNAME and ANCHORE_PASSWORD (or _FILE), or ANCHORE_API_KEY');
    }
    const file = r.secretFile('ANCHORE_PASSWORD');
    auth = mode === 'oauth' ? { type: 'oauth', username, password, ...file } : { type: 'basic', username, password, ...file };
  }

  const caFile = r.string('ANCHORE_CA_FILE');
  if (caFile) {
    const problem = caBundleProblem(readSettingFile('ANCHORE_CA_FILE', caFile, 'utf8'));
    if (problem) throw new ConfigError(`ANCHORE_CA_FILE ${caFile}: ${problem}`);
  }

  const clusterName = r.string('CLUSTER_NAME');
  if (!clusterName) throw new ConfigError('CLUSTER_NAME is required (the name Anchore shows for this cluster)');

  const include = compiledGlobs('NAMESPACES_INCLUDE', r.list('NAMESPACES_INCLUDE'));
  const exclude = compiledGlobs('NAMESPACES_EXCLUDE', r.list('NAMESPACES_EXCLUDE'));
  const labelSelector = r.string('NAMESPACE_LABEL_SELECTOR');
  if (labelSelector) {
    const s = parseLabelSelectorString(labelSelector);
    if (!s.ok) throw new ConfigError(`NAMESPACE_LABEL_SELECTOR: ${s.reason}`);
  }
  // Checked as the image filter will use them (a pattern that can never match a normalised name is refused here).
  const ie = imageExclusionGlobs(r.list('IMAGES_EXCLUDE'));
  if (!ie.ok) throw new ConfigError(`IMAGES_EXCLUDE: ${ie.reason}`);
  const imageExclude = ie.value;

  const routes = r.accountRoutes('ACCOUNT_ROUTES');
  const healthSec = r.int('HEALTH_REPORT_INTERVAL_SECONDS');
  const podName = env['POD_NAME'] || hostname();
  // The operator's own namespace (downward API, else the in-cluster service account), read once.
  const podNamespace = env['POD_NAMESPACE'] || inClusterNamespace();

  const cfg: Config = {
    anchore: {
      url,
      auth,
      account: r.string('ANCHORE_ACCOUNT'),
      insecureSkipTlsVerify: r.bool('ANCHORE_INSECURE_SKIP_TLS_VERIFY'),
      timeoutMs: r.int('ANCHORE_TIMEOUT_SECONDS') * 1000,
      concurrency: r.int('ANCHORE_CONCURRENCY'),
      ratePerSecond: r.int('ANCHORE_RATE_LIMIT'),
      burst: r.int('ANCHORE_RATE_BURST'),
    },
    clusterName,
    namespaces: { include, exclude },
    images: { exclude: imageExclude, missingTagPolicy: r.oneOf('MISSING_TAG_POLICY') },
    accounts: { routes },
    inventory: {
      enabled: r.bool('INVENTORY_ENABLED'),
      intervalMs: r.int('INVENTORY_INTERVAL_SECONDS') * 1000,
      debounceMs: r.int('INVENTORY_DEBOUNCE_MS'),
      minIntervalMs: r.int('INVENTORY_MIN_INTERVAL_MS'),
      batchBytes: r.int('INVENTORY_BATCH_BYTES'),
      splitNamespaces: r.bool('INVENTORY_SPLIT_NAMESPACES'),
      budgetSeconds: r.int('INVENTORY_BUDGET_SECONDS'),
      budgetFloorBytesPerSecond: r.int('INVENTORY_BUDGET_MIN_BYTES_PER_SECOND'),
    },
    integration: {
      enabled: r.bool('INTEGRATION_ENABLED'),
      healthIntervalMs: healthSec * 1000,
      registrationId: r.string('INTEGRATION_ID') || `anchore-operator-${clusterName}`,
      instanceId: podName,
    },
    registration: {
      workers: r.int('REGISTRATION_WORKERS'),
      analysisPollMaxMs: r.int('ANALYSIS_POLL_MAX_SECONDS') * 1000,
      imagesRefreshMs: r.int('ANCHORE_IMAGES_REFRESH_SECONDS') * 1000,
    },
    bindings: {
      workers: r.int('BINDING_WORKERS'),
      evaluationConcurrency: r.int('EVALUATION_CONCURRENCY'),
      policyPollMs: r.int('POLICY_POLL_SECONDS') * 1000,
      installId: '',
    },
    metrics: {
      maxSeries: r.int('METRICS_MAX_SERIES'),
      vulnerabilities: r.bool('METRICS_VULNERABILITIES'),
      vulnerabilityRefreshMs: r.int('VULNERABILITY_REFRESH_SECONDS') * 1000,
      cveSeries: r.bool('METRICS_CVE_SERIES'),
      cveMinSeverity: r.oneOf('METRICS_CVE_MIN_SEVERITY'),
      cveFixableOnly: r.bool('METRICS_CVE_FIXABLE_ONLY'),
      reports: {
        enabled: r.bool('REPORTS_METRICS_ENABLED'),
        metrics: compiledGlobs('REPORTS_METRICS', r.list('REPORTS_METRICS')),
        intervalMs: r.int('REPORTS_INTERVAL_SECONDS') * 1000,
      },
    },
    kube: {
      resyncMs: r.int('RESYNC_INTERVAL_SECONDS') * 1000,
      watchdogMs: r.int('WATCH_WATCHDOG_SECONDS') * 1000,
    },
    http: {
      bindAddress: r.string('BIND_ADDRESS'),
      healthPort: r.int('HEALTH_PORT'),
      metricsPort: r.int('METRICS_PORT'),
    },
    leaderElection: {
      enabled: r.bool('LEADER_ELECTION'),
      namespace: r.string('LEADER_ELECTION_NAMESPACE') || podNamespace || 'default',
      leaseName: r.string('LEADER_ELECTION_ID'),
      identity: `${podName}_${randomUUID().slice(0, 8)}`,
      leaseDurationMs: r.int('LEASE_DURATION_SECONDS') * 1000,
      renewDeadlineMs: r.int('RENEW_DEADLINE_SECONDS') * 1000,
      retryPeriodMs: r.int('RETRY_PERIOD_SECONDS') * 1000,
    },
    admission: {
      enabled: r.bool('ADMISSION_ENABLED'),
      port: r.int('ADMISSION_PORT'),
      deadlineMs: r.int('ADMISSION_DEADLINE_MS'),
      exemptNamespaces: r.list('ADMISSION_EXEMPT_NAMESPACES'),
      registerUnknown: r.bool('ADMISSION_REGISTER_UNKNOWN'),
      registerLimits: {
        perReview: r.int('ADMISSION_REGISTER_MAX_PER_REVIEW'),
        perNamespacePerMinute: r.int('ADMISSION_REGISTER_NAMESPACE_PER_MINUTE'),
        perMinute: r.int('ADMISSION_REGISTER_PER_MINUTE'),
      },
      registerRepositories: r.list('ADMISSION_REGISTER_REPOSITORIES'),
      trustedControllers: r.list('ADMISSION_TRUSTED_CONTROLLERS'),
      shutdownDelayMs: r.int('ADMISSION_SHUTDOWN_DELAY_SECONDS') * 1000,
    },
    log: { level: r.oneOf('LOG_LEVEL'), pretty: r.bool('LOG_PRETTY') },
    shutdownDrainMs: r.int('SHUTDOWN_DRAIN_SECONDS') * 1000,
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
  if (r.bool('METRICS_SECURE')) cfg.http.metricsTls = r.pemPair('METRICS', 'METRICS_SECURE needs METRICS_CERT_FILE and METRICS_KEY_FILE (PEM certificate and key)');
  const exempt = compileGlobs(cfg.admission.exemptNamespaces);
  if (!exempt.ok) throw new ConfigError(`ADMISSION_EXEMPT_NAMESPACES: ${exempt.reason}`);
  const repos = compileGlobs(cfg.admission.registerRepositories);
  if (!repos.ok) throw new ConfigError(`ADMISSION_REGISTER_REPOSITORIES: ${repos.reason}`);
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
  if (podNamespace) cfg.admission.ownNamespace = podNamespace;
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

/**
 * The settings sent as the integration registration's `configuration`, so Anchore's UI shows how this install is set
 * up. Non-secret settings only, by construction (an allow-list): never credentials, the CA or the URL's query.
 */
export function integrationConfiguration(cfg: Config): Record<string, unknown> {
  return {
    anchore_account: cfg.anchore.account,
    namespaces: { include: cfg.namespaces.include.patterns, exclude: cfg.namespaces.exclude.patterns, ...(cfg.namespaces.labelSelector ? { label_selector: cfg.namespaces.labelSelector } : {}) },
    account_routes: cfg.accounts.routes.map((r) => ({ account: r.account, namespaces: r.namespaces.patterns })),
    ...(cfg.accounts.namespaceLabel ? { account_namespace_label: cfg.accounts.namespaceLabel } : {}),
    image_exclude: cfg.images.exclude.patterns,
    missing_tag_policy: cfg.images.missingTagPolicy,
    inventory: { enabled: cfg.inventory.enabled, interval_seconds: cfg.inventory.intervalMs / 1000, batch_bytes: cfg.inventory.batchBytes },
    health_report_interval_seconds: cfg.integration.healthIntervalMs / 1000,
  };
}

/**
 * Why a CA bundle cannot be right (no PEM certificate in it, or one that does not parse), or undefined. A file that
 * trusts nothing would make every Anchore call fail its handshake; it is refused at start instead.
 */
export function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return "holds no PEM certificate (-----BEGIN CERTIFICATE-----); it must be the CA bundle that signed Anchore's certificate";
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      return `certificate ${i + 1} of ${blocks.length} does not parse (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  return undefined;
}
