/**
 * The schema source of truth for the operator's CRDs. deploy/crds/*.yaml is generated from this file by
 * `npm run gen:crds`; `npm run verify` fails when the committed YAML drifts from it.
 */
import { CONDITION, REASON } from './types.ts';

export const GROUP = 'anchore.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });

const labelSelector = (description: string): Schema => ({
  type: 'object',
  description: `${description} A standard Kubernetes label selector; empty or absent selects everything.`,
  properties: {
    matchLabels: {
      type: 'object',
      description: 'Labels that must all be present with these values.',
      additionalProperties: { type: 'string', maxLength: 63 },
      maxProperties: 64,
    },
    matchExpressions: {
      type: 'array',
      description: 'Requirements that must all hold.',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: str('The label key.', { maxLength: 317 }),
          operator: str('In, NotIn, Exists or DoesNotExist.', { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
          values: {
            type: 'array',
            description: 'Values for In and NotIn (non-empty); must be absent for Exists and DoesNotExist.',
            maxItems: 64,
            items: { type: 'string', maxLength: 63 },
          },
        },
        'x-kubernetes-validations': [
          {
            rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
            message: 'In and NotIn need at least one value; Exists and DoesNotExist take none',
          },
        ],
      },
    },
  },
  'x-kubernetes-map-type': 'atomic',
});

const globList = (description: string): Schema => ({
  type: 'array',
  description,
  maxItems: 100,
  items: { type: 'string', minLength: 1, maxLength: 512 },
});

/** A Go duration as CEL's duration() reads it: numbers with units, no d (a day is 24h). */
const GO_DURATION = '^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
/** The one message for a reevaluateInterval that is no duration (kubectl apply prints it with the field's path). */
export const REEVALUATE_NOT_A_DURATION = 'reevaluateInterval must be a duration such as 30m, 1h or 2h30m: numbers with a unit h, m, s, ms, us or ns (there is no d: write 24h for a day)';

/** Fields shared by the namespaced and the cluster-scoped binding. */
function bindingSpecProperties(): Record<string, Schema> {
  return {
    policyId: str(
      "The Anchore policy to evaluate against (policy_id). When absent, the account's active policy is used, and a change of the active policy in Anchore triggers re-evaluation. Only for mode evaluate.",
      { minLength: 1, maxLength: 256 },
    ),
    account: str(
      'The Anchore account whose images and policy are used (sent as x-anchore-account). When absent, the account the namespace routes to (operator configuration), else the default account.',
      { minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]*$' },
    ),
    podSelector: labelSelector('Selects the pods (and so the workloads) whose images this binding covers.'),
    images: {
      type: 'object',
      description: 'Image filters, as globs on the normalised reference, e.g. docker.io/library/nginx:* or ghcr.io/acme/**.',
      properties: {
        include: globList('Only images matching one of these are covered; empty or absent covers all.'),
        exclude: globList('Images matching one of these are never covered (wins over include).'),
      },
    },
    mode: str('evaluate: run the Anchore policy check on every image. analyze: only require analysis and report vulnerability counts.', {
      enum: ['evaluate', 'analyze'],
      default: 'evaluate',
    }),
    failOn: str('Which final action counts as failing: stop (default), or warn (warn and stop both fail). Only for mode evaluate.', {
      enum: ['stop', 'warn'],
    }),
    reevaluateInterval: str('How often every covered image is evaluated again (a Go duration, e.g. 30m, 1h, 2h30m; units h, m, s, ms, us, ns, no d). Default 1h, minimum 1m.', {
      default: '1h',
      maxLength: 32,
      // Rules rather than a pattern: with a pattern, a value that is no duration (1d) also made the minimum rule fail
      // with a CEL type-conversion error, two messages where one was wanted. Here the first says what a duration is,
      // and the second only judges a value the first accepted (CEL's || stops at a true left side).
      'x-kubernetes-validations': [
        { rule: `self.matches('${GO_DURATION}')`, message: REEVALUATE_NOT_A_DURATION, reason: 'FieldValueInvalid' },
        { rule: `!self.matches('${GO_DURATION}') || duration(self) >= duration('1m')`, message: 'reevaluateInterval must be at least 1m', reason: 'FieldValueInvalid' },
      ],
    }),
    suspend: { type: 'boolean', description: 'Stops evaluation; the last status stays as it was.', default: false },
    enforcement: str(
      'What the admission webhook (when the chart enables it) does with a workload whose image fails this binding: audit (default) records an Event on the binding and a metric, warn also returns an admission warning to the client, deny rejects the request with a message naming image, policy and reason.',
      { enum: ['audit', 'warn', 'deny'], default: 'audit' },
    ),
    failurePolicy: str(
      'How admission treats an image it cannot judge (not in Anchore, not analysed yet, Anchore unavailable or slower than the deadline): open (default) lets it through with a warning, closed treats it as failing (so with enforcement deny it is rejected).',
      { enum: ['open', 'closed'], default: 'open' },
    ),
  };
}

