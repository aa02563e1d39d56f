// The schemas of Anchore's published V2 API that the operator's calls touch, written here from the published field
// lists (see README.md in this folder for the source, the version and why the document itself is not vendored).
// Names follow the spec's component names. Every schema is `as const` so `Infer<typeof X>` gives its TypeScript type.
import { type ObjectSchema, type Schema, allOf } from './schema.ts';

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const num = { type: 'number' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const strings = { type: 'array', items: str } as const;
/** `properties: {}` objects: free-form members (annotations, error detail, configuration). */
const freeObject = { type: 'object', additionalProperties: true } as const;
const stringMap = { type: 'object', additionalProperties: str } as const;

export const DIGEST_PATTERN = '^sha256:[a-fA-F0-9]{64}$';

/** Kubernetes object UIDs as the spec types them: lower-case UUIDs. */
export const UUID = { type: 'string', minLength: 36, maxLength: 36, pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } as const satisfies Schema;

// ---- errors ----

export const ApiErrorResponse = {
  type: 'object',
  properties: { code: { type: 'integer', format: 'int32' }, error_type: str, message: str, detail: freeObject },
} as const satisfies Schema;

/** What the engine's error helper sends (contract notes §3): observed in the field, not in the spec. */
export const EngineErrorResponse = {
  type: 'object',
  required: ['message', 'httpcode'],
  properties: { message: str, httpcode: int, detail: freeObject, anchore_request_id: str },
} as const satisfies Schema;

/** RFC 7807 problem+json, how the web framework answers unknown URLs and wrong methods (contract notes §3). */
export const ProblemResponse = {
  type: 'object',
  required: ['title', 'status'],
  properties: { type: str, title: str, status: int, detail: str, instance: str },
} as const satisfies Schema;

/** Any error body a client may meet; the OAuth endpoints add an RFC 6749 `error` code. */
export const ErrorBody = {
  anyOf: [
    ApiErrorResponse,
    EngineErrorResponse,
    ProblemResponse,
    { type: 'object', required: ['error'], properties: { error: str, error_description: str, ...ApiErrorResponse.properties, ...EngineErrorResponse.properties } },
  ],
} as const satisfies Schema;

// ---- system ----

export const ServiceVersion = {
  type: 'object',
  properties: {
    service: { type: 'object', properties: { version: str } },
    api: { type: 'object', properties: { version: str } },
    db: { type: 'object', properties: { schema_version: str } },
  },
} as const satisfies Schema;

// ---- images ----

export const RegistryTagSource = {
  type: 'object',
  nullable: true,
  required: ['pull_string'],
  properties: { pull_string: str, dockerfile: { type: 'string', pattern: '^[a-zA-Z0-9+/=]+$' } },
} as const satisfies Schema;

export const RegistryDigestSource = {
  type: 'object',
  nullable: true,
  required: ['pull_string', 'tag'],
  properties: {
    pull_string: str,
    tag: str,
    creation_timestamp_override: dateTime,
    dockerfile: { type: 'string', pattern: '^[a-zA-Z0-9+/=]+$' },
  },
} as const satisfies Schema;

export const AnalysisArchiveSource = {
  type: 'object',
  nullable: true,
  required: ['digest'],
  properties: { digest: { type: 'string', pattern: DIGEST_PATTERN } },
} as const satisfies Schema;

export const ImageImportManifest = {
  type: 'object',
  nullable: true,
  required: ['contents', 'digest', 'operation_uuid', 'tags'],
  properties: {
    contents: {
      type: 'object',
      required: ['image_config', 'manifest', 'packages'],
      properties: {
        packages: str,
        image_config: str,
        manifest: str,
        parent_manifest: str,
        dockerfile: str,
        secret_searches: str,
        content_searches: str,
        file_contents: str,
      },
    },
    tags: strings,
    digest: str,
    parent_digest: str,
    local_image_id: str,
    operation_uuid: str,
  },
} as const satisfies Schema;

export const ImageSource = {
  type: 'object',
  properties: { tag: RegistryTagSource, digest: RegistryDigestSource, archive: AnalysisArchiveSource, import: ImageImportManifest },
} as const satisfies Schema;

export const ImageAnalysisRequest = {
  type: 'object',
  properties: { image_type: str, annotations: freeObject, source: ImageSource },
} as const satisfies Schema;

export const ServiceReference = {
  type: 'object',
  properties: { host_id: str, service_name: str },
} as const satisfies Schema;

export const AnalysisStatusDetail = {
  type: 'object',
  required: ['from_status', 'source', 'timestamp', 'to_status'],
  properties: { from_status: str, to_status: str, timestamp: { type: 'string', format: 'datetime' }, source: ServiceReference },
} as const satisfies Schema;

export const ImageContent = {
  type: 'object',
  properties: {
    metadata: {
      type: 'object',
      properties: {
        arch: str,
        distro: str,
        distro_version: str,
        dockerfile_mode: { type: 'string', enum: ['Guessed', 'Actual'] },
        image_size: int,
        layer_count: int,
      },
    },
  },
} as const satisfies Schema;

export const ImageDetail = {
  type: 'object',
  properties: {
    created_at: dateTime,
    last_updated: dateTime,
    full_tag: str,
    full_digest: str,
    account_name: str,
    image_id: str,
    registry: str,
    repo: str,
    dockerfile: { type: 'string', nullable: true },
    image_digest: str,
    tag: str,
    tag_detected_at: dateTime,
  },
} as const satisfies Schema;

export const AnchoreImage = {
  type: 'object',
  properties: {
    image_content: ImageContent,
    image_detail: { type: 'array', items: ImageDetail },
    last_updated: dateTime,
    created_at: dateTime,
    image_digest: str,
    parent_digest: str,
    account_name: str,
    annotations: freeObject,
    image_status: { type: 'string', enum: ['active', 'inactive', 'disabled'] },
    analysis_status: { type: 'string', enum: ['not_analyzed', 'analyzing', 'analyzed', 'analysis_failed'] },
    record_version: str,
    analysis_status_detail: { type: 'array', nullable: true, items: AnalysisStatusDetail },
  },
} as const satisfies Schema;

export const AnchoreImageList = {
  type: 'object',
  properties: { items: { type: 'array', items: AnchoreImage } },
} as const satisfies Schema;

// ---- vulnerabilities ----

const CvssScores = {
  type: 'object',
  properties: {
    base_score: { type: 'number', nullable: true },
    exploitability_score: { type: 'number', nullable: true },
    impact_score: { type: 'number', nullable: true },
  },
} as const satisfies Schema;

export const NvdDataObject = {
  type: 'object',
  properties: { id: str, description: str, cvss_v2: CvssScores, cvss_v3: CvssScores },
} as const satisfies Schema;

export const VendorDataObject = {
  type: 'object',
  properties: { id: str, cvss_v2: CvssScores, cvss_v3: CvssScores },
} as const satisfies Schema;

const EpssScore = {
  type: 'object',
  properties: { cve: str, epss: { type: 'number' }, percentile: { type: 'number' }, date: str },
} as const satisfies Schema;

export const PackageVulnerability = {
  type: 'object',
  properties: {
    vuln: str,
    description: str,
    fix: str,
    severity: str,
    package: str,
    url: str,
    feed: str,
    feed_group: str,
    package_name: str,
    package_version: str,
    package_type: str,
    package_cpe: str,
    package_path: str,
    will_not_fix: bool,
    nvd_data: { type: 'array', items: NvdDataObject },
    vendor_data: { type: 'array', items: VendorDataObject },
    detected_at: dateTime,
    fix_observed_at: dateTime,
    // Added after 2.10.2 (the stored spec); fields and VEX enum from the 2.13.0 field list in the reference notes.
    purl: str,
    suggested_fix_version: str,
    is_kev: bool,
    epss: { type: 'array', items: EpssScore },
    annotation_status: { type: 'string', enum: ['not_affected', 'affected', 'fixed', 'under_investigation'] },
  },
} as const satisfies Schema;

export const ImagePackageVulnerability = allOf(PackageVulnerability, { type: 'object', properties: { inherited_from_base: bool } });

export const ImagePackageVulnerabilityResponse = {
  type: 'object',
  properties: {
    image_digest: str,
    base_digest: str,
    base_image_problems: { type: 'array', items: freeObject },
    vulnerability_type: str,
    extended_support: bool,
    vulnerabilities: { type: 'array', items: ImagePackageVulnerability },
  },
} as const satisfies Schema;

export const VulnerabilityTypes = { type: 'array', items: { type: 'string', enum: ['all', 'os', 'non-os'] } } as const satisfies Schema;

// ---- policies ----

const ImageRef = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'value'],
  properties: { type: { type: 'string', enum: ['tag', 'digest', 'id'] }, value: str },
} as const satisfies Schema;

