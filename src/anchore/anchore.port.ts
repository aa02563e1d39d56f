/**
 * The Anchore port: what the operator needs from Anchore Enterprise's V2 API, in domain terms.
 * Field names follow the API (snake_case) where a value is passed through unchanged.
 * Every method may throw AnchoreError (see errors.ts).
 */
export type AnalysisStatus = 'not_analyzed' | 'analyzing' | 'analyzed' | 'analysis_failed';

export const ANALYSIS_STATUSES: readonly AnalysisStatus[] = ['not_analyzed', 'analyzing', 'analyzed', 'analysis_failed'];

export interface AnchoreImage {
  image_digest: string;
  parent_digest?: string;
  analysis_status: AnalysisStatus | 'unknown';
  image_status?: string;
  account_name?: string;
  full_tags: string[];
  created_at?: string;
  last_updated?: string;
  annotations?: Record<string, string>;
}

export interface AddImageRequest {
  /** Full tag Anchore requires even for digest sources, e.g. "docker.io/library/nginx:1.25". */
  tag: string;
  /** "repo@sha256:…"; when absent the image is added by tag. */
  digestPullString?: string;
  annotations?: Record<string, string>;
  force?: boolean;
}

export interface ServerVersion {
  service: string | undefined;
  api: string | undefined;
  db: string | undefined;
}

export interface KubernetesInventory {
  cluster_name: string;
  timestamp: string;
  namespaces: Array<{ uid: string; name: string; labels?: Record<string, string>; annotations?: Record<string, string> }>;
  nodes: Array<{
    uid: string;
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    kernel_version?: string;
    kubernetes_version?: string;
    arch?: string;
    container_runtime_version?: string;
    kube_proxy_version?: string;
    kubelet_version?: string;
    operating_system?: string;
  }>;
  pods: Array<{ uid: string; name: string; namespace_uid: string; node_uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }>;
  containers: Array<{ id: string; name: string; image_tag: string; image_digest?: string; pod_uid: string }>;
}

/** IntegrationRegister (POST /v2/system/integrations/registration), every field the spec and k8s-inventory send. */
export interface IntegrationRegistration {
  /** Stable across restarts (k8s-inventory: the Deployment UID). */
  registration_id: string;
  /** One per process (k8s-inventory: the pod name). */
  registration_instance_id: string;
  type: 'k8s_inventory_agent';
  name: string;
  description?: string;
  version: string;
  /** RFC 3339. */
  started_at: string;
  /** Seconds since start. */
  uptime: number;
  username: string;
  /** Accounts the operator is statically configured to handle (the default account and every route's account). */
  explicitly_account_bound: string[];
  /** Namespaces the operator is statically configured to handle (names or globs; empty: all). */
  namespaces: string[];
  /** Non-secret settings only: never credentials. */
  configuration?: Record<string, unknown>;
  cluster_name: string;
  namespace?: string;
  /** Seconds, 30–600 (spec HealthReportInterval). */
  health_report_interval: number;
}

/** One batch of an account's last inventory report (spec AccountK8sInventoryReportInfo.batches[]). */
interface InventoryBatchReport {
  /** 1-based. */
  batch_index: number;
  send_timestamp: string;
  /** Only when the batch failed. */
  error?: string;
}

/** An account's last inventory report; the client adds `account_name` (the key) and `sent_as_user`. */
interface AccountInventoryReport {
  report_timestamp: string;
  /** Number of batches the report was split into (≥ 1). */
  batch_size: number;
  /** 1-based index of the last batch that arrived; -1 if none. */
  last_successful_index: number;
  has_errors: boolean;
  /** Every batch sent, success or not. */
  batches: InventoryBatchReport[];
}

/**
 * The Anchore client's defaults, written once: the transport falls back to them, and the settings table (ANCHORE_*)
 * declares them as its defaults.
 */
export const ANCHORE_CLIENT_DEFAULTS = { requestTimeoutS: 60, concurrency: 16, ratePerSecond: 100, burst: 200 } as const;

/** The spec's HealthReportInterval range (seconds). */
export const HEALTH_REPORT_INTERVAL_MIN_S = 30;
export const HEALTH_REPORT_INTERVAL_MAX_S = 600;

export interface HealthReport {
  uptime: number;
  health_report_interval: number;
  errors: string[];
  /** Per account: its last inventory report (k8s-inventory's health_data.account_k8s_inventory_reports). */
  accounts: Record<string, AccountInventoryReport>;
}