const specValidations = [
  { rule: "!has(self.policyId) || self.mode == 'evaluate'", message: 'policyId applies only to mode evaluate', fieldPath: '.policyId', reason: 'FieldValueForbidden' },
  { rule: "!has(self.failOn) || self.mode == 'evaluate'", message: 'failOn applies only to mode evaluate', fieldPath: '.failOn', reason: 'FieldValueForbidden' },
];

const conditions: Schema = {
  type: 'array',
  // kubectl explain <kind>.status.conditions prints this: every type, when it is present and what it means.
  description:
    `Conditions (kstatus-compatible), by type. ${CONDITION.ready}: True when every covered image has been evaluated (reason ${REASON.evaluated}, ${REASON.analyzed}, ${REASON.noImages} or ${REASON.suspended}); False while reconciling or stalled, with the reason. ` +
    `${CONDITION.reconciling}: present (True) only while work is under way or retried, e.g. ${REASON.analysisPending}, ${REASON.imageNotInAnchore}, ${REASON.anchoreUnavailable}. ` +
    `${CONDITION.stalled}: present (True) only when the operator cannot go on until something changes: ${REASON.policyNotFound}, ${REASON.accountNotFound}, ${REASON.authFailed}, ${REASON.invalidSelector}, ${REASON.invalidSpec}. ` +
    `${CONDITION.compliant} (mode evaluate only): the policy verdict, apart from whether reconciling worked: True (${REASON.policyPassed}) when every covered image passes, False (${REASON.policyFailed}, ${REASON.evaluationErrors}) when one fails or could not be evaluated, Unknown (${REASON.noImages}) when the binding covers no running image. ` +
    'See docs/api.md, "Conditions and reasons".',
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  items: {
    type: 'object',
    required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
    properties: {
      type: str('Condition type.', { maxLength: 316 }),
      status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
      observedGeneration: { type: 'integer', format: 'int64', minimum: 0, description: 'The generation this condition was set for.' },
      lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
      reason: str('A CamelCase reason, e.g. Evaluated, AnalysisPending, PolicyNotFound.', { maxLength: 1024 }),
      message: str('What happened, for a person. A longer message is cut to this limit, ending with how many characters were left out.', { maxLength: 32768 }),
    },
  },
};

const count = (description: string): Schema => ({ type: 'integer', format: 'int32', minimum: 0, description });

/**
 * The status both kinds share. Its limits (maxLength, maxItems) are the ones the operator bounds every status write to
 * (boundStatus in src/controllers/binding-status.ts): whatever a binding selects, its status stays writable.
 */
export const BINDING_STATUS_SCHEMA: Schema = {
  type: 'object',
  description: 'What the operator observed. Written only when something meaningful changed.',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', description: 'The spec generation this status describes.' },
    conditions,
    summary: {
      type: 'object',
      description: 'Counts over every covered image.',
      properties: {
        workloads: count('Workloads whose pods the binding selects.'),
        images: count('Unique images (digest + tag) covered.'),
        passed: count('Images that passed.'),
        failed: count('Images that failed (per failOn).'),
        warned: count('Images with final action warn that did not fail.'),
        pending: count('Images waiting for registration or analysis.'),
        errors: count('Images that could not be evaluated.'),
        knownExploited: count('Images with known-exploited vulnerabilities (CISA KEV) among the failing and warned (evaluate) or all (analyze) images.'),
      },
    },
    policy: {
      type: 'object',
      description: 'The policy actually used. Absent while the binding is Stalled with PolicyNotFound or AccountNotFound (Anchore has no such policy).',
      properties: { id: str('policy_id'), name: str('Policy name in Anchore.'), active: { type: 'boolean', description: "True when it was resolved as the account's active policy." } },
    },
    account: str('The Anchore account actually used.'),
    install: str('ClusterAnchorePolicyBinding: the operator install (its INSTALL_ID) that owns this status; other installs leave the binding alone. The anchore.io/install annotation hands it over.'),
    lastEvaluationTime: str('When the last evaluation round finished.', { format: 'date-time' }),
    truncated: { type: 'boolean', description: 'True when results lists only part of the images (failing first).' },
    results: {
      type: 'array',
      description: 'Per-image results, failing first, bounded so the object stays small at any scale.',
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['image', 'result'],
        properties: {
          image: str('Normalised image reference (tag).'),
          digest: str('Registry digest.'),
          result: str('pass, fail, warn, pending or error.', { enum: ['pass', 'fail', 'warn', 'pending', 'error'] }),
          finalAction: str('Anchore final action: go, warn or stop.'),
          reason: str(`Why: policy_evaluation, allowlisted, denylisted, ${REASON.analysisPending}, ${REASON.analysisFailed}, …`),
          findings: count('Number of policy findings (evaluate) or vulnerabilities (analyze).'),
          vulnerabilities: {
            type: 'object',
            description: 'Vulnerability counts by severity (analyze mode).',
            additionalProperties: { type: 'integer', minimum: 0 },
          },
          topFindings: {
            type: 'array',
            description: 'The first failing gate/trigger messages.',
            maxItems: 5,
            items: {
              type: 'object',
              properties: { gate: str('Gate.'), trigger: str('Trigger.'), action: str('go, warn or stop.'), message: str('Finding message.', { maxLength: 1024 }) },
            },
          },
          knownExploited: {
            type: 'object',
            description: "Known-exploited vulnerabilities (CISA KEV, Anchore's is_kev) in the image: set for failing and warned images (evaluate) and every analysed image (analyze).",
            required: ['count', 'ids'],
            properties: {
              count: count('How many distinct known-exploited vulnerability ids.'),
              ids: { type: 'array', description: 'The first ids, most severe first.', maxItems: 5, items: { type: 'string', maxLength: 64 } },
            },
          },
          maxEpss: { type: 'number', minimum: 0, maximum: 1, description: "The highest EPSS score (FIRST's probability of exploitation in 30 days) among the image's vulnerabilities." },
          workloads: {
            type: 'array',
            description: 'Affected workloads (namespace/Kind/name), sorted and bounded: past the limit, the last entry says how many more ("… and 12 more").',
            maxItems: 10,
            items: { type: 'string' },
          },
          message: str('Detail for pending or error results.', { maxLength: 1024 }),
        },
      },
    },
  },
};