export const PolicyRule = {
  type: 'object',
  additionalProperties: false,
  required: ['action', 'gate', 'id', 'params', 'trigger'],
  properties: {
    id: str,
    gate: str,
    trigger: str,
    action: { type: 'string', enum: ['GO', 'STOP', 'WARN'] },
    description: str,
    params: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name', 'value'], properties: { name: str, value: str } } },
    recommendation: str,
  },
} as const satisfies Schema;

export const RuleSet = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'rules', 'version'],
  properties: { id: str, name: str, description: str, version: str, artifact_type: { type: 'string', enum: ['image', 'source'] }, rules: { type: 'array', items: PolicyRule } },
} as const satisfies Schema;

export const Allowlist = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'items', 'name', 'version'],
  properties: {
    id: str,
    name: str,
    version: str,
    description: str,
    items: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['gate', 'id', 'trigger_id'],
        properties: { id: str, gate: str, trigger_id: str, expires_on: { type: 'string', format: 'date-time', nullable: true }, description: str },
      },
    },
  },
} as const satisfies Schema;

export const MappingRule = {
  type: 'object',
  additionalProperties: false,
  required: ['allowlist_ids', 'id', 'image', 'name', 'registry', 'repository', 'rule_set_ids'],
  properties: { id: str, name: str, allowlist_ids: strings, rule_set_ids: strings, registry: str, repository: str, image: ImageRef, description: str },
} as const satisfies Schema;

