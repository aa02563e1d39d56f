// Shared shapes of the Anchore Enterprise V2 simulator. Anchore-facing shapes keep the API's snake_case field
// names (they are what goes over the wire); simulator-only shapes (request log, fault rules) use camelCase.
import type { ContractViolation } from './contract/contract.ts';

/** A user that can authenticate with HTTP Basic or the OAuth password grant. */
export interface SimUser {
  username: string;
  password: string;
}

/** An API key, used as Basic `_api_key:<value>`. It acts as `username` (default: the account's first user). */
export interface SimApiKey {
  name: string;
  value: string;
  username?: string;
}

/** An Anchore account. The account named `admin` is the system admin account. */
export interface SimAccount {
  name: string;
  users: SimUser[];
  api_keys?: SimApiKey[];
}

/** A policy as configured; exactly one per account ends up active (the first one when none is marked). */
export interface SimPolicy {
  policy_id: string;
  name: string;
  active?: boolean;
  description?: string;
}

/** Timing and outcome of the simulated asynchronous analysis. */
export interface SimAnalysisConfig {
  /** Time an image spends in `not_analyzed` before analysis starts. */
  queued_ms: number;
  /** Time an image spends in `analyzing`. */
  analyzing_ms: number;
  /** Digests (or full tags) whose analysis always ends in `analysis_failed`. */
  fail_digests: string[];
  /** Probability (0..1, seeded) that an analysis attempt fails. */
  fail_rate: number;
}

/** `engine` = {message, httpcode, detail}; `spec` = {code, error_type, message, detail}; `alternate` = both, in turn. */
export type ErrorShape = 'engine' | 'spec' | 'alternate';

/** Complete simulator configuration (every key has a default; see config.ts). */
export interface SimConfig {
  seed: number;
  service_version: string;
  /** "2" for Enterprise 5.x; "" simulates Enterprise 4.x (V1 only: every /v2 path answers 404). */
  api_version: string;
  accounts: SimAccount[];
  /** Policies per account. An account missing here gets the default bundle; an explicit [] means no policy at all. */
  policies: Record<string, SimPolicy[]>;
  analysis: SimAnalysisConfig;
  token_ttl_seconds: number;
  refresh_token_ttl_seconds: number;
  /** false makes /v2/system/integrations/* answer 404 problem+json, like Enterprise older than 5.11. */
  integrations_enabled: boolean;
  error_shape: ErrorShape;
  /** operationIds left out of /v2/openapi.json (the routes still work). */
  openapi_missing: string[];
  /**
   * false (default): every /check evaluates afresh. true: engine semantics - only `interactive=true` evaluates,
   * otherwise the latest stored evaluation is returned, 404 when there is none.
   */
  stored_evaluations: boolean;
  /** true: `GET /v2/images?full_tag=` with no match answers 404 instead of `{items: []}` (both occur in the wild). */
  empty_full_tag_404: boolean;
  /**
   * Multi-arch simulation: manifest-list digest -> platform image digest. Adding by a listed digest stores the
   * image under the platform digest with `parent_digest` set to the list digest.
   */
  manifest_lists: Record<string, string>;
  /**
   * Anchore's `runtime_inventory.inventory_ingest_overwrite`. true (the simulator's default, the stricter case for a
   * client): every namespace present in a report (listed in `namespaces` or referenced by a pod) replaces that
   * namespace's stored inventory, so a namespace sent in parts keeps only the last part and a namespace listed without
   * pods is cleared; namespaces absent from the report are left as they were. false (Anchore's chart default): reports
   * add and refresh entries, nothing is removed by a report. Either way entries expire after `inventory_ttl_days`.
   */
  inventory_ingest_overwrite: boolean;
  /**
   * Anchore's `runtime_inventory.inventory_ttl_days` (chart default 120; a whole number of days, at least 1): an
   * inventory entry whose `last_seen` (the timestamp of the last report that carried it) is more than this many days
   * before the simulator's clock is gone from GET /v2/inventories. Move the clock with `POST /_sim/clock`.
   */
  inventory_ttl_days: number;
  /** Page size of the Reports GraphQL API (small by default, so clients must follow nextToken). */
  reports_page_size: number;
  /**
   * true (default): every request to an operation of the published spec is checked against it and answered 400 in
   * the configured error shape on a violation, and every answer of the simulator is checked too (see
   * contract/README.md). false: the handlers' own checks only.
   */
  strict: boolean;
}

/** What callers may pass: any subset, with `analysis` merged key by key. */
export type SimConfigInput = Partial<Omit<SimConfig, 'analysis'>> & { analysis?: Partial<SimAnalysisConfig> };

/** One request as seen by the simulator (control endpoints under /_sim are not recorded). */
export interface RecordedRequest {
  seq: number;
  /** ms since epoch, when the request arrived. */
  time: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** The account the request targeted: x-anchore-account if sent, else the caller's own account. */
  account: string | undefined;
  user: string | undefined;
  /** 0 when the connection was reset by a fault. */
  status: number;
  /** Parsed JSON (or form) request body; the raw text when it did not parse; undefined when empty. */
  body: unknown;
  durationMs: number;
  /** API requests (this one included) the simulator was serving when this one arrived: an exact concurrency gauge. */
  inFlight: number;
}