/** An account's report as the health report carries it (spec AccountK8sInventoryReportInfo). */
export interface AccountInventoryReportBody extends AccountInventoryReport {
  account_name: string;
  sent_as_user: string;
}

/** The body of `POST /v2/system/integrations/{uuid}/health-report` (spec HealthReport). */
export interface HealthReportBody {
  uuid: string;
  protocol_version: number;
  timestamp: string;
  uptime: number;
  health_report_interval: number;
  health_data: {
    type: 'k8s_inventory_agent';
    version: number;
    errors: string[];
    account_k8s_inventory_reports: Record<string, AccountInventoryReportBody>;
  };
}

export interface CapabilityReport {
  /** False when the server publishes no openapi.json (then nothing else is known). */
  specAvailable: boolean;
  missingRequired: string[];
  missingOptional: string[];
}

export interface PolicyRecord {
  policy_id: string;
  name: string;
  active: boolean;
  last_updated?: string;
}

type FinalAction = 'go' | 'warn' | 'stop';

export interface PolicyFinding {
  gate: string;
  trigger: string;
  action: FinalAction | 'unknown';
  message: string;
}

/** One policy evaluation of one image and tag (the last PolicyEvaluationResult of GET …/check). */
export interface PolicyCheck {
  policy_id: string;
  image_digest: string;
  evaluated_tag: string;
  status: 'pass' | 'fail' | 'unknown';
  final_action: FinalAction | 'unknown';
  final_action_reason: string;
  number_of_findings: number;
  /** Non-go findings, stop before warn, in Anchore's order otherwise. */
  findings: PolicyFinding[];
  evaluation_time?: string;
}

export const SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Vulnerability {
  id: string;
  severity: Severity;
  package: string;
  fix?: string;
  /** On CISA's Known Exploited Vulnerabilities list (`is_kev`). */
  kev?: boolean;
  /** FIRST's EPSS score (0–1): the highest of the item's `epss` entries; absent when Anchore has none. */
  epss?: number;
}

export interface ReportMetricInfo {
  id: string;
  name: string;
  metricType: string;
}

export interface ReportMetricPoint {
  collectedAt: string;
  value: number;
}

/**
 * How long one call may take, for callers with a deadline of their own (admission): at most `attempts` HTTP attempts,
 * and no attempt or retry that would end after `deadlineAt` (epoch ms). Without it the client's defaults apply.
 */
export interface CallLimits {
  attempts?: number;
  deadlineAt?: number;
}

/** Filters of GET /v2/images. */
export interface ImageListFilter {
  /** Only images Anchore holds under this full tag (`full_tag`). */
  fullTag?: string;
}

/** Account scoping: every call that acts on account data takes the account it acts as (x-anchore-account). */
export interface AnchoreApi {
  version(): Promise<ServerVersion>;
  /** Reads GET /v2/openapi.json and reports which operations the operator uses are missing. */
  capabilities(): Promise<CapabilityReport>;
  /** All active images the account holds (one call, no pagination in V2). */
  listImages(account: string, filter?: ImageListFilter, limits?: CallLimits): Promise<AnchoreImage[]>;
  getImage(account: string, digest: string, limits?: CallLimits): Promise<AnchoreImage>;
  addImage(account: string, req: AddImageRequest): Promise<AnchoreImage>;
  postKubernetesInventory(account: string, inventory: KubernetesInventory): Promise<void>;
  /** Returns the integration uuid. */
  registerIntegration(account: string, reg: IntegrationRegistration): Promise<string>;
  sendHealthReport(account: string, uuid: string, report: HealthReport): Promise<void>;
  listPolicies(account: string, limits?: CallLimits): Promise<PolicyRecord[]>;
  getPolicy(account: string, policyId: string): Promise<PolicyRecord>;
  /** GET /v2/images/{digest}/check?tag=…[&policy_id=…]. Throws not-found when the image is not analyzed or the policy is unknown. */
  checkImage(account: string, digest: string, tag: string, policyId?: string, limits?: CallLimits): Promise<PolicyCheck>;
  /** GET /v2/images/{digest}/vuln/all (vendor_only default). */
  vulnerabilities(account: string, digest: string): Promise<Vulnerability[]>;
  /** Reports API (POST /v2/reports/graphql): the metric catalogue, all pages. */
  reportMetrics(account: string): Promise<ReportMetricInfo[]>;
  /** Reports API: the points of one metric in [start, end], all pages. */
  reportMetricData(account: string, metricId: string, start: Date, end: Date): Promise<ReportMetricPoint[]>;
}