export const ImageSelectionRule = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'image', 'name', 'registry', 'repository'],
  properties: { id: str, name: str, registry: str, repository: str, image: ImageRef, description: str },
} as const satisfies Schema;

const SourceMappingRule = {
  type: 'object',
  additionalProperties: false,
  required: ['allowlist_ids', 'host', 'id', 'name', 'repository', 'rule_set_ids'],
  properties: { id: str, name: str, allowlist_ids: strings, rule_set_ids: strings, host: str, repository: str, description: str },
} as const satisfies Schema;

export const Policy = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'version', 'rule_sets', 'mappings'],
  properties: {
    id: str,
    name: { type: 'string', minLength: 1 },
    description: str,
    version: str,
    allowlists: { type: 'array', items: Allowlist },
    rule_sets: { type: 'array', items: RuleSet },
    source_mappings: { type: 'array', items: SourceMappingRule },
    mappings: { type: 'array', items: MappingRule },
    allowlisted_images: { type: 'array', items: ImageSelectionRule },
    denylisted_images: { type: 'array', items: ImageSelectionRule },
    /** A number ("informational only"), unlike every other timestamp here. */
    last_updated: num,
  },
} as const satisfies Schema;

const NullType = { type: 'null' } as const;

export const PolicyRecord = {
  type: 'object',
  required: ['account_name', 'active', 'name', 'policy_id', 'policy_source'],
  properties: {
    created_at: dateTime,
    last_updated: dateTime,
    policy_id: str,
    active: bool,
    account_name: str,
    policy_source: str,
    policy: { anyOf: [NullType, Policy] },
    name: str,
    description: str,
  },
} as const satisfies Schema;

export const PolicyList = { type: 'array', items: PolicyRecord } as const satisfies Schema;

// ---- policy evaluation ----

const lowerAction = { type: 'string', enum: ['go', 'stop', 'warn'] } as const;

export const PolicyEvaluationFinding = {
  type: 'object',
  additionalProperties: false,
  required: ['action', 'allowlisted', 'gate', 'message', 'policy_id', 'recommendation', 'rule_id', 'trigger', 'trigger_id'],
  properties: {
    trigger_id: str,
    gate: str,
    trigger: str,
    message: str,
    action: lowerAction,
    policy_id: str,
    recommendation: str,
    rule_id: str,
    allowlisted: bool,
    allowlist_match: { anyOf: [NullType, { type: 'object', properties: { id: str, name: str, matched_rule_id: str } }] },
    inherited_from_base: { type: 'boolean', nullable: true },
  },
} as const satisfies Schema;

