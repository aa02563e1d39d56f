import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AnchoreSimulator, startSimulator } from '../anchore-sim/index.ts';
import { apply, deployment, digestOf, eventually, getJson, kubectl, namespaceManifest, uniqueName, waitForRunningPods } from '../support/k8s.ts';
import { type TestOperator, operatorEnv, startTestOperator } from '../support/operator.ts';
import { type Sample, scrape } from '../support/prometheus.ts';

/*
 * Events about a ClusterAnchorePolicyBinding, with the operator installed the way the Helm chart runs it: in its own
 * namespace (POD_NAMESPACE from the downward API). The apiserver accepts Events about cluster-scoped objects only in
 * namespace default; the operator used to put them in its own namespace, where every one was refused (422).
 */
describe('Events about cluster-scoped bindings (real cluster)', () => {
  let sim: AnchoreSimulator;
  let operator: TestOperator;
  const home = uniqueName('op-home');
  const ns = uniqueName('cev');
  const capb = uniqueName('capb-ev');

  beforeAll(async () => {
    sim = await startSimulator({ config: { analysis: { queued_ms: 20, analyzing_ms: 50 } } });
    await apply(namespaceManifest(home));
    await apply(namespaceManifest(ns, { tier: capb }));
    await apply(deployment(ns, 'web', 1, [{ name: 'web', image: 'nginx:1.27' }]));
    const [pod] = await waitForRunningPods(ns, 'app=web', 1);
    sim.setVerdict(digestOf(pod?.containers[0]?.imageID ?? '') ?? '', { status: 'fail', final_action: 'stop', findings: 1 });
    operator = await startTestOperator(operatorEnv(sim.url, { CLUSTER_NAME: uniqueName('cev'), NAMESPACES_INCLUDE: ns, POD_NAMESPACE: home }));
  });
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await kubectl(['delete', 'clusteranchorepolicybinding', capb, '--ignore-not-found', '--wait=false']);
    await kubectl(['delete', 'namespace', ns, home, '--wait=false', '--ignore-not-found']);
  });

  it('when a cluster binding fails, then its Event is recorded in namespace default and none is refused', async () => {
    await apply(JSON.stringify({ apiVersion: 'anchore.io/v1alpha1', kind: 'ClusterAnchorePolicyBinding', metadata: { name: capb }, spec: { namespaceSelector: { matchLabels: { tier: capb } } } }));
    type Ev = { reason: string; type: string; regarding: { kind: string; name: string } };
    const ev = await eventually(
      async () => {
        const list = await getJson<{ items: Ev[] }>(['events.events.k8s.io', '-n', 'default']);
        return list.items.find((e) => e.regarding.kind === 'ClusterAnchorePolicyBinding' && e.regarding.name === capb && e.reason === 'PolicyFailed');
      },
      30_000,
      250,
    );
    expect(ev.type).toBe('Warning');
    const count = (samples: Sample[], result: string): number => samples.find((s) => s.name === 'anchore_operator_kube_events_total' && s.labels['result'] === result)?.value ?? 0;
    // The counter moves once the operator has read the apiserver's answer, just after the Event became visible.
    const samples = await eventually(
      async () => {
        const x = await scrape(operator.op.metricsPort);
        return count(x, 'sent') > 0 ? x : undefined;
      },
      10_000,
      100,
    );
    expect(count(samples, 'sent')).toBeGreaterThan(0);
    expect(count(samples, 'rejected')).toBe(0);
    expect(operator.logs.filter((l) => l.includes('refused a Kubernetes Event'))).toEqual([]);
  });
});
