import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { checkChartDocs, valuesDocs } from '../../scripts/helm-docs.ts';
import { REVIEWED_KINDS } from '../../src/admission/review.ts';
import { BREAKGLASS_ACCESS } from '../../src/admission/trust.ts';
import { SETTINGS, loadConfig } from '../../src/config.ts';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, ensureCrds, eventually, getJson, kubectl, kubectlRaw, namespaceManifest, testCluster, uniqueName, waitForRunningPods } from '../support/k8s.ts';

/*
 * The Helm chart (deploy/helm/anchore-operator): lint, schema, what it renders, server-side validation of every
 * manifest against the real apiserver, and one real install whose RBAC the operator then runs under.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const chart = join(root, 'deploy', 'helm', 'anchore-operator');
const CI_VALUES = ['default-values.yaml', 'secure-values.yaml', 'admission-values.yaml'];
/** prometheus-operator kinds: their CRDs are not in the test cluster (see "monitoring objects" below). */
const MONITORING_KINDS = new Set(['ServiceMonitor', 'PrometheusRule']);
/** Kinds the apiserver cannot check because their CRDs are not installed: those and cert-manager's Certificate. */
const NOT_SERVER_CHECKED = new Set([...MONITORING_KINDS, 'Certificate']);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}
interface Container {
  name: string;
  image: string;
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  envFrom?: unknown[];
  ports?: Array<{ name: string; containerPort: number }>;
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  resources?: unknown;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> }; configMap?: { name: string } }>;
}
interface DeploymentObject extends K8sObject {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec } };
}
interface WebhookRule {
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  operations: string[];
  scope: string;
}
interface Webhook {
  name: string;
  admissionReviewVersions: string[];
  sideEffects: string;
  timeoutSeconds: number;
  failurePolicy: string;
  matchPolicy: string;
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
  namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> };
  objectSelector?: unknown;
  rules: WebhookRule[];
}
interface WebhookConfiguration extends K8sObject {
  webhooks: Webhook[];
}
type Data = K8sObject & { type?: string; data: Record<string, string> };

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** helm warns about a group- or world-readable kubeconfig, which a developer's own cluster may well have. */
const withoutKubeconfigWarning = (stderr: string): string => stderr.replace(/^WARNING: Kubernetes configuration file is (group|world)-readable.*\n/gm, '');
const helmRaw = (args: string[]): Promise<RunResult> => run(testCluster().helm, [...args, '--kubeconfig', testCluster().kubeconfig]);
const ciValues = (file: string): string[] => ['-f', join(chart, 'ci', file)];