/** The Ready condition's fields, as a printer column's JSONPath. */
const ready = (field: 'status' | 'reason' | 'message'): string => `.status.conditions[?(@.type=="${CONDITION.ready}")].${field}`;

const printerColumns = [
  { name: 'Policy', type: 'string', jsonPath: '.status.policy.name', description: 'Policy in use' },
  { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
  { name: 'Images', type: 'integer', jsonPath: '.status.summary.images' },
  { name: 'Passed', type: 'integer', jsonPath: '.status.summary.passed' },
  { name: 'Failed', type: 'integer', jsonPath: '.status.summary.failed' },
  { name: CONDITION.ready, type: 'string', jsonPath: ready('status') },
  { name: 'Reason', type: 'string', jsonPath: ready('reason'), description: `Why the binding is (not) ${CONDITION.ready}` },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  // -o wide only.
  { name: 'Warned', type: 'integer', jsonPath: '.status.summary.warned', priority: 1 },
  { name: 'KEV', type: 'integer', jsonPath: '.status.summary.knownExploited', priority: 1, description: 'Images with known-exploited vulnerabilities (CISA KEV)' },
  { name: 'Pending', type: 'integer', jsonPath: '.status.summary.pending', priority: 1 },
  { name: 'Errors', type: 'integer', jsonPath: '.status.summary.errors', priority: 1 },
  { name: 'Enforcement', type: 'string', jsonPath: '.spec.enforcement', priority: 1, description: 'What admission does with failing images: audit, warn or deny' },
  { name: 'Message', type: 'string', jsonPath: ready('message'), priority: 1 },
];

function crd(opts: { kind: string; plural: string; shortName: string; scope: 'Namespaced' | 'Cluster'; description: string; extraSpec: Record<string, Schema>; extraValidations?: unknown[] }): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${opts.plural}.${GROUP}`, annotations: { 'anchore.io/generated-from': 'src/crds/schema.ts' } },
    spec: {
      group: GROUP,
      names: { kind: opts.kind, listKind: `${opts.kind}List`, plural: opts.plural, singular: opts.kind.toLowerCase(), shortNames: [opts.shortName], categories: ['anchore'] },
      scope: opts.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: opts.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion of this object.' },
                kind: { type: 'string', description: 'Kind of this object.' },
                metadata: { type: 'object' },
                spec: {
                  type: 'object',
                  description: 'What to evaluate and how.',
                  properties: { ...bindingSpecProperties(), ...opts.extraSpec },
                  'x-kubernetes-validations': [...specValidations, ...(opts.extraValidations ?? [])],
                },
                status: BINDING_STATUS_SCHEMA,
              },
            },
          },
        },
      ],
    },
  };
}

const ANCHORE_POLICY_BINDING = crd({
  kind: 'AnchorePolicyBinding',
  plural: 'anchorepolicybindings',
  shortName: 'apb',
  scope: 'Namespaced',
  description:
    'Binds an Anchore policy to workloads in this namespace: the operator evaluates every image those workloads run (GET /v2/images/{digest}/check) and reports the verdicts in status and as Events.',
  extraSpec: {},
});

const CLUSTER_ANCHORE_POLICY_BINDING = crd({
  kind: 'ClusterAnchorePolicyBinding',
  plural: 'clusteranchorepolicybindings',
  shortName: 'capb',
  scope: 'Cluster',
  description: 'Binds an Anchore policy to workloads across namespaces (selected by namespaceSelector and/or namespaces; all namespaces in the operator scope when both are absent).',
  extraSpec: {
    namespaceSelector: labelSelector('Selects namespaces by their labels.'),
    namespaces: {
      type: 'array',
      description: 'Namespace names or globs; combined with namespaceSelector (a namespace must match both when both are given).',
      maxItems: 256,
      items: { type: 'string', minLength: 1, maxLength: 253 },
    },
  },
});

export const ALL_CRDS = [ANCHORE_POLICY_BINDING, CLUSTER_ANCHORE_POLICY_BINDING];