export const PolicyEvaluationRemediation = {
  type: 'object',
  required: ['suggestions', 'trigger_ids'],
  properties: {
    suggestions: { type: 'array', items: { type: 'object', required: ['message', 'preferred'], properties: { message: str, preferred: bool } } },
    trigger_ids: strings,
  },
} as const satisfies Schema;

export const PolicyEvaluationProblem = {
  type: 'object',
  required: ['details', 'problem_type', 'severity'],
  properties: { severity: { type: 'string', enum: ['error', 'warn'] }, problem_type: str, details: str },
} as const satisfies Schema;

export const PolicyEvaluationResult = {
  type: 'object',
  required: ['evaluation_problems', 'evaluation_time', 'final_action', 'final_action_reason', 'image_allowlisted', 'image_denylisted', 'image_mapped_to_rule', 'number_of_findings', 'status'],
  properties: {
    details: {
      type: 'object',
      nullable: true,
      required: ['findings', 'policy_action', 'policy'],
      properties: {
        policy: Policy,
        findings: { type: 'array', items: PolicyEvaluationFinding },
        policy_action: lowerAction,
        remediations: { type: 'array', nullable: true, items: PolicyEvaluationRemediation },
      },
    },
    comparison_image_digest: { type: 'string', nullable: true },
    evaluation_time: dateTime,
    evaluation_problems: { type: 'array', items: PolicyEvaluationProblem },
    status: { type: 'string', enum: ['fail', 'pass'] },
    final_action: lowerAction,
    final_action_reason: { type: 'string', enum: ['policy_evaluation', 'allowlisted', 'denylisted'] },
    image_allowlisted: bool,
    matched_allowlisted_images_rule: { anyOf: [NullType, ImageSelectionRule] },
    image_denylisted: bool,
    matched_denylisted_images_rule: { anyOf: [NullType, ImageSelectionRule] },
    image_mapped_to_rule: bool,
    matched_mapping_rule: { anyOf: [NullType, MappingRule] },
    number_of_findings: int,
  },
} as const satisfies Schema;

export const PolicyEvaluation = {
  type: 'object',
  properties: { policy_id: str, image_digest: str, evaluated_tag: str, evaluations: { type: 'array', items: PolicyEvaluationResult } },
} as const satisfies Schema;

// ---- runtime inventory ----

export const KubernetesInventoryNamespace = {
  type: 'object',
  required: ['name', 'uid'],
  properties: { uid: UUID, name: str, labels: stringMap, annotations: stringMap },
} as const satisfies Schema;

export const KubernetesInventoryNode = {
  type: 'object',
  required: ['name', 'uid'],
  properties: {
    uid: UUID,
    name: str,
    labels: stringMap,
    annotations: stringMap,
    kernel_version: str,
    kubernetes_version: str,
    arch: str,
    container_runtime_version: str,
    kube_proxy_version: str,
    kubelet_version: str,
    operating_system: str,
  },
} as const satisfies Schema;

export const KubernetesInventoryPod = {
  type: 'object',
  required: ['name', 'namespace_uid', 'uid'],
  properties: { uid: UUID, name: str, namespace_uid: UUID, node_uid: UUID, labels: stringMap, annotations: stringMap },
} as const satisfies Schema;

export const KubernetesInventoryContainer = {
  type: 'object',
  required: ['id', 'image_tag', 'name', 'pod_uid'],
  properties: { id: str, name: str, image_tag: { type: 'string', pattern: '^(?!\\s*$).+' }, image_digest: str, pod_uid: UUID },
} as const satisfies Schema;

export const KubernetesInventory = {
  type: 'object',
  required: ['cluster_name', 'timestamp'],
  properties: {
    cluster_name: str,
    timestamp: dateTime,
    namespaces: { type: 'array', items: KubernetesInventoryNamespace },
    nodes: { type: 'array', items: KubernetesInventoryNode },
    pods: { type: 'array', items: KubernetesInventoryPod },
    containers: { type: 'array', items: KubernetesInventoryContainer },
  },
} as const satisfies Schema;