/** A fault-injection rule. Rules apply in order; several can add latency, the first terminal one wins. */
export interface FaultRule {
  method?: string;
  /** Matched against the pathname: a string must match exactly, a RegExp is tested. */
  path?: string | RegExp;
  latencyMs?: number;
  /** Probability (0..1, seeded) that the rule fires; with no other action it answers `status` (default 500). */
  errorRate?: number;
  status?: number;
  retryAfterSeconds?: number;
  /** Absolute epoch-ms window during which matching requests get 503 (or `status`). */
  outage?: { fromMs?: number; untilMs: number };
  /** Destroy the socket without answering. */
  reset?: boolean;
  /** Answer 200 text/html with a proxy login page. */
  htmlLogin?: boolean;
  /** Answer 200 application/json with a body cut in half. */
  truncatedJson?: boolean;
  /**
   * Answer with this literal body instead: a string is sent as it is, any other value as JSON. Status 200 unless
   * `status` is given; content type application/json unless `contentType` is given.
   */
  body?: unknown;
  /** Content type of a `body` reply. */
  contentType?: string;
  /**
   * Answer 200 application/json with a body of about this many bytes (a valid-looking image list, streamed with no
   * content-length, so a client only finds out by reading). Writing stops when the client hangs up, so a huge value
   * is a never-ending stream.
   */
  hugeBodyBytes?: number;
  /**
   * Serve the request for real (the handler runs and state changes, as when only the answer gets mangled on the way
   * back), then swap the types in a 2xx JSON reply: strings become their length, numbers strings, booleans "yes"/"no",
   * arrays objects keyed by index. So POST /v2/images answers a numeric image_digest and GET /v2/images an object
   * where the list belongs. The only fault that reaches the handlers.
   */
  wrongTypes?: boolean;
  /**
   * A proxy's body size limit (nginx `client_max_body_size`): only requests whose body is larger than this many
   * bytes match, and they get 413 text/html from "the proxy" (Anchore never sees them). Wins over the other actions.
   */
  maxBodyBytes?: number;
  /** Fire for at most this many requests, then expire. */
  count?: number;
}

export type AnalysisStatus = 'not_analyzed' | 'analyzing' | 'analyzed' | 'analysis_failed';

/** An entry of AnchoreImage.image_detail. */
export interface AnchoreImageDetail {
  full_tag: string;
  full_digest: string;
  account_name: string;
  image_digest: string;
  registry: string;
  repo: string;
  tag: string;
  image_id: string;
  dockerfile: string | null;
  tag_detected_at: string;
  created_at: string;
  last_updated: string;
}

/** The service that made an analysis state change (the spec's ServiceReference). */
export interface ServiceReference {
  host_id: string;
  service_name: string;
}

/** An entry of AnchoreImage.analysis_status_detail. */
export interface AnalysisStatusDetail {
  from_status: AnalysisStatus;
  to_status: AnalysisStatus;
  timestamp: string;
  source: ServiceReference;
}

/** The AnchoreImage shape served by GET /v2/images/{image_digest}: only members the spec defines. */
export interface AnchoreImageRecord {
  image_digest: string;
  parent_digest: string;
  account_name: string;
  annotations: Record<string, string>;
  image_status: 'active' | 'inactive' | 'disabled';
  analysis_status: AnalysisStatus;
  analysis_status_detail: AnalysisStatusDetail[];
  created_at: string;
  last_updated: string;
  record_version: string;
  /** Absent until the analysis produced it (the spec has no null here). */
  image_content?: { metadata: { arch: string; distro: string; distro_version: string; dockerfile_mode: 'Guessed' | 'Actual'; image_size: number; layer_count: number } };
  image_detail: AnchoreImageDetail[];
}

/** One accepted POST /v2/kubernetes-inventory. */
export interface InventoryReport {
  account: string;
  /** ms since epoch (wall clock, not moved by `POST /_sim/clock`). */
  receivedAt: number;
  /**
   * Raw bytes of the request body as received (what the client sent Anchore for this report). The simulator always
   * sets it; optional only so reports built by hand (e.g. in benchmark tests) need not.
   */
  bytes?: number;
  body: KubernetesInventory;
}

