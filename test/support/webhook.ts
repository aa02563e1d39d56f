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