// ---- integrations ----

export const IntegrationType = { type: 'string', enum: ['k8s_inventory_agent'] } as const satisfies Schema;
export const HealthReportInterval = { type: 'integer', minimum: 30, maximum: 600 } as const satisfies Schema;

export const IntegrationRegister = {
  type: 'object',
  required: ['registration_id', 'registration_instance_id', 'type', 'username', 'health_report_interval'],
  properties: {
    registration_id: str,
    registration_instance_id: str,
    type: IntegrationType,
    name: str,
    description: str,
    version: str,
    started_at: dateTime,
    uptime: num,
    username: str,
    explicitly_account_bound: strings,
    namespaces: strings,
    configuration: freeObject,
    cluster_name: str,
    namespace: str,
    health_report_interval: HealthReportInterval,
  },
} as const satisfies Schema;

const IntegrationSummary = {
  type: 'object',
  properties: {
    uuid: { type: 'string', format: 'uuid' },
    type: IntegrationType,
    name: str,
    version: str,
    reported_status: { type: 'object', properties: { state: { type: 'string', enum: ['healthy', 'unhealthy'] }, reason: str, details: freeObject } },
    integration_status: {
      type: 'object',
      properties: { state: { type: 'string', enum: ['active', 'registered', 'inactive'] }, reason: str, details: freeObject, updated_at: dateTime },
    },
    last_seen: dateTime,
    uptime: num,
    account_name: str,
    username: str,
    explicitly_account_bound: strings,
    accounts: strings,
    cluster_name: str,
    namespace: str,
    health_report_interval: HealthReportInterval,
    registration_id: str,
    registration_instance_id: str,
  },
} as const satisfies ObjectSchema;

const IntegrationAdditionalProperties = {
  type: 'object',
  properties: { description: str, started_at: dateTime, namespaces: strings, configuration: freeObject },
} as const satisfies ObjectSchema;

export const Integration: ObjectSchema = {
  ...allOf(IntegrationSummary, IntegrationAdditionalProperties),
  required: ['uuid', 'type', 'account_name', 'username'],
};

export const AccountK8sInventoryReportInfo = {
  type: 'object',
  required: ['report_timestamp', 'account_name', 'sent_as_user', 'batch_size', 'last_successful_index', 'has_errors', 'batches'],
  properties: {
    report_timestamp: { type: 'string', format: 'data-time' },
    account_name: str,
    sent_as_user: str,
    /** "Number of batches that the inventory report was sent in". */
    batch_size: { type: 'integer', minimum: 1 },
    /** "Index of last successfully sent batch, -1 if none were successful". */
    last_successful_index: { type: 'integer', minimum: -1 },
    has_errors: bool,
    batches: {
      type: 'array',
      items: {
        type: 'object',
        required: ['batch_index', 'send_timestamp'],
        properties: { batch_index: { type: 'integer', minimum: 1 }, send_timestamp: dateTime, error: str },
      },
    },
  },
} as const satisfies Schema;

export const HealthData = {
  type: 'object',
  required: ['type', 'version'],
  properties: {
    type: IntegrationType,
    version: int,
    errors: strings,
    account_k8s_inventory_reports: { type: 'object', additionalProperties: AccountK8sInventoryReportInfo },
  },
} as const satisfies Schema;

export const HealthReport = {
  type: 'object',
  required: ['uuid', 'protocol_version', 'timestamp', 'uptime', 'health_report_interval', 'health_data'],
  properties: {
    uuid: { type: 'string', format: 'uuid' },
    protocol_version: int,
    timestamp: dateTime,
    uptime: num,
    health_report_interval: HealthReportInterval,
    health_data: HealthData,
  },
} as const satisfies Schema;

// ---- OAuth ----

export const TokenRequestForm = {
  type: 'object',
  properties: { grant_type: str, username: str, password: str, client_id: str, refresh_token: str },
} as const satisfies Schema;

export const TokenResponse = {
  type: 'object',
  required: ['access_token'],
  properties: { access_token: str, expires_in: num, token_type: str, refresh_token: str },
} as const satisfies Schema;