/** The KubernetesInventory request body (unknown members are kept as sent). */
export interface KubernetesInventory {
  cluster_name: string;
  timestamp: string;
  namespaces?: Array<{ uid?: string; name?: string; [k: string]: unknown }>;
  nodes?: Array<Record<string, unknown>>;
  pods?: Array<{ uid?: string; name?: string; namespace_uid: string; node_uid?: string; [k: string]: unknown }>;
  containers?: Array<{ id?: string; name?: string; image_tag: string; image_digest?: string; pod_uid?: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

/** An item of GET /v2/inventories. */
export interface InventoryItem {
  inventory_type: 'kubernetes';
  context: string;
  image_tag: string;
  image_digest: string;
  created_at: string;
  last_updated: string;
  last_seen: string;
}

/** A registered integration and what it reported. */
export interface IntegrationRecord {
  uuid: string;
  /** The account the registration was made in. */
  account: string;
  registration: Record<string, unknown>;
  /** The Integration object the API returns. */
  integration: Record<string, unknown>;
  registeredAt: number;
  registrations: number;
  healthReports: Array<{ receivedAt: number; body: unknown }>;
}

/** An override for the deterministic /check result. */
export interface VerdictOverride {
  status: 'pass' | 'fail';
  final_action: 'go' | 'warn' | 'stop';
  findings?: number;
}

/** A vulnerability given to setVulnerabilities; unspecified fields are filled in. */
export interface VulnerabilityInput {
  vuln: string;
  severity: string;
  fix?: string;
  package?: string;
  /** Defaults to `dpkg` (an os package). Non-os types: npm, python, java-archive, go-module, gem. */
  package_type?: string;
  will_not_fix?: boolean;
  /** On CISA's KEV list; by default a deterministic property of the CVE id (about 4 % of Criticals). */
  is_kev?: boolean;
  /** FIRST EPSS score (0–1); by default a deterministic, realistically skewed property of the CVE id. */
  epss?: number;
}

/** Options of startSimulator. */
export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  config?: SimConfigInput;
  /** PEM certificate and key: serve HTTPS when given. */
  tls?: { cert: string; key: string };
  /** Called with one summary line per Anchore API request (control requests are not logged). */
  log?: (line: string) => void;
  /** How much the simulator keeps in memory (defaults: 256 MiB each). */
  retention?: SimRetention;
  /**
   * Called with every accepted inventory report, before any is dropped for the retention budget. `report.bytes` is
   * its raw body size, `report.account` and `report.body.cluster_name` say whose it is.
   */
  onInventory?: (report: InventoryReport) => void;
}

/**
 * Memory budgets. A 10,000-pod inventory is megabytes of JSON and several times that once parsed: a benchmark that
 * keeps hundreds of them makes its own process pause for garbage collection, which then shows up as latency.
 */
export interface SimRetention {
  /** Raw bytes of request bodies kept in the request log; older bodies are replaced by a note. */
  requestBodyBytes?: number;
  /** A request body larger than this is never kept in the request log (e.g. multi-megabyte inventories). */
  requestBodyMaxBytes?: number;
  /** Raw bytes of inventory reports kept per account; older reports are dropped (the newest is always kept). */
  inventoryReportBytes?: number;
}

/** Filter for AnchoreSimulator.requests. */
export interface RequestQuery {
  method?: string;
  path?: string | RegExp;
  account?: string;
}

/** A running simulator: its URL plus hooks to inspect and steer it from tests. */
export interface AnchoreSimulator {
  /** Root URL without /v2, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  /** The resolved configuration. */
  readonly config: SimConfig;
  /** Closes the server and every socket. */
  stop(): Promise<void>;
  requests(filter?: RequestQuery): RecordedRequest[];
  clearRequests(): void;
  /** Replaces the active fault rules (and restarts the seeded PRNG they roll with). */
  setFaults(rules: FaultRule[]): void;
  clearFaults(): void;
  /** Back to the configured state: no images, inventories, integrations, tokens, faults, overrides; empty log. */
  reset(): void;
  /** Deep copies of the images of an account, analysis advanced to now. */
  images(account: string): AnchoreImageRecord[];
  /** Every accepted inventory report of an account, in order. */
  inventories(account: string): InventoryReport[];
  integrations(): IntegrationRecord[];
  /** Overrides the /check verdict of a digest (in one account, or all); undefined removes the override. */
  setVerdict(digest: string, verdict: VerdictOverride | undefined, account?: string): void;
  /** Deletes an image from an account (as an admin's `DELETE /v2/images/{digest}?force=true`); false when absent. */
  deleteImage(account: string, digest: string): boolean;
  /** Deletes a policy from an account; false when absent. */
  deletePolicy(account: string, policyId: string): boolean;
  /** Adds or replaces a policy in an account (inactive unless `active`). @throws Error for an unknown account. */
  putPolicy(account: string, policy: SimPolicy): void;
  /** Makes a policy the account's only active one. @throws Error for an unknown account or policy. */
  setActivePolicy(account: string, policyId: string): void;
  /** Changes a user's password (an admin rotating it): Basic auth and the password grant take only the new one. */
  setPassword(username: string, password: string): void;
  /** From now on, any auth as this user (password, API key it owns, tokens) answers 401. */
  revokeCredentials(username: string): void;
  /** Expires every issued access token now (and refresh tokens too with includeRefresh). */
  expireTokens(opts?: { includeRefresh?: boolean }): void;
  /** Replaces the vulnerabilities reported for a digest (all accounts); undefined goes back to generated ones. */
  setVulnerabilities(digest: string, vulns: VulnerabilityInput[] | undefined): void;
  /**
   * Contract violations seen in strict mode, oldest first: requests that broke the published spec (answered 400) and
   * answers of the simulator that would have (answered 500 instead; `stop()` then rejects).
   */
  contractViolations(): ContractViolation[];
}