/** `helm template` → the parsed manifests; throws with helm's stderr when the render fails. */
async function render(args: string[], namespace = 'anchore-system', release = 'rel'): Promise<K8sObject[]> {
  const r = await helmRaw(['template', release, chart, '--namespace', namespace, ...args]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function one<T extends K8sObject = K8sObject>(objs: K8sObject[], kind: string, name?: string): T {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as T;
}
const container = (objs: K8sObject[]): Container => one<DeploymentObject>(objs, 'Deployment').spec.template.spec.containers[0] as Container;
const clusterRoleRules = (objs: K8sObject[], name = 'rel-anchore-operator'): Rule[] => (one(objs, 'ClusterRole', name) as unknown as { rules: Rule[] }).rules;
const settingsOf = (objs: K8sObject[]): Record<string, string> => one<Data>(objs, 'ConfigMap', 'rel-anchore-operator').data;
const envOf = (objs: K8sObject[]): Record<string, { name: string; value?: string; valueFrom?: unknown }> => Object.fromEntries((container(objs).env ?? []).map((e) => [e.name, e]));
const webhookOf = (objs: K8sObject[]): Webhook => {
  const hooks = one<WebhookConfiguration>(objs, 'ValidatingWebhookConfiguration').webhooks;
  expect(hooks).toHaveLength(1);
  return hooks[0] as Webhook;
};
/** Everything the chart renders only for the admission webhook. */
const webhookObjects = (objs: K8sObject[]): K8sObject[] =>
  objs.filter(
    (o) =>
      o.kind === 'ValidatingWebhookConfiguration' || o.kind === 'Certificate' || o.metadata.name.startsWith('rel-anchore-operator-webhook') || o.metadata.name === 'rel-anchore-operator-breakglass',
  );

/** Exactly the requests src/kube/ makes; README.md's RBAC table gives the reason for each. */
const BASE_RULES: Rule[] = [
  { apiGroups: [''], resources: ['pods', 'namespaces', 'nodes'], verbs: ['list', 'watch'] },
  { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['list', 'watch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch'] },
  { apiGroups: ['anchore.io'], resources: ['anchorepolicybindings', 'clusteranchorepolicybindings'], verbs: ['list', 'watch'] },
  { apiGroups: ['anchore.io'], resources: ['anchorepolicybindings/status', 'clusteranchorepolicybindings/status'], verbs: ['patch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'list'] },
];
const TOKEN_REVIEW_RULE: Rule = { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] };
/** metrics.secure authorizes /metrics callers with it; admission checks breakglass permission with it. */
const ACCESS_REVIEW_RULE: Rule = { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] };
const METRICS_AUTH_RULES: Rule[] = [TOKEN_REVIEW_RULE, ACCESS_REVIEW_RULE];
/** The permission the operator's SubjectAccessReview asks about before it lets a request break glass. */
const BREAKGLASS_RULE: Rule = { apiGroups: [BREAKGLASS_ACCESS.group], resources: [BREAKGLASS_ACCESS.resource], verbs: [BREAKGLASS_ACCESS.verb] };

describe('Helm chart: lint, schema and rendering', () => {
  it.each(CI_VALUES)('when helm lint --strict runs with ci/%s, then it reports no failure', async (file) => {
    const r = await helmRaw(['lint', '--strict', chart, ...ciValues(file)]);
    expect(r.stderr + r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  it.each([
    ['replicaCount is a word', ['--set', 'replicaCount=two'], /replicaCount.*(integer|number)|(integer|number).*replicaCount/s],
    ['an unknown top-level key', ['--set', 'replicas=2'], /additional propert(y|ies).*replicas|replicas.*not allowed/s],
    ['metrics.secure is "yes"', ['--set', 'metrics.secure=yes'], /metrics.*secure.*boolean|boolean.*secure/s],
    ['logLevel is not a level', ['--set', 'logLevel=verbose'], /logLevel/],
    ['an unknown key under anchore', ['--set', 'anchore.passwd=x'], /additional propert(y|ies).*passwd|passwd.*not allowed/s],
    ['admission.failurePolicy is Maybe', ['--set', 'admission.failurePolicy=Maybe'], /failurePolicy/],
    ['admission.timeoutSeconds is 60, above the apiserver maximum of 30', ['--set', 'admission.timeoutSeconds=60'], /timeoutSeconds/],
    ['admission.timeoutSeconds is 1, leaving Anchore no time', ['--set', 'admission.timeoutSeconds=1'], /timeoutSeconds/],
    ['admission.enabled is "on"', ['--set', 'admission.enabled=on'], /enabled.*boolean|boolean.*enabled/s],
    ['an exempt namespace holds a comma', ['--set-json', 'admission.exemptNamespaces=["a,b"]'], /exemptNamespaces/],
    ['an unknown key under admission.tls', ['--set', 'admission.tls.ca=x'], /additional propert(y|ies).*\bca\b|\bca\b.*not allowed/s],
    ['the webhook CA is PEM instead of base64', ['--set', 'admission.tls.caBundle=-----BEGIN CERTIFICATE-----'], /caBundle/],
    ['no controller is trusted (the operator would read an empty setting as its default list)', ['--set-json', 'admission.trustedControllers=[]'], /trustedControllers/],
    ['a breakglass ServiceAccount subject has no namespace', ['--set-json', 'admission.breakglass.subjects=[{"kind":"ServiceAccount","name":"oncall"}]'], /subjects.*namespace/s],
    ['a breakglass subject is of an unknown kind', ['--set-json', 'admission.breakglass.subjects=[{"kind":"Team","name":"oncall"}]'], /subjects.*kind|kind.*Team/s],
    ['admission.shutdownDelaySeconds is above the operator maximum of 600', ['--set', 'admission.shutdownDelaySeconds=601'], /shutdownDelaySeconds/],
    ['anchore.imagesRefreshSeconds is negative', ['--set', 'anchore.imagesRefreshSeconds=-1'], /imagesRefreshSeconds/],
  ])('when %s, then values.schema.json rejects the values with a message', async (_name, args, message) => {
    const r = await helmRaw(['template', 'rel', chart, ...ciValues('default-values.yaml'), ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    ['clusterName is missing', ['--set', 'anchore.url=https://a:8228', '--set', 'anchore.existingSecret.name=s'], 'clusterName is required'],
    ['anchore.url is missing', ['--set', 'clusterName=c', '--set', 'anchore.existingSecret.name=s'], 'anchore.url is required'],
    ['no credentials are given', ['--set', 'clusterName=c', '--set', 'anchore.url=https://a:8228'], 'Anchore credentials are required'],
    ['an API key and a password are both given', ['--set', 'clusterName=c', '--set', 'anchore.url=https://a:8228', '--set', 'anchore.apiKey=k', '--set', 'anchore.password=p'], 'not both'],
    [
      'anchore.url carries credentials',
      ['--set', 'clusterName=c', '--set', 'anchore.url=https://user:pw@a:8228', '--set', 'anchore.existingSecret.name=s'],
      'must be an http(s) URL without credentials',
    ],
    ['two replicas run without leader election', [...ciValues('default-values.yaml'), '--set', 'leaderElection.enabled=false'], 'replicaCount > 1 needs leaderElection.enabled'],
    ['the NetworkPolicy has no apiserver CIDR', [...ciValues('default-values.yaml'), '--set', 'networkPolicy.enabled=true'], 'networkPolicy.egress.apiServer.cidrs is required'],
    ['cert-manager is named without an issuer', [...ciValues('admission-values.yaml'), '--set', 'admission.tls.certManager.enabled=true'], 'admission.tls.certManager.issuerRef.name is required'],
    ['an existing webhook Secret comes without its CA', [...ciValues('admission-values.yaml'), '--set', 'admission.tls.existingSecret=hook-tls'], 'admission.tls.caBundle is required'],
    [
      'the webhook CA is base64 of something other than PEM',
      [...ciValues('admission-values.yaml'), '--set', 'admission.tls.existingSecret=hook-tls', '--set', `admission.tls.caBundle=${Buffer.from('not a certificate').toString('base64')}`],
      'must be base64-encoded PEM',
    ],
    [
      'both cert-manager and an existing Secret are named',
      [
        ...ciValues('admission-values.yaml'),
        '--set',
        'admission.tls.existingSecret=hook-tls',
        '--set',
        'admission.tls.caBundle=eA==',
        '--set',
        'admission.tls.certManager.enabled=true',
        '--set',
        'admission.tls.certManager.issuerRef.name=ca',
      ],
      'not both',
    ],
    ['the webhook port is the metrics port', [...ciValues('admission-values.yaml'), '--set', 'admission.port=8080'], 'admission.port 8080 is taken'],
    [
      'the NetworkPolicy cannot tell the port of anchore.url',
      [...ciValues('default-values.yaml'), ...['networkPolicy.enabled=true', 'networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}', 'anchore.url=https://a:99999'].flatMap((s) => ['--set', s])],
      'networkPolicy: cannot tell the port of anchore.url "https://a:99999" (no port, or one outside 1-65535); set networkPolicy.egress.anchore.ports',
    ],
    ['the proxy is not http(s)', [...ciValues('default-values.yaml'), '--set', 'proxy.httpsProxy=socks5://proxy.corp:1080'], 'proxy.httpsProxy must be an http:// or https:// proxy URL'],
    ['the proxy URL has a path', [...ciValues('default-values.yaml'), '--set', 'proxy.httpProxy=http://proxy.corp:3128/x'], 'proxy.httpProxy must be a proxy URL of the form http://host:port'],
  ])('when %s, then the render fails naming the value', async (_name, args, message) => {
    const r = await helmRaw(['template', 'rel', chart, ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  describe('the NetworkPolicy egress to Anchore', () => {
    type Egress = Array<{ ports?: Array<{ port: number | string; protocol: string }>; to?: unknown[] }>;
    const NP = ['networkPolicy.enabled=true', 'networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}'];
    /** The NetworkPolicy's egress rules after DNS and the apiserver (those two are the same whatever Anchore is). */
    async function towardsAnchore(values: string[], json: string[] = []): Promise<Egress> {
      const objs = await render([...ciValues('default-values.yaml'), ...[...NP, ...values].flatMap((v) => ['--set', v]), ...json.flatMap((j) => ['--set-json', j])]);
      const egress = one<K8sObject & { spec: { egress: Egress } }>(objs, 'NetworkPolicy').spec.egress;
      expect(egress[0]?.ports?.map((p) => p.port)).toEqual([53, 53]);
      expect(egress[1]?.to).toEqual([{ ipBlock: { cidr: '10.0.0.1/32' } }]);
      return egress.slice(2);
    }
    const tcp = (...ports: number[]): Array<{ port: number; protocol: string }> => ports.map((port) => ({ port, protocol: 'TCP' }));

    it.each([
      ['https://anchore-api.anchore.svc:8228', 8228],
      ['https://anchore.example.com', 443],
      ['http://anchore.example.com/v2/', 80],
      ['https://Anchore.Example.com:9443/', 9443],
      ['https://[fd00::1]:8443', 8443],
      ['https://10.1.2.3', 443],
    ])('when anchore.url is %s, then only port %d is opened towards Anchore (not 8228 and 443 whatever the URL says)', async (url, port) => {
      expect(await towardsAnchore([`anchore.url=${url}`])).toEqual([{ ports: tcp(port) }]);
    });

    it('when networkPolicy.egress.anchore.ports or .to are set, then they are used as given', async () => {
      expect(await towardsAnchore(['networkPolicy.egress.anchore.ports={8228,8443}'], ['networkPolicy.egress.anchore.to=[{"ipBlock":{"cidr":"10.9.0.0/16"}}]'])).toEqual([
        { ports: tcp(8228, 8443), to: [{ ipBlock: { cidr: '10.9.0.0/16' } }] },
      ]);
    });

    it('when a proxy carries the calls to Anchore, then the proxy port is opened instead of Anchore, and the operator gets HTTPS_PROXY and NO_PROXY', async () => {
      const values = ['anchore.url=https://anchore.example.com:8228', 'proxy.httpsProxy=http://proxy.corp:3128', 'proxy.noProxy=.svc\\,10.0.0.0/8'];
      expect(await towardsAnchore(values, ['networkPolicy.egress.proxy.to=[{"ipBlock":{"cidr":"10.20.0.15/32"}}]'])).toEqual([{ ports: tcp(3128), to: [{ ipBlock: { cidr: '10.20.0.15/32' } }] }]);
      const data = settingsOf(await render([...ciValues('default-values.yaml'), ...values.flatMap((v) => ['--set', v])]));
      expect({ https: data['HTTPS_PROXY'], http: data['HTTP_PROXY'], no: data['NO_PROXY'] }).toEqual({ https: 'http://proxy.corp:3128', http: undefined, no: '.svc,10.0.0.0/8' });
      // No port in the proxy URL: the scheme's.
      expect(await towardsAnchore(['proxy.httpsProxy=https://proxy.corp'])).toEqual([{ ports: tcp(443) }]);
      expect(await towardsAnchore(['proxy.httpsProxy=proxy.corp'])).toEqual([{ ports: tcp(80) }]);
      expect(await towardsAnchore(['proxy.httpsProxy=http://proxy.corp:3128', 'networkPolicy.egress.proxy.ports={3129}'])).toEqual([{ ports: tcp(3129) }]);
    });

    it.each([
      ['a name above the host', '.anchore.svc'],
      ['the host itself with its port', 'anchore-api.anchore.svc:8228'],
      ['*', '*'],
    ])('when proxy.noProxy exempts Anchore (%s), then Anchore is reached directly: its port is opened, not the proxy', async (_name, noProxy) => {
      expect(await towardsAnchore(['anchore.url=https://anchore-api.anchore.svc:8228', 'proxy.httpsProxy=http://proxy.corp:3128', `proxy.noProxy=${noProxy}`])).toEqual([{ ports: tcp(8228) }]);
    });

    it('when the proxy is for the other scheme, or NO_PROXY names another port, or only a CIDR might cover an IP host, then the rules follow what the operator does', async () => {
      // HTTP_PROXY does not apply to an https Anchore (no fallback between schemes).
      expect(await towardsAnchore(['anchore.url=https://a.example:8228', 'proxy.httpProxy=http://proxy.corp:3128'])).toEqual([{ ports: tcp(8228) }]);
      // A NO_PROXY entry for another port does not exempt Anchore.
      expect(await towardsAnchore(['anchore.url=https://a.example:8228', 'proxy.httpsProxy=http://proxy.corp:3128', 'proxy.noProxy=a.example:443'])).toEqual([{ ports: tcp(3128) }]);
      // The chart does not compute CIDRs: both ways are opened.
      expect(await towardsAnchore(['anchore.url=https://10.1.2.3:8228', 'proxy.httpsProxy=http://proxy.corp:3128', 'proxy.noProxy=10.0.0.0/8'])).toEqual([{ ports: tcp(8228) }, { ports: tcp(3128) }]);
    });

    it('when the proxy URL carries credentials, then the render fails without printing them', async () => {
      const r = await helmRaw(['template', 'rel', chart, ...ciValues('default-values.yaml'), '--set', 'proxy.httpsProxy=http://op:Pr0xyPa55@proxy.corp:3128']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('proxy.httpsProxy must not carry credentials');
      expect(r.stderr).toContain('extraEnv');
      expect(r.stderr).not.toContain('Pr0xyPa55');
    });
  });

  it('when the cluster is older than Kubernetes 1.28, then the chart refuses it', async () => {
    const r = await helmRaw(['template', 'rel', chart, ...ciValues('default-values.yaml'), '--kube-version', '1.27.0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('kubeVersion');
  });

  it('when rendered, then every object carries the standard labels and the Deployment runs 2 replicas of the appVersion image', async () => {
    const objs = await render(ciValues('default-values.yaml'));
    const chartYaml = parseYaml(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string; kubeVersion: string };
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(chartYaml.appVersion).toBe(pkg.version);
    for (const o of objs) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'anchore-operator',
        'app.kubernetes.io/instance': 'rel',
        'app.kubernetes.io/version': chartYaml.appVersion,
        'app.kubernetes.io/managed-by': 'Helm',
        'helm.sh/chart': `anchore-operator-${chartYaml.version}`,
      });
    }
    const d = one<DeploymentObject>(objs, 'Deployment');
    expect(d.spec.replicas).toBe(2);
    expect(container(objs).image).toMatch(new RegExp(`:${chartYaml.appVersion.replace(/\./g, '\\.')}$`));
    expect(one(objs, 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1 });
  });

  it('when rendered, then the pod runs non-root with a read-only root filesystem, no privilege escalation, no capabilities and RuntimeDefault seccomp', async () => {
    for (const file of CI_VALUES) {
      const objs = await render(ciValues(file));
      const pod = one<DeploymentObject>(objs, 'Deployment').spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.containers[0]?.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 65532,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.automountServiceAccountToken).toBe(true);
      // With admission the shutdown delay (10 s by default) is added: see the hand-off test below.
      expect(pod.terminationGracePeriodSeconds).toBe(file === 'admission-values.yaml' ? 40 : 30);
      const c = pod.containers[0] as Container;
      expect(c.ports).toEqual([
        { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
        { name: 'health', containerPort: 8081, protocol: 'TCP' },
        ...(file === 'admission-values.yaml' ? [{ name: 'webhook', containerPort: 9443, protocol: 'TCP' }] : []),
      ]);
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
      expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } });
    }
  });

  it('when rendered, then the credentials reach the operator as mounted files and the pod name and namespace from the downward API', async () => {
    const existing = await render(ciValues('default-values.yaml'));
    expect(existing.filter((o) => o.kind === 'Secret')).toHaveLength(0); // existingSecret: the chart creates none
    let env = Object.fromEntries((container(existing).env ?? []).map((e) => [e.name, e]));
    expect(env['POD_NAME']?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env['POD_NAMESPACE']?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env['ANCHORE_USERNAME']?.valueFrom).toEqual({ secretKeyRef: { name: 'anchore-operator-credentials', key: 'username' } });
    expect(env['ANCHORE_PASSWORD_FILE']?.value).toBe('/etc/anchore-operator/credentials/password');
    expect(env['ANCHORE_PASSWORD']).toBeUndefined();

    const apiKey = await render([...ciValues('default-values.yaml'), '--set', 'anchore.existingSecret.apiKeyKey=token']);
    env = Object.fromEntries((container(apiKey).env ?? []).map((e) => [e.name, e]));
    expect(env['ANCHORE_API_KEY_FILE']?.value).toBe('/etc/anchore-operator/credentials/api-key');
    expect(env['ANCHORE_USERNAME']).toBeUndefined();
    const vol = one<DeploymentObject>(apiKey, 'Deployment').spec.template.spec.volumes?.find((v) => v.name === 'credentials');
    expect(vol?.secret).toMatchObject({ secretName: 'anchore-operator-credentials', items: [{ key: 'token', path: 'api-key' }] });

    // From values: the chart creates the Secret (the password only there) and the CA ConfigMap.
    const secure = await render(ciValues('secure-values.yaml'));
    const secret = one<Data>(secure, 'Secret', 'rel-anchore-operator-credentials');
    expect(Buffer.from(secret.data['password'] as string, 'base64').toString()).toBe('not-a-real-password');
    const text = stringify(secure.filter((o) => o.kind !== 'Secret'));
    expect(text).not.toContain('not-a-real-password');
    env = Object.fromEntries((container(secure).env ?? []).map((e) => [e.name, e]));
    expect(env['ANCHORE_CA_FILE']?.value).toBe('/etc/anchore-operator/anchore-ca/ca.crt');
    expect(one<Data>(secure, 'ConfigMap', 'rel-anchore-operator-anchore-ca').data['ca.crt']).toContain('BEGIN CERTIFICATE');
  });

  it('when a setting changes, then the pod template checksum changes so the upgrade rolls the pods', async () => {
    const checksums = async (args: string[]) => one<DeploymentObject>(await render([...ciValues('secure-values.yaml'), ...args]), 'Deployment').spec.template.metadata.annotations ?? {};
    const base = await checksums([]);
    expect(Object.keys(base).sort()).toEqual(['checksum/anchore-ca', 'checksum/config', 'checksum/credentials', 'checksum/metrics-tls']);
    const changed = await checksums(['--set', 'logLevel=debug', '--set', 'anchore.password=rotated']);
    expect(changed['checksum/config']).not.toBe(base['checksum/config']);
    expect(changed['checksum/credentials']).not.toBe(base['checksum/credentials']);
    expect(changed['checksum/anchore-ca']).toBe(base['checksum/anchore-ca']);
  });

  it('when rendered, then every environment variable is an operator setting, and the chart defaults are the operator defaults', async () => {
    // The proxy variables are not settings of src/config.ts: the Anchore client reads them as every tool does.
    const known = new Set([...SETTINGS.flatMap((s) => s.name.split(' / ')), 'ANCHORE_RATE_BURST', 'POD_NAME', 'POD_NAMESPACE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']);
    const renders = [
      await render(ciValues('default-values.yaml')),
      await render(ciValues('secure-values.yaml')),
      await render(ciValues('admission-values.yaml')),
      await render([
        ...ciValues('default-values.yaml'),
        ...[
          'integration.id=x',
          'images.missingRegistryOverride=registry.example',
          'accounts.namespaceLabel=anchore.io/account',
          'anchore.existingSecret.apiKeyKey=k',
          'proxy.httpsProxy=http://proxy.corp:3128',
          'proxy.noProxy=.svc',
        ].flatMap((s) => ['--set', s]),
        ...['--set-json', 'admission.registration.repositories=["ghcr.io/acme/**"]'],
      ]),
    ];
    const set = new Set<string>();
    for (const objs of renders) {
      for (const k of Object.keys(settingsOf(objs))) set.add(k);
      for (const e of container(objs).env ?? []) set.add(e.name);
    }
    expect([...set].filter((n) => !known.has(n))).toEqual([]);
    // Settings the chart leaves alone on purpose; any other new setting needs a value in the chart.
    const notInChart = new Set(['KUBECONFIG', 'CONFIG_FILE']);
    const missing = SETTINGS.filter((s) => !s.name.split(' / ').some((n) => set.has(n) || notInChart.has(n))).map((s) => s.name);
    expect(missing).toEqual([]);

    const data = settingsOf(renders[0] as K8sObject[]);
    // The lease is named after the release (two releases must not share one); the operator's default is fixed.
    const differOnPurpose = new Set(['LEADER_ELECTION_ID']);
    // The README describes these defaults in words; the loaded values are compared below instead.
    const describedDefault = new Set(['ADMISSION_TRUSTED_CONTROLLERS']);
    for (const s of SETTINGS) {
      const name = s.name.split(' / ')[0] as string;
      if (differOnPurpose.has(name) || describedDefault.has(name) || !(name in data) || s.default === '' || s.default.startsWith('(')) continue;
      expect(`${name}=${data[name]}`).toBe(`${name}=${s.default}`);
    }
    const minimal = { ANCHORE_URL: 'https://a:8228', ANCHORE_USERNAME: 'u', ANCHORE_PASSWORD: 'p', CLUSTER_NAME: 'c' };
    expect(loadConfig({ ...data, ...minimal }).admission.trustedControllers).toEqual(loadConfig(minimal).admission.trustedControllers);
  });

  it('when rendered, then the ClusterRole grants exactly what the operator calls: no wildcards, no Secrets; the review rules only with metrics.secure (SubjectAccessReviews also with admission)', async () => {
    const plain = await render(ciValues('default-values.yaml'));
    const secure = await render(ciValues('secure-values.yaml'));
    const admission = await render(ciValues('admission-values.yaml'));
    expect(clusterRoleRules(plain)).toEqual(BASE_RULES);
    expect(clusterRoleRules(secure)).toEqual([...BASE_RULES, ...METRICS_AUTH_RULES]);
    expect(clusterRoleRules(admission)).toEqual([...BASE_RULES, ACCESS_REVIEW_RULE]);
    expect(clusterRoleRules(await render([...ciValues('admission-values.yaml'), '--set', 'metrics.secure=true']))).toEqual([...BASE_RULES, ...METRICS_AUTH_RULES]);
    expect(clusterRoleRules(plain, 'rel-anchore-operator-metrics-reader')).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
    for (const objs of [plain, secure, admission]) {
      for (const role of objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
        for (const rule of (role as unknown as { rules: Rule[] }).rules) {
          for (const list of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames, rule.nonResourceURLs]) expect(list ?? []).not.toContain('*');
          expect(rule.resources ?? []).not.toContain('secrets');
        }
      }
    }
    const role = one(plain, 'Role') as unknown as { metadata: { namespace: string }; rules: Rule[] };
    expect(role.metadata.namespace).toBe('anchore-system');
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['rel-anchore-operator'], verbs: ['get', 'update'] },
    ]);
    const noElection = await render([...ciValues('default-values.yaml'), '--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false']);
    expect(noElection.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toEqual([]);
    expect(noElection.filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    expect(settingsOf(noElection)['LEADER_ELECTION']).toBe('false');
  });

  it('when crds.install is false, then no CRD is rendered; when true, then the CRDs equal deploy/crds and are kept on uninstall', async () => {
    expect((await render([...ciValues('default-values.yaml'), '--set', 'crds.install=false'])).filter((o) => o.kind === 'CustomResourceDefinition')).toEqual([]);
    const crds = (await render(ciValues('default-values.yaml'))).filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['anchorepolicybindings.anchore.io', 'clusteranchorepolicybindings.anchore.io']);
    for (const crd of crds) {
      const source = parseYaml(readFileSync(join(root, 'deploy', 'crds', `${crd.metadata.name}.yaml`), 'utf8')) as K8sObject;
      expect(crd['spec']).toEqual(source['spec']);
      expect(crd.metadata.annotations).toEqual({ ...source.metadata.annotations, 'helm.sh/resource-policy': 'keep' });
    }
  });

  it("when the repo's CRDs, alert rules or dashboard change, then the chart's copies are checked to match (gen-crds --check)", async () => {
    const r = await run(process.execPath, [join(root, 'scripts', 'gen-crds.ts'), '--check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const f of ['prometheus-rules.yaml', 'grafana-dashboard.json']) {
      expect(readFileSync(join(chart, 'files', f), 'utf8')).toBe(readFileSync(join(root, 'deploy', 'monitoring', f), 'utf8'));
    }
  });

  it('when values.yaml changes, then README.md documents every value in its table and values.schema.json declares it (helm-docs --check)', () => {
    expect(checkChartDocs(chart)).toEqual([]);
    const r = valuesDocs('# -- Documented.\na: 1\nb:\n  # -- Nested.\n  c: true\n  d: []\n# -- A map documented as one.\ne:\n  f: 1\n');
    expect(r.rows.map((row) => [row.key, row.type, row.default])).toEqual([
      ['a', 'int', '1'],
      ['b.c', 'bool', 'true'],
      ['e', 'object', '{"f":1}'],
    ]);
    expect(r.undocumented).toEqual(['b.d']);
  });

  it('when monitoring objects are rendered, then the ServiceMonitor scrapes the metrics Service over verified HTTPS and the rules and dashboard are the repo files', async () => {
    // The prometheus-operator CRDs are not in the test cluster and their upstream schemas cannot be vendored here, so
    // these two kinds are checked structurally instead of by the apiserver.
    const objs = await render(ciValues('secure-values.yaml'), 'ops');
    const svc = one<K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; appProtocol: string }> } }>(objs, 'Service');
    const sm = one<K8sObject & { spec: Record<string, unknown> & { endpoints: Array<Record<string, unknown>> } }>(objs, 'ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels?.['release']).toBe('kube-prometheus-stack');
    expect(sm.spec['selector']).toEqual({ matchLabels: svc.spec.selector });
    expect(sm.spec['namespaceSelector']).toEqual({ matchNames: ['ops'] });
    expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP', appProtocol: 'https' }]);
    expect(sm.spec.endpoints).toEqual([
      {
        port: 'metrics',
        path: '/metrics',
        interval: '30s',
        honorLabels: false,
        scheme: 'https',
        bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
        tlsConfig: { insecureSkipVerify: false, serverName: 'rel-anchore-operator-metrics.ops.svc', ca: { secret: { name: 'rel-anchore-operator-metrics-tls', key: 'ca.crt' } } },
      },
    ]);
    const tls = one<K8sObject & { type: string; data: Record<string, string> }>(objs, 'Secret', 'rel-anchore-operator-metrics-tls');
    expect(tls.type).toBe('kubernetes.io/tls');
    expect(Object.keys(tls.data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);

    const rule = one<K8sObject & { spec: unknown }>(objs, 'PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.spec).toEqual(parseYaml(readFileSync(join(root, 'deploy', 'monitoring', 'prometheus-rules.yaml'), 'utf8')));
    const dash = one<Data>(objs, 'ConfigMap', 'rel-anchore-operator-dashboard');
    expect(dash.metadata.labels?.['grafana_dashboard']).toBe('1');
    expect(dash.metadata.annotations).toEqual({ grafana_folder: 'Security' });
    expect(JSON.parse(dash.data['anchore-operator.json'] as string)).toEqual(JSON.parse(readFileSync(join(root, 'deploy', 'monitoring', 'grafana-dashboard.json'), 'utf8')));

    const plain = await render(ciValues('default-values.yaml'));
    expect(plain.filter((o) => MONITORING_KINDS.has(o.kind) || o.metadata.name.endsWith('-dashboard') || o.kind === 'NetworkPolicy')).toEqual([]);
  });
});

describe('Helm chart: the admission webhook (rendered and checked here; never registered in the shared test cluster)', () => {
  const hookName = 'rel-anchore-operator-webhook';
  const generated = (args: string[] = [], namespace = 'anchore-system'): Promise<K8sObject[]> => render([...ciValues('admission-values.yaml'), ...args], namespace);

  it('when admission.enabled is left at false, then nothing of the webhook is rendered: no configuration, Service, Secret, port, mount or certificate setting', async () => {
    for (const file of ['default-values.yaml', 'secure-values.yaml']) {
      const objs = await render(ciValues(file));
      expect(webhookObjects(objs)).toEqual([]);
      const c = container(objs);
      expect((c.ports ?? []).map((p) => p.name)).not.toContain('webhook');
      expect((c.volumeMounts ?? []).map((m) => m.name)).not.toContain('admission-tls');
      expect(Object.keys(envOf(objs)).filter((n) => n.startsWith('ADMISSION_'))).toEqual([]);
      expect(Object.keys(one<DeploymentObject>(objs, 'Deployment').spec.template.metadata.annotations ?? {})).not.toContain('checksum/admission-tls');
      expect(settingsOf(objs)['ADMISSION_ENABLED']).toBe('false');
    }
  });

  it('when enabled, then one fully-qualified v1 webhook with NoneOnDryRun, the configured timeout and failurePolicy calls /validate on the webhook Service port 443', async () => {
    const hook = webhookOf(await generated());
    expect(hook.name).toBe('workloads.admission.anchore.io');
    expect(hook.admissionReviewVersions).toEqual(['v1']);
    expect(hook.sideEffects).toBe('NoneOnDryRun');
    expect(hook.timeoutSeconds).toBe(10);
    expect(hook.failurePolicy).toBe('Fail');
    expect(hook.matchPolicy).toBe('Equivalent');
    expect(hook.clientConfig.service).toEqual({ name: hookName, namespace: 'anchore-system', path: '/validate', port: 443 });
    expect(hook.objectSelector).toBeUndefined();
    // The defaults: Ignore (an unreachable operator must not stop the cluster) and 5 s.
    const defaults = webhookOf(await generated(['--set', 'admission.failurePolicy=Ignore', '--set', 'admission.timeoutSeconds=5']));
    expect([defaults.failurePolicy, defaults.timeoutSeconds]).toEqual(['Ignore', 5]);
    const values = parseYaml(readFileSync(join(chart, 'values.yaml'), 'utf8')) as { admission: Record<string, unknown> };
    expect(values.admission).toMatchObject({
      enabled: false,
      port: 9443,
      timeoutSeconds: 5,
      failurePolicy: 'Ignore',
      exemptNamespaces: ['kube-system'],
      registerUnknown: true,
      registration: { maxPerReview: 5, perNamespacePerMinute: 20, perMinute: 60, repositories: [] },
      shutdownDelaySeconds: 10,
      // Nobody may break glass until the admin says who.
      breakglass: { subjects: [] },
    });
  });

  it('when enabled, then the rules send Pods (and pods/ephemeralcontainers) and every kind that makes pods, on CREATE and UPDATE: each kind the operator reviews', async () => {
    const { rules } = webhookOf(await generated());
    expect(rules).toEqual([
      { apiGroups: [''], apiVersions: ['v1'], resources: ['pods', 'replicationcontrollers'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' },
      { apiGroups: [''], apiVersions: ['v1'], resources: ['pods/ephemeralcontainers'], operations: ['UPDATE'], scope: 'Namespaced' },
      { apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments', 'replicasets', 'statefulsets', 'daemonsets'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' },
      { apiGroups: ['batch'], apiVersions: ['v1'], resources: ['jobs', 'cronjobs'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' },
    ]);
    // Tied to the code: every kind src/admission parses a pod template out of is sent to it, and nothing else.
    const RESOURCE: Record<string, [string, string]> = {
      Pod: ['', 'pods'],
      Deployment: ['apps', 'deployments'],
      ReplicaSet: ['apps', 'replicasets'],
      StatefulSet: ['apps', 'statefulsets'],
      DaemonSet: ['apps', 'daemonsets'],
      Job: ['batch', 'jobs'],
      CronJob: ['batch', 'cronjobs'],
      ReplicationController: ['', 'replicationcontrollers'],
    };
    expect([...REVIEWED_KINDS].sort()).toEqual(Object.keys(RESOURCE).sort());
    for (const kind of REVIEWED_KINDS) {
      const [group, resource] = RESOURCE[kind] as [string, string];
      const rule = rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource));
      expect(`${kind}: ${rule?.operations.join(',')}`).toBe(`${kind}: CREATE,UPDATE`);
    }
    const covered = rules.flatMap((r) => r.resources);
    expect(covered.filter((r) => !Object.values(RESOURCE).some(([, res]) => res === r))).toEqual(['pods/ephemeralcontainers']);
  });

  it('when enabled, then the namespaceSelector keeps the release namespace and the plainly named exempt namespaces (kube-system) away from the webhook; globs are left to the operator', async () => {
    const selector = (objs: K8sObject[]) => webhookOf(objs).namespaceSelector;
    expect(selector(await generated([], 'ops'))).toEqual({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['ops', 'kube-system', 'kube-public'] }],
    });
    const objs = await generated([], 'ops');
    expect(settingsOf(objs)['ADMISSION_EXEMPT_NAMESPACES']).toBe('kube-system,kube-public,sandbox-*');
    // The default list; a duplicate of the release namespace is listed once.
    expect(selector(await generated(['--set-json', 'admission.exemptNamespaces=["kube-system","ops"]'], 'ops')).matchExpressions[0]?.values).toEqual(['ops', 'kube-system']);
    // None exempt: the release namespace still is, and the setting says so rather than falling back to kube-system.
    const none = await generated(['--set-json', 'admission.exemptNamespaces=[]'], 'ops');
    expect(selector(none).matchExpressions[0]?.values).toEqual(['ops']);
    expect(settingsOf(none)['ADMISSION_EXEMPT_NAMESPACES']).toBe('ops');
  });

  it('when enabled, then the settings reach the operator, which accepts them: ADMISSION_DEADLINE_MS stays below timeoutSeconds for every allowed timeout', async () => {
    const objs = await generated();
    const settings = settingsOf(objs);
    expect(settings).toMatchObject({
      ADMISSION_ENABLED: 'true',
      ADMISSION_PORT: '9443',
      ADMISSION_DEADLINE_MS: '8000',
      ADMISSION_REGISTER_UNKNOWN: 'true',
      ADMISSION_REGISTER_MAX_PER_REVIEW: '5',
      ADMISSION_REGISTER_NAMESPACE_PER_MINUTE: '20',
      ADMISSION_REGISTER_PER_MINUTE: '60',
      ADMISSION_SHUTDOWN_DELAY_SECONDS: '10',
      ANCHORE_IMAGES_REFRESH_SECONDS: '300',
    });
    // Empty: the operator's own default (any registry named by host name) applies.
    expect(settings['ADMISSION_REGISTER_REPOSITORIES']).toBeUndefined();
    const env = envOf(objs);
    expect(env['ADMISSION_CERT_FILE']?.value).toBe('/etc/anchore-operator/admission-tls/tls.crt');
    expect(env['ADMISSION_KEY_FILE']?.value).toBe('/etc/anchore-operator/admission-tls/tls.key');

    const tmp = mkdtempSync(join(tmpdir(), 'helm-admission-'));
    try {
      const secret = one<Data>(objs, 'Secret', `${hookName}-tls`);
      writeFileSync(join(tmp, 'tls.crt'), Buffer.from(secret.data['tls.crt'] as string, 'base64'));
      writeFileSync(join(tmp, 'tls.key'), Buffer.from(secret.data['tls.key'] as string, 'base64'));
      const operatorConfig = (data: Record<string, string>) =>
        loadConfig({
          ...data,
          ANCHORE_USERNAME: 'u',
          ANCHORE_PASSWORD: 'p',
          ADMISSION_CERT_FILE: join(tmp, 'tls.crt'),
          ADMISSION_KEY_FILE: join(tmp, 'tls.key'),
          POD_NAMESPACE: 'anchore-system',
        }).admission;
      expect(operatorConfig(settings)).toMatchObject({
        enabled: true,
        port: 9443,
        deadlineMs: 8000,
        exemptNamespaces: ['kube-system', 'kube-public', 'sandbox-*'],
        registerUnknown: true,
        registerLimits: { perReview: 5, perNamespacePerMinute: 20, perMinute: 60 },
        registerRepositories: [],
        shutdownDelayMs: 10_000,
        ownNamespace: 'anchore-system',
        tls: { certFile: join(tmp, 'tls.crt'), keyFile: join(tmp, 'tls.key') },
      });
      // Every value reaches the operator as given, zeros included (0 = admission registers nothing).
      const tuned = settingsOf(
        await generated([
          ...['maxPerReview=0', 'perNamespacePerMinute=7', 'perMinute=100'].flatMap((v) => ['--set', `admission.registration.${v}`]),
          ...['--set', 'admission.shutdownDelaySeconds=0', '--set', 'anchore.imagesRefreshSeconds=0'],
          ...['--set-json', 'admission.registration.repositories=["ghcr.io/acme/**","registry.example/team/*"]'],
          ...['--set-json', 'admission.trustedControllers=["system:kube-controller-manager","system:serviceaccount:argo:argo-rollouts"]'],
        ]),
      );
      const full = loadConfig({ ...tuned, ANCHORE_USERNAME: 'u', ANCHORE_PASSWORD: 'p', ADMISSION_CERT_FILE: join(tmp, 'tls.crt'), ADMISSION_KEY_FILE: join(tmp, 'tls.key') });
      expect(full.admission).toMatchObject({
        registerLimits: { perReview: 0, perNamespacePerMinute: 7, perMinute: 100 },
        registerRepositories: ['ghcr.io/acme/**', 'registry.example/team/*'],
        trustedControllers: ['system:kube-controller-manager', 'system:serviceaccount:argo:argo-rollouts'],
        shutdownDelayMs: 0,
      });
      expect(full.registration.imagesRefreshMs).toBe(0);
      // The chart's default list is the operator's: nothing is trusted that the operator would not trust by itself.
      expect(operatorConfig(settings).trustedControllers).toEqual(
        loadConfig({ ANCHORE_URL: 'https://a:8228', ANCHORE_USERNAME: 'u', ANCHORE_PASSWORD: 'p', CLUSTER_NAME: 'c' }).admission.trustedControllers,
      );
      for (const timeout of [2, 3, 4, 5, 6, 15, 30]) {
        const objsAt = await generated(['--set', `admission.timeoutSeconds=${timeout}`, '--set', 'admission.registerUnknown=false', '--set', 'admission.port=8443']);
        const deadline = Number(settingsOf(objsAt)['ADMISSION_DEADLINE_MS']);
        expect(webhookOf(objsAt).timeoutSeconds).toBe(timeout);
        // At least a second (or half the timeout) is left for TLS, the network and the answer.
        expect(deadline).toBeLessThanOrEqual(timeout * 1000 - Math.min(2000, timeout * 500));
        expect(deadline).toBeGreaterThanOrEqual(timeout * 500);
        expect(operatorConfig(settingsOf(objsAt))).toMatchObject({ deadlineMs: deadline, registerUnknown: false, port: 8443 });
        expect(container(objsAt).ports?.find((p) => p.name === 'webhook')?.containerPort).toBe(8443);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('when enabled with a generated certificate, then the caBundle is the generated CA, which signed a serving certificate the apiserver can verify for the Service name', async () => {
    const objs = await generated([], 'ops');
    const secret = one<Data>(objs, 'Secret', `${hookName}-tls`);
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const hook = webhookOf(objs);
    expect(hook.clientConfig.caBundle).toBe(secret.data['ca.crt']);
    const pem = (k: string): string => Buffer.from(secret.data[k] as string, 'base64').toString();
    const ca = new X509Certificate(pem('ca.crt'));
    const cert = new X509Certificate(pem('tls.crt'));
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    for (const host of [`${hookName}.ops.svc`, `${hookName}.ops.svc.cluster.local`, `${hookName}.ops`]) expect(cert.checkHost(host)).toBe(host);
    expect(cert.checkHost(`${hookName}.other.svc`)).toBeUndefined();

    // A TLS handshake as the apiserver makes it: trusting only the caBundle, verifying the Service's DNS name.
    const server = createServer({ cert: pem('tls.crt'), key: pem('tls.key') }, (s) => s.end());
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const port = (server.address() as { port: number }).port;
      const handshake = (servername: string) =>
        new Promise<string>((res) => {
          const sock = connect({ host: '127.0.0.1', port, servername, ca: Buffer.from(hook.clientConfig.caBundle as string, 'base64').toString() }, () => {
            res('verified');
            sock.end();
          });
          sock.on('error', (err: NodeJS.ErrnoException) => res(err.code ?? err.message));
        });
      expect(await handshake(`${hookName}.ops.svc`)).toBe('verified');
      expect(await handshake('anchore.example')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      await new Promise((res) => server.close(res));
    }

    // The pods mount exactly that Secret, read-only, and roll when it changes.
    const d = one<DeploymentObject>(objs, 'Deployment');
    const c = container(objs);
    expect(c.volumeMounts?.find((m) => m.name === 'admission-tls')).toEqual({ name: 'admission-tls', mountPath: '/etc/anchore-operator/admission-tls', readOnly: true });
    expect(d.spec.template.spec.volumes?.find((v) => v.name === 'admission-tls')?.secret).toMatchObject({
      secretName: `${hookName}-tls`,
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ],
    });
    expect(d.spec.template.metadata.annotations?.['checksum/admission-tls']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('when enabled, then the webhook Service selects every replica (not only the leader), the NetworkPolicy lets the apiserver in, and RBAC gains only SubjectAccessReviews', async () => {
    const objs = await generated();
    const svc = one<K8sObject & { spec: { type: string; selector: Record<string, string>; ports: unknown[] } }>(objs, 'Service', hookName);
    expect(svc.spec.selector).toEqual(one<DeploymentObject>(objs, 'Deployment').spec.selector.matchLabels);
    expect(svc.spec.type).toBe('ClusterIP');
    expect(svc.spec.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP', appProtocol: 'https' }]);
    const np = one<K8sObject & { spec: { ingress: Array<{ ports: unknown[]; from?: unknown[] }> } }>(objs, 'NetworkPolicy');
    expect(np.spec.ingress).toContainEqual({ ports: [{ port: 'webhook', protocol: 'TCP' }] });
    const narrowed = one<typeof np>(await generated(['--set-json', 'networkPolicy.ingress.webhookFrom=[{"ipBlock":{"cidr":"10.0.0.0/24"}}]']), 'NetworkPolicy');
    expect(narrowed.spec.ingress).toContainEqual({ ports: [{ port: 'webhook', protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.0.0.0/24' } }] });
    // Admission answers from the caches and records Events with the rules the operator already has; it only asks the
    // apiserver whether a user breaking glass may.
    expect(clusterRoleRules(objs)).toEqual([...BASE_RULES, ACCESS_REVIEW_RULE]);
  });

  it('when enabled, then the pod gets shutdownDelaySeconds on top of terminationGracePeriodSeconds, so the hand-off and the drain both fit before SIGKILL', async () => {
    const grace = async (args: string[], file = 'admission-values.yaml') =>
      one<DeploymentObject>(await render([...ciValues(file), ...args]), 'Deployment').spec.template.spec.terminationGracePeriodSeconds;
    expect(await grace([])).toBe(40);
    expect(await grace(['--set', 'admission.shutdownDelaySeconds=25', '--set', 'terminationGracePeriodSeconds=45', '--set', 'shutdownDrainSeconds=40'])).toBe(70);
    expect(await grace(['--set', 'admission.shutdownDelaySeconds=0'])).toBe(30);
    // Without admission there is no hand-off to wait for.
    expect(await grace(['--set', 'admission.shutdownDelaySeconds=25'], 'default-values.yaml')).toBe(30);
    // However the values are set, the grace period covers the drain and the hand-off one after the other.
    for (const [delay, drain, period] of [
      [10, 20, 30],
      [0, 0, 1],
      [600, 600, 601],
      [3, 29, 30],
    ] as const) {
      const objs = await generated(['--set', `admission.shutdownDelaySeconds=${delay}`, '--set', `shutdownDrainSeconds=${drain}`, '--set', `terminationGracePeriodSeconds=${period}`]);
      const s = settingsOf(objs);
      const total = Number(s['ADMISSION_SHUTDOWN_DELAY_SECONDS']) + Number(s['SHUTDOWN_DRAIN_SECONDS']);
      expect(one<DeploymentObject>(objs, 'Deployment').spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(total);
    }
  });

  it('when enabled, then the ClusterRole <fullname>-breakglass grants exactly the permission the operator checks, and is bound to nobody unless admission.breakglass.subjects names someone', async () => {
    const objs = await generated(['--set-json', 'admission.breakglass.subjects=[]']);
    expect(clusterRoleRules(objs, 'rel-anchore-operator-breakglass')).toEqual([BREAKGLASS_RULE]);
    const role = one(objs, 'ClusterRole', 'rel-anchore-operator-breakglass');
    // Not aggregated into admin/edit/view: holding a namespace's admin role must not be enough.
    expect(Object.keys(role.metadata.labels ?? {}).filter((k) => k.startsWith('rbac.authorization.k8s.io/aggregate'))).toEqual([]);
    expect(role['aggregationRule']).toBeUndefined();
    // Bound to nobody, and nothing else in the chart grants it.
    expect(objs.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding').map((o) => (o['roleRef'] as { name: string }).name)).not.toContain('rel-anchore-operator-breakglass');
    for (const r of objs.filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && o.metadata.name !== 'rel-anchore-operator-breakglass')) {
      expect((r as unknown as { rules: Rule[] }).rules.filter((rule) => rule.resources?.includes('breakglass'))).toEqual([]);
    }

    const subjects = [
      { kind: 'Group', name: 'sre-oncall', apiGroup: 'rbac.authorization.k8s.io' },
      { kind: 'User', name: 'alice@example.com' },
      { kind: 'ServiceAccount', name: 'incident-bot', namespace: 'ops' },
    ];
    const bound = await generated(['--set-json', `admission.breakglass.subjects=${JSON.stringify(subjects)}`]);
    const binding = one<K8sObject & { roleRef: unknown; subjects: unknown }>(bound, 'ClusterRoleBinding', 'rel-anchore-operator-breakglass');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rel-anchore-operator-breakglass' });
    expect(binding.subjects).toEqual(subjects);
    // Without RBAC from the chart, nothing of it; without admission, nothing to break.
    const noRbac = await generated(['--set', 'rbac.create=false', '--set-json', `admission.breakglass.subjects=${JSON.stringify(subjects)}`]);
    expect(noRbac.filter((o) => o.metadata.name === 'rel-anchore-operator-breakglass')).toEqual([]);
    const off = await render([...ciValues('default-values.yaml'), '--set-json', `admission.breakglass.subjects=${JSON.stringify(subjects)}`]);
    expect(off.filter((o) => o.metadata.name === 'rel-anchore-operator-breakglass')).toEqual([]);
  });

  it('when the certificate comes from cert-manager, then a Certificate for the Service names is rendered, its CA is injected by annotation, and the chart generates no Secret and no caBundle', async () => {
    const objs = await generated(
      ['--set', 'admission.tls.certManager.enabled=true', '--set', 'admission.tls.certManager.issuerRef.name=cluster-ca', '--set', 'admission.tls.certManager.issuerRef.kind=ClusterIssuer'],
      'ops',
    );
    const cert = one<K8sObject & { spec: Record<string, unknown> }>(objs, 'Certificate');
    expect(cert.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.metadata).toMatchObject({ name: hookName, namespace: 'ops' });
    expect(cert.spec).toEqual({
      secretName: `${hookName}-cert-manager-tls`,
      dnsNames: [hookName, `${hookName}.ops`, `${hookName}.ops.svc`, `${hookName}.ops.svc.cluster.local`],
      duration: '2160h',
      issuerRef: { name: 'cluster-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
    const config = one<WebhookConfiguration>(objs, 'ValidatingWebhookConfiguration');
    expect(config.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `ops/${hookName}` });
    expect(webhookOf(objs).clientConfig.caBundle).toBeUndefined();
    expect(objs.filter((o) => o.kind === 'Secret')).toEqual([]);
    const d = one<DeploymentObject>(objs, 'Deployment');
    expect(d.spec.template.spec.volumes?.find((v) => v.name === 'admission-tls')?.secret?.secretName).toBe(`${hookName}-cert-manager-tls`);
    expect(Object.keys(d.spec.template.metadata.annotations ?? {})).not.toContain('checksum/admission-tls');
  });

  it('when the certificate is an existing Secret, then the pods mount it, the caBundle is the one given, and nothing is generated', async () => {
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    const objs = await generated(['--set', 'admission.tls.existingSecret=my-webhook-tls', '--set', `admission.tls.caBundle=${caBundle}`]);
    expect(webhookOf(objs).clientConfig.caBundle).toBe(caBundle);
    expect(objs.filter((o) => o.kind === 'Secret' || o.kind === 'Certificate')).toEqual([]);
    expect(one<WebhookConfiguration>(objs, 'ValidatingWebhookConfiguration').metadata.annotations).toBeUndefined();
    const d = one<DeploymentObject>(objs, 'Deployment');
    expect(d.spec.template.spec.volumes?.find((v) => v.name === 'admission-tls')?.secret?.secretName).toBe('my-webhook-tls');
    expect(Object.keys(d.spec.template.metadata.annotations ?? {})).not.toContain('checksum/admission-tls');
  });

  it('when enabled, then NOTES.txt says where the webhook is, how it fails and how to try it with a dry run', async () => {
    // crds.install=false: even a dry-run install refuses CRDs that exist in the cluster without this release's labels.
    const notes = (file: string) => helmRaw(['install', 'rel', chart, '--namespace', 'ops', '--dry-run=client', '--set', 'crds.install=false', ...ciValues(file)]);
    const r = await notes('admission-values.yaml');
    expect(withoutKubeconfigWarning(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ValidatingWebhookConfiguration rel-anchore-operator');
    expect(r.stdout).toContain(`https://${hookName}.ops.svc/validate`);
    expect(r.stdout).toContain('failurePolicy Fail, timeout 10s; never called in: ops, kube-system, kube-public.');
    expect(r.stdout).toContain('--dry-run=server');
    expect(r.stdout).toContain('ClusterRole rel-anchore-operator-breakglass');
    const off = await notes('default-values.yaml');
    expect(off.code).toBe(0);
    expect(off.stdout).not.toContain('Admission webhook');
  });
});

describe('Helm chart against the real apiserver', () => {
  const ns = uniqueName('helm');
  /** Workloads for the operator to find; apart from ns, whose restricted Pod Security would refuse the test pods. */
  const appNs = uniqueName('helm-app');
  const release = uniqueName('ao');
  const fullname = `${release}-anchore-operator`;
  const sa = `system:serviceaccount:${ns}:${fullname}`;
  const readerBinding = `${fullname}-reader-test`;
  const tmp = mkdtempSync(join(tmpdir(), 'helm-chart-test-'));
  const SIM_PASSWORD = 'helm-chart-test-pw-3c1e';
  let sim: AnchoreSimulator;
  let installed = false;

  beforeAll(async () => {
    await ensureCrds();
    // The restricted Pod Security Standard is enforced here: the Deployment's pods are only created if they comply.
    await apply(namespaceManifest(ns, { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' }));
    await apply(namespaceManifest(appNs));
    sim = await startSimulator({ config: { accounts: [{ name: 'admin', users: [{ username: 'admin', password: SIM_PASSWORD }] }] } });
  });
  afterAll(async () => {
    await sim?.stop();
    if (installed) await helmRaw(['uninstall', release, '--namespace', ns, '--wait=false']);
    await kubectlRaw(['delete', 'clusterrolebinding', readerBinding, '--ignore-not-found']);
    await kubectl(['delete', 'namespace', ns, appNs, '--wait=false', '--ignore-not-found']);
    rmSync(tmp, { recursive: true, force: true });
  });

  it.each(CI_VALUES)('when the manifests rendered with ci/%s are applied with --dry-run=server, then the apiserver accepts every one', async (file) => {
    const objs = await render(ciValues(file), ns);
    const serverChecked = objs.filter((o) => !NOT_SERVER_CHECKED.has(o.kind));
    expect(serverChecked.length).toBeGreaterThan(10);
    const r = await kubectlRaw(
      ['apply', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=helm-chart-test', '--validate=strict', '-f', '-'],
      serverChecked.map((o) => stringify(o)).join('---\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(serverChecked.length);
  });

  // Only ever --dry-run=server: a webhook configuration really registered here would intercept the pods of every
  // other suite sharing this cluster.
  it.each([
    ['a generated', []],
    ['a cert-manager', ['--set', 'admission.tls.certManager.enabled=true', '--set', 'admission.tls.certManager.issuerRef.name=ca']],
    [
      'an existing Secret',
      ['--set', 'admission.tls.existingSecret=hook-tls', '--set', `admission.tls.caBundle=${Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64')}`],
    ],
  ])('when the ValidatingWebhookConfiguration with %s certificate is applied with --dry-run=server, then the apiserver accepts it and nothing is registered', async (_mode, args) => {
    const objs = await render([...ciValues('admission-values.yaml'), ...args], ns);
    const config = one<WebhookConfiguration>(objs, 'ValidatingWebhookConfiguration');
    const r = await kubectlRaw(['apply', '--dry-run=server', '--validate=strict', '-o', 'json', '-f', '-'], stringify(config));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // What the apiserver would store: our webhook, with its defaults filled in and nothing of ours dropped.
    const stored = JSON.parse(r.stdout) as WebhookConfiguration;
    expect(stored.webhooks[0]).toMatchObject(config.webhooks[0] as Webhook);
    expect((await kubectlRaw(['get', 'validatingwebhookconfiguration', config.metadata.name])).stderr).toMatch(/NotFound/);
  });

  it('when the generated webhook Secret already exists, then a render against the cluster reuses it and its CA (lookup), so an upgrade neither rotates the certificate nor breaks the caBundle', async () => {
    const args = ['--namespace', ns, '--dry-run=server', ...ciValues('admission-values.yaml')];
    const first = await render(ciValues('admission-values.yaml'), ns);
    const secret = one<Data>(first, 'Secret', 'rel-anchore-operator-webhook-tls');
    await apply(stringify(secret));
    try {
      const again = async (): Promise<K8sObject[]> => {
        const r = await helmRaw(['template', 'rel', chart, ...args]);
        expect(withoutKubeconfigWarning(r.stderr)).toBe('');
        return parseAllDocuments(r.stdout)
          .map((d) => d.toJSON() as K8sObject)
          .filter(Boolean);
      };
      for (const objs of [await again(), await again()]) {
        expect(one<Data>(objs, 'Secret', 'rel-anchore-operator-webhook-tls').data).toEqual(secret.data);
        expect(webhookOf(objs).clientConfig.caBundle).toBe(secret.data['ca.crt']);
        const annotations = (o: K8sObject[]) => one<DeploymentObject>(o, 'Deployment').spec.template.metadata.annotations ?? {};
        expect(annotations(objs)['checksum/admission-tls']).toBe(annotations(first)['checksum/admission-tls']);
      }
      // Without the Secret (offline, or a first install) a new CA is made each time.
      expect(webhookOf(await render(ciValues('admission-values.yaml'), ns)).clientConfig.caBundle).not.toBe(secret.data['ca.crt']);
    } finally {
      await kubectlRaw(['delete', 'secret', 'rel-anchore-operator-webhook-tls', '-n', ns, '--ignore-not-found']);
    }
  });

  it('when installed, then the pods pass the restricted Pod Security Standard, become available, and upgrades keep the generated metrics certificate', async () => {
    await kubectl(['create', 'secret', 'generic', 'anchore-operator-credentials', '-n', ns, '--from-literal=username=admin', `--from-literal=password=${SIM_PASSWORD}`]);
    const args = [...ciValues('default-values.yaml'), '--set', 'crds.install=false', '--set', 'metrics.secure=true', '--namespace', ns];
    const install = await helmRaw(['install', release, chart, ...args]);
    expect(withoutKubeconfigWarning(install.stderr)).toBe('');
    expect(install.code).toBe(0);
    installed = true;
    expect(install.stdout).toContain(`kubectl -n ${ns} rollout status deployment/${fullname}`);
    // Admission is off by default: the install registered no webhook.
    expect((await getJson<{ items: unknown[] }>(['validatingwebhookconfigurations', '-l', `app.kubernetes.io/instance=${release}`])).items).toEqual([]);
    // Pod Security admission let both pods in. Under kwok they also become available; a real cluster (kind) has no
    // operator image to pull yet, so there only admission is checked.
    await eventually(async () => (await getJson<{ items: unknown[] }>(['pods', '-n', ns, '-l', `app.kubernetes.io/instance=${release}`])).items.length === 2, 60_000, 500);
    if (testCluster().kind === 'local') {
      await eventually(async () => (await getJson<{ status?: { availableReplicas?: number } }>(['deployment', fullname, '-n', ns])).status?.availableReplicas === 2, 60_000, 500);
    }

    const before = await getJson<{ data: Record<string, string> }>(['secret', `${fullname}-metrics-tls`, '-n', ns]);
    const template = async () => (await getJson<DeploymentObject>(['deployment', fullname, '-n', ns])).spec.template.metadata.annotations ?? {};
    const annotationsBefore = await template();
    expect((await helmRaw(['upgrade', release, chart, ...args])).code).toBe(0);
    const after = await getJson<{ data: Record<string, string> }>(['secret', `${fullname}-metrics-tls`, '-n', ns]);
    expect(after.data['tls.crt']).toBe(before.data['tls.crt']);
    expect(await template()).toEqual(annotationsBefore);

    expect((await helmRaw(['upgrade', release, chart, ...args, '--set', 'logLevel=debug'])).code).toBe(0);
    const changed = await template();
    expect(changed['checksum/config']).not.toBe(annotationsBefore['checksum/config']);
    expect(changed['checksum/metrics-tls']).toBe(annotationsBefore['checksum/metrics-tls']);
  });

  it.each([
    ['list pods across namespaces', 'yes', ['list', 'pods', '-A']],
    ['watch clusteranchorepolicybindings', 'yes', ['watch', 'clusteranchorepolicybindings.anchore.io']],
    ['patch binding status', 'yes', ['patch', 'anchorepolicybindings.anchore.io', '--subresource=status', '-A']],
    ['create TokenReviews (metrics.secure)', 'yes', ['create', 'tokenreviews.authentication.k8s.io']],
    ['update its own Lease', 'yes', ['update', 'leases.coordination.k8s.io/{lease}', '-n', '{ns}']],
    ['get any Secret', 'no', ['get', 'secrets', '-A']],
    ['get a single pod', 'no', ['get', 'pods', '-A']],
    ['delete pods', 'no', ['delete', 'pods', '-A']],
    ['update bindings themselves', 'no', ['update', 'anchorepolicybindings.anchore.io', '-A']],
    ['update another Lease in its namespace', 'no', ['update', 'leases.coordination.k8s.io/someone-else', '-n', '{ns}']],
    ['create a Lease in another namespace', 'no', ['create', 'leases.coordination.k8s.io', '-n', 'default']],
  ])('when the installed ServiceAccount asks to %s, then RBAC says %s', async (_what, answer, args) => {
    const r = await kubectlRaw(['auth', 'can-i', ...args.map((a) => a.replace('{ns}', ns).replace('{lease}', fullname)), `--as=${sa}`]);
    expect(r.stdout.trim()).toBe(answer);
  });

  it('when the breakglass ClusterRole is bound to admission.breakglass.subjects, then the SubjectAccessReview the operator makes allows exactly them, in any namespace', async () => {
    const group = uniqueName('breakglass-oncall');
    const objs = await render([...ciValues('admission-values.yaml'), '--set-json', `admission.breakglass.subjects=${JSON.stringify([{ kind: 'Group', name: group }])}`], ns, release);
    const rbac = objs.filter((o) => o.metadata.name === `${fullname}-breakglass`);
    expect(rbac.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding']);
    await apply(rbac.map((o) => stringify(o)).join('---\n'));
    try {
      /** What src/admission/trust.ts asks: `use` on breakglass.anchore.io in the namespace, for the request's user. */
      const mayBreakGlass = async (user: string, groups: string[], namespace: string): Promise<boolean> => {
        const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user, groups, resourceAttributes: { ...BREAKGLASS_ACCESS, namespace } } };
        const out = JSON.parse(await kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(review))) as { status?: { allowed?: boolean } };
        return out.status?.allowed === true;
      };
      // RBAC changes reach the authorizer through its informers: wait for the binding to count.
      await eventually(() => mayBreakGlass('dana', [group, 'system:authenticated'], appNs), 15_000, 200);
      expect(await mayBreakGlass('dana', [group, 'system:authenticated'], 'default')).toBe(true);
      expect(await mayBreakGlass('eve', ['system:authenticated'], appNs)).toBe(false);
      // The operator's own ServiceAccount may not break glass either: only reviews it.
      expect(await mayBreakGlass(sa, ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'], appNs)).toBe(false);
    } finally {
      await kubectlRaw(['delete', 'clusterrolebinding,clusterrole', `${fullname}-breakglass`, '--ignore-not-found']);
    }
  });

  it("when the operator runs with the chart's ServiceAccount token and settings, then it leads, registers images, writes binding status and serves authorized HTTPS metrics without a Forbidden", async () => {
    const server = (await kubectl(['config', 'view', '--raw', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])).trim();
    const caData = (await kubectl(['config', 'view', '--raw', '--minify', '-o', 'jsonpath={.clusters[0].cluster.certificate-authority-data}'])).trim();
    const caFile = (await kubectl(['config', 'view', '--raw', '--minify', '-o', 'jsonpath={.clusters[0].cluster.certificate-authority}'])).trim();
    const token = (await kubectl(['create', 'token', fullname, '-n', ns, '--duration=1h'])).trim();
    const kubeconfig = join(tmp, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server, ...(caData ? { 'certificate-authority-data': caData } : { 'certificate-authority': caFile }) } }],
        users: [{ name: 'sa', user: { token } }],
        contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa' } }],
        'current-context': 'sa',
      }),
    );
    // The files the pod would mount: the password from the credentials Secret, the generated metrics certificate.
    const tls = await getJson<{ data: Record<string, string> }>(['secret', `${fullname}-metrics-tls`, '-n', ns]);
    for (const [key, file] of [
      ['tls.crt', 'tls.crt'],
      ['tls.key', 'tls.key'],
      ['ca.crt', 'ca.crt'],
    ] as const) {
      writeFileSync(join(tmp, file), Buffer.from(tls.data[key] as string, 'base64'));
    }
    writeFileSync(join(tmp, 'password'), `${SIM_PASSWORD}\n`);
    const settings = (await getJson<{ data: Record<string, string> }>(['configmap', fullname, '-n', ns])).data;
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      ...settings,
      // What differs outside a pod: Anchore is the simulator, the servers bind to loopback on free ports, the scope
      // is this suite's namespace (the cluster is shared), and the kubeconfig carries the ServiceAccount token.
      ANCHORE_URL: sim.url,
      BIND_ADDRESS: '127.0.0.1',
      HEALTH_PORT: '0',
      METRICS_PORT: '0',
      NAMESPACES_INCLUDE: `${ns},${appNs}`,
      CLUSTER_NAME: uniqueName('helm'),
      KUBECONFIG: kubeconfig,
      POD_NAME: 'chart-test-pod',
      POD_NAMESPACE: ns,
      ANCHORE_USERNAME: 'admin',
      ANCHORE_PASSWORD_FILE: join(tmp, 'password'),
      METRICS_CERT_FILE: join(tmp, 'tls.crt'),
      METRICS_KEY_FILE: join(tmp, 'tls.key'),
      INVENTORY_DEBOUNCE_MS: '200',
      LOG_LEVEL: 'debug',
    };
    expect(settings['LEADER_ELECTION_ID']).toBe(fullname);
    expect(settings['METRICS_SECURE']).toBe('true');
    const child: ChildProcess = spawn(process.execPath, [join(root, 'src', 'main.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: string[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const port = async (msg: string): Promise<number> => {
      const line = await eventually(
        () =>
          out
            .join('')
            .split('\n')
            .find((l) => l.includes(msg)),
        30_000,
      );
      return (JSON.parse(line) as { port: number }).port;
    };
    try {
      const healthPort = await port('health server listening');
      await eventually(async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200, 30_000, 200);

      // The Role: this replica took the Lease the chart named.
      const lease = await eventually(async () => (await getJson<{ spec?: { holderIdentity?: string } }>(['lease', fullname, '-n', ns])).spec?.holderIdentity, 30_000, 250);
      expect(lease).toMatch(/^chart-test-pod/);

      // The ClusterRole: pods are seen and their images registered; a binding's status is written.
      await apply(deployment(appNs, 'web', 1, [{ name: 'web', image: 'nginx:1.27' }]));
      const [pod] = await waitForRunningPods(appNs, 'app=web', 1);
      const digest = digestOf(pod?.containers[0]?.imageID ?? '');
      await eventually(() => sim.images('admin').some((i) => i.image_digest === digest), 30_000, 250);
      await apply(JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name: 'all', namespace: appNs }, spec: { mode: 'analyze' } }));
      await eventually(async () => ((await getJson<{ status?: { conditions?: unknown[] } }>(['apb', 'all', '-n', appNs])).status?.conditions ?? []).length > 0, 30_000, 250);

      // metrics.secure: the generated certificate verifies for the Service name; a token bound to the
      // <fullname>-metrics-reader ClusterRole may scrape, another may not, and no token is turned away.
      const metricsPort = await port('metrics server listening');
      await kubectl(['create', 'serviceaccount', 'reader', '-n', ns]);
      await kubectl(['create', 'serviceaccount', 'stranger', '-n', ns]);
      await kubectl(['create', 'clusterrolebinding', readerBinding, `--clusterrole=${fullname}-metrics-reader`, `--serviceaccount=${ns}:reader`]);
      const host = `${fullname}-metrics.${ns}.svc`;
      const curl = async (bearer?: string): Promise<string> => {
        const r = await run('curl', [
          '-sS',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--cacert',
          join(tmp, 'ca.crt'),
          '--resolve',
          `${host}:${metricsPort}:127.0.0.1`,
          ...(bearer ? ['-H', `Authorization: Bearer ${bearer}`] : []),
          `https://${host}:${metricsPort}/metrics`,
        ]);
        if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
        return r.stdout;
      };
      const readerToken = (await kubectl(['create', 'token', 'reader', '-n', ns])).trim();
      const strangerToken = (await kubectl(['create', 'token', 'stranger', '-n', ns])).trim();
      await eventually(async () => (await curl(readerToken)) === '200', 15_000, 250);
      expect(await curl(strangerToken)).toBe('403');
      expect(await curl()).toBe('401');

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const log = out.join('');
      // A KubeApiError reads "<METHOD> <path>: 403 Forbidden: …": no apiserver call was denied.
      expect(log).not.toMatch(/: 403 Forbidden/);
      for (const secret of [readerToken, strangerToken, token]) expect(log).not.toContain(secret);
      expect(log).not.toContain(SIM_PASSWORD);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
