/** A ValidatingWebhookConfiguration that sends the named namespaces' reviews to the operator at host:port. */

interface Rule {
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  operations: string[];
  scope: 'Namespaced';
}

export const webhookRule = (apiGroups: string[], resources: string[], operations = ['CREATE', 'UPDATE']): Rule => ({ apiGroups, apiVersions: ['v1'], resources, operations, scope: 'Namespaced' });

/**
 * Fails closed after 5 s, does nothing on dry runs (NoneOnDryRun), and by default reviews Pod creates at 127.0.0.1
 * under the hook name pods.admission.anchore.io.
 */
export function webhookConfiguration(o: { name: string; port: number; caPem: string; namespaces: string[]; host?: string; hookName?: string; rules?: Rule[] }): unknown {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: o.name },
    webhooks: [
      {
        name: o.hookName ?? 'pods.admission.anchore.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'NoneOnDryRun',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        matchPolicy: 'Equivalent',
        clientConfig: { url: `https://${o.host ?? '127.0.0.1'}:${o.port}/validate`, caBundle: Buffer.from(o.caPem).toString('base64') },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: o.namespaces }] },
        rules: o.rules ?? [webhookRule([''], ['pods'], ['CREATE'])],
      },
    ],
  };
}

/** What the apiserver says when the operator's workloads webhook denies a request. */
export const DENIED_BY_WEBHOOK = 'admission webhook "workloads.admission.anchore.io" denied the request';

/** The rules the chart registers: every kind whose objects make pods, and kubectl debug's subresource. */
export const WORKLOAD_RULES: Rule[] = [
  webhookRule([''], ['pods', 'replicationcontrollers']),
  webhookRule([''], ['pods/ephemeralcontainers'], ['UPDATE']),
  webhookRule(['apps'], ['deployments', 'replicasets', 'statefulsets', 'daemonsets']),
  webhookRule(['batch'], ['jobs', 'cronjobs']),
];

/**
 * Where the apiserver reaches a webhook the suite serves in-process: 127.0.0.1 on the local control plane, or
 * ADMISSION_TEST_HOST (an address of this machine the cluster can reach, e.g. kind's docker gateway; required with
 * USE_EXISTING_CLUSTER, see test/e2e/README.md). `listenEnv` and `tlsIps` make the operator listen and certify there.
 */
export function webhookTarget(suite: string): { host: string; listenEnv: Record<string, string>; tlsIps: string[] } {
  const testHost = process.env['ADMISSION_TEST_HOST'];
  if (process.env['USE_EXISTING_CLUSTER'] === 'true' && !testHost) {
    throw new Error(`${suite} suite: set ADMISSION_TEST_HOST to an IP of this machine the cluster apiserver can reach (on kind: the docker network gateway, e.g. 172.18.0.1); see test/e2e/README.md`);
  }
  return testHost ? { host: testHost, listenEnv: { BIND_ADDRESS: '0.0.0.0' }, tlsIps: [testHost] } : { host: '127.0.0.1', listenEnv: {}, tlsIps: [] };
}

/** The workloads webhook (the chart's hook name) for the named namespaces, as JSON for `kubectl apply`. */
export function workloadsWebhook(o: { name: string; port: number; caPem: string; namespaces: string[]; host: string; rules?: Rule[] }): string {
  return JSON.stringify(webhookConfiguration({ ...o, hookName: 'workloads.admission.anchore.io', rules: o.rules ?? WORKLOAD_RULES }));
}

/** An AnchorePolicyBinding manifest, as JSON for `kubectl apply`. */
export const policyBinding = (ns: string, name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name, namespace: ns }, spec });
