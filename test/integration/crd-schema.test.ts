import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REEVALUATE_NOT_A_DURATION } from '../../src/crds/schema.ts';
import { apply, ensureCrds, eventually, kubectl, kubectlRaw, namespaceManifest, uniqueName } from '../support/k8s.ts';

/*
 * What a user reads from the apiserver about the binding CRDs: kubectl explain, and the messages of a rejected spec.
 * No operator: the apiserver alone judges these, from deploy/crds (generated from src/crds/schema.ts).
 */
const apb = (ns: string, name: string, spec: Record<string, unknown>): string =>
  JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'AnchorePolicyBinding', metadata: { name, namespace: ns }, spec });

describe('binding CRDs as the apiserver serves them (real cluster)', () => {
  const ns = uniqueName('crd');
  beforeAll(async () => {
    await ensureCrds();
    await apply(namespaceManifest(ns));
  });
  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  });

  it.each(['anchorepolicybindings', 'clusteranchorepolicybindings'])(
    'when a user runs kubectl explain %s.status.conditions, then it lists Ready, Reconciling, Stalled and Compliant and what each means',
    async (plural) => {
      // The OpenAPI document is published asynchronously after a CRD change: wait for this text.
      const out = await eventually(
        async () => {
          const text = await kubectl(['explain', `${plural}.status.conditions`]);
          return text.includes('Compliant') ? text : undefined;
        },
        30_000,
        500,
      );
      const flat = out.replace(/\s+/g, ' ');
      expect(flat).toContain('Ready: True when every covered image has been evaluated');
      expect(flat).toContain('Reconciling: present (True) only while work is under way or retried');
      expect(flat).toContain('Stalled: present (True) only when the operator cannot go on until something changes: PolicyNotFound');
      expect(flat).toContain('Compliant (mode evaluate only): the policy verdict');
      expect(flat).toContain('True (PolicyPassed)');
      expect(flat).toContain('False (PolicyFailed, EvaluationErrors)');
    },
  );

  it.each(['1d', 'daily', '1h30', '-5m'])('when reevaluateInterval is %s (no Go duration), then kubectl apply is refused with one clear message, not a second CEL type error', async (interval) => {
    const r = await kubectlRaw(['apply', '-f', '-'], apb(ns, uniqueName('interval'), { reevaluateInterval: interval }));
    expect(r.code).not.toBe(0);
    const said = r.stderr.trim();
    expect(said).toContain('spec.reevaluateInterval');
    expect(said).toContain(REEVALUATE_NOT_A_DURATION);
    // One error: kubectl lists several as "* field: …" bullets; the confusing one was a CEL type-conversion error.
    expect(said.match(/Invalid value/g)).toHaveLength(1);
    expect(said).not.toContain('type conversion');
    expect(said).not.toContain('should match');
  });

  it('when reevaluateInterval is a duration below 1m, then the one message is the minimum', async () => {
    const r = await kubectlRaw(['apply', '-f', '-'], apb(ns, uniqueName('interval'), { reevaluateInterval: '30s' }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('reevaluateInterval must be at least 1m');
    expect(r.stderr.match(/Invalid value/g)).toHaveLength(1);
    expect(r.stderr).not.toContain(REEVALUATE_NOT_A_DURATION);
  });

  it.each(['1m', '90s', '1h30m', '24h', '1.5h'])('when reevaluateInterval is %s, then the apiserver accepts it', async (interval) => {
    const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], apb(ns, uniqueName('interval'), { reevaluateInterval: interval }));
    expect({ interval, code: r.code, stderr: r.stderr }).toEqual({ interval, code: 0, stderr: '' });
  });
});
