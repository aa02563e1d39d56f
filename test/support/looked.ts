// Evidence that the operator looked again, for "nothing changed" assertions. A fixed sleep before such an assertion
// proves nothing (the operator's late write may land after it); these helpers wait for something the operator can only
// do after it has processed what came before — and say, each, what exactly that ordering is.
import type { AnchoreSimulator, InventoryReport } from '../anchore-sim/index.ts';
import { apply, eventually, getJson, kubectl, uniqueName } from './k8s.ts';
import type { TestOperator } from './operator.ts';
import { scrape, sumOf, valueOf } from './prometheus.ts';

export interface BindingRef {
  /** Absent for a ClusterAnchorePolicyBinding. */
  namespace?: string;
  name: string;
}

const kindOf = (b: BindingRef): string => (b.namespace === undefined ? 'ClusterAnchorePolicyBinding' : 'AnchorePolicyBinding');
const nameOf = (b: BindingRef): string => `${kindOf(b)} ${b.namespace ? `${b.namespace}/` : ''}${b.name}`;

let touches = 0;

/**
 * Changes a label of the namespace. The operator re-selects every binding in it (and every cluster binding) the way a
 * pod event does — from its caches, not a forced re-evaluation — without changing any binding object (their
 * resourceVersions stay comparable). Returns the time (ms) just before the change.
 */
export async function touchNamespace(ns: string): Promise<number> {
  const at = Date.now();
  await kubectl(['label', 'namespace', ns, `test.anchore.io/touched=${process.pid}-${++touches}`, '--overwrite']);
  return at;
}

/** Unix time (ms) of the binding's last complete evaluation by this operator, from its metrics; undefined if none. */
export async function lastEvaluationMs(op: TestOperator, b: BindingRef): Promise<number | undefined> {
  const v = valueOf(await scrape(op.op.metricsPort), 'anchore_operator_binding_last_evaluation_timestamp_seconds', {
    kind: kindOf(b),
    namespace: b.namespace ?? '',
    binding: b.name,
  });
  return v === undefined ? undefined : v * 1000;
}

/**
 * Waits until each binding has been evaluated completely by a reconcile that began at or after `since` (ms).
 * anchore_operator_binding_last_evaluation_timestamp_seconds is the start time of the last reconcile that evaluated
 * the binding completely, set after its status write; and reconciles of one binding never overlap (the work queue runs
 * one handler per key). So once it reads `since` or later, every reconcile of the binding that began earlier has ended
 * too, its status write included: what they wrote is in the apiserver. (Their Kubernetes Events are written by the
 * recorder afterwards: see eventsFlushed.)
 */
export async function evaluatedSince(op: TestOperator, bindings: BindingRef[], since: number, timeoutMs = 30_000): Promise<void> {
  for (const b of bindings) {
    await eventually(
      async () => {
        const at = await lastEvaluationMs(op, b);
        if (at === undefined || at < since) throw new Error(`last evaluated at ${at} (ms), before ${since}`);
        return true;
      },
      timeoutMs,
      100,
    ).catch((err: unknown) => {
      throw new Error(`${nameOf(b)} was not evaluated again: ${(err as Error).message}`);
    });
  }
}

/** Indexes of the operator's log entries, from `from` on, that begin a reconcile of the binding (debug level). */
function reconcileStarts(op: TestOperator, b: BindingRef, from: number): number[] {
  const out: number[] = [];
  for (let i = from; i < op.logs.length; i++) {
    for (const line of (op.logs[i] ?? '').split('\n')) {
      if (!line.includes('"reconciling binding"')) continue;
      const e = JSON.parse(line) as { kind?: string; namespace?: string; name?: string };
      if (e.kind === kindOf(b) && e.name === b.name && (e.namespace ?? undefined) === b.namespace) out.push(i);
    }
  }
  return out;
}

/**
 * Waits until a reconcile of the binding that began after this call has ended, whatever its outcome (also when it
 * ends Stalled or waiting, which leaves no evaluation time behind). `poke` makes the operator reconcile it (e.g.
 * touchNamespace). A reconcile begins with the log line "reconciling binding" (the operator must log at debug): one
 * logged after this call began after it; then a second poke, and a reconcile logged after that first one, prove that
 * the first has ended — reconciles of one binding never overlap, so what it wrote is in the apiserver. Only for
 * bindings this operator owns (it logs no reconcile of others').
 */
export async function reconciledAgain(op: TestOperator, b: BindingRef, poke: () => Promise<unknown>, timeoutMs = 30_000): Promise<void> {
  const from = op.logs.length;
  await poke();
  const first = await eventually(
    () => {
      const i = reconcileStarts(op, b, from)[0];
      return i === undefined ? undefined : { i };
    },
    timeoutMs,
    50,
  ).catch((err: unknown) => {
    throw new Error(`no reconcile of ${nameOf(b)} began after the poke: ${(err as Error).message}`);
  });
  await poke();
  await eventually(() => reconcileStarts(op, b, first.i + 1).length > 0, timeoutMs, 50).catch((err: unknown) => {
    throw new Error(`no second reconcile of ${nameOf(b)} began: ${(err as Error).message}`);
  });
}

/** The names of eventsFlushed's marker bindings (and so of the objects its Events are about) begin with this. */
export const MARKER_PREFIX = 'flush-marker';

/**
 * Waits until every Kubernetes Event the operator recorded before this call has been handed to the apiserver. A
 * marker binding that selects nothing is created in `ns`; its first reconcile records a NoImages Event. The recorder
 * takes Events off its backlog in the order they were recorded, so once the marker's Event exists every earlier one
 * has been taken off and its write sent before the marker's (writes run up to 4 at once: "sent", not "stored first").
 * Returns the marker's name: callers leave its Event out of what they compare. Call it after the reconciles whose
 * Events matter have ended (evaluatedSince, reconciledAgain).
 */
export async function eventsFlushed(ns: string, timeoutMs = 30_000): Promise<string> {
  const name = uniqueName(MARKER_PREFIX);
  await apply(
    JSON.stringify({
      apiVersion: 'anchore.io/v1alpha1',
      kind: 'AnchorePolicyBinding',
      metadata: { name, namespace: ns },
      spec: { podSelector: { matchLabels: { 'test.anchore.io/marker': name } } },
    }),
  );
  await eventually(
    async () => {
      const list = await getJson<{ items: Array<{ reason: string; regarding: { name: string } }> }>(['events.events.k8s.io', '-n', ns]);
      return list.items.some((e) => e.regarding.name === name);
    },
    timeoutMs,
    100,
  ).catch((err: unknown) => {
    throw new Error(`the marker binding ${ns}/${name} got no Event: ${(err as Error).message}`);
  });
  await kubectl(['delete', 'anchorepolicybinding', name, '-n', ns, '--wait=false']);
  return name;
}

/**
 * Waits until the operator has reconciled a binding it does not own after `poke` changed it (e.g. an annotation). Such a
 * reconcile leaves no trace — no write, no log line, no per-binding metric; that is the point — but it ends in the
 * same turn of the event loop it begins in (no call, no write). So once the operator's cluster-binding watch has
 * delivered an event after the poke began (anchore_operator_watch_last_event_timestamp_seconds), a binding reconcile
 * has ended since, and no binding key waits to be run (anchore_operator_workqueue_depth{state="ready"}), the poked
 * binding has been reconciled. The gauge is per resource, not per object: another cluster binding's change (or a watch
 * bookmark) delivered in the milliseconds between the poke and its own event could stand in for it.
 */
export async function reconciledForeign(op: TestOperator, poke: () => Promise<unknown>, timeoutMs = 30_000): Promise<void> {
  const reconciles = async (): Promise<number> => sumOf(await scrape(op.op.metricsPort), 'anchore_operator_reconcile_total', { controller: 'binding' });
  const before = await reconciles();
  const at = Date.now();
  await poke();
  await eventually(
    async () => {
      const s = await scrape(op.op.metricsPort);
      const seen = (valueOf(s, 'anchore_operator_watch_last_event_timestamp_seconds', { resource: 'clusteranchorepolicybindings' }) ?? 0) * 1000;
      const done = sumOf(s, 'anchore_operator_reconcile_total', { controller: 'binding' });
      const ready = sumOf(s, 'anchore_operator_workqueue_depth', { queue: 'binding', state: 'ready' });
      if (seen < at || done <= before || ready > 0) throw new Error(`watch event at ${seen} (poke at ${at}), ${done - before} binding reconciles since, ${ready} ready`);
      return true;
    },
    timeoutMs,
    50,
  );
}

/**
 * Waits until the image controller has nothing left to do: at least `runs` image reconciles have ended since the
 * operator started (anchore_operator_reconcile_total{controller="image"}), and its work queue holds no key, ready or
 * delayed (anchore_operator_workqueue_depth{queue="image"}: no registration waiting, no analysis poll, no retry). A
 * freshly started operator queues every running image once; with `runs` = the number of distinct images running in
 * its scope, each has then been reconciled — registered or found in Anchore's list — and without a new pod event
 * nothing more will be sent to Anchore. `metricsPort`: the operator's (op.metricsPort, or a child process's).
 */
export async function imagesSettled(metricsPort: number, runs: number, timeoutMs = 30_000): Promise<void> {
  await eventually(
    async () => {
      const s = await scrape(metricsPort);
      const done = sumOf(s, 'anchore_operator_reconcile_total', { controller: 'image' });
      const waiting = sumOf(s, 'anchore_operator_workqueue_depth', { queue: 'image' });
      if (done < runs || waiting > 0) throw new Error(`${done} image reconciles of ${runs}, ${waiting} image keys queued`);
      return true;
    },
    timeoutMs,
    100,
  );
}

/**
 * Waits until the operator's latest runtime inventory report (to account admin) that covers namespace `ns` satisfies
 * `pred`, and returns it. The inventory is built from the operator's pod cache, debounced after the pod events it reflects; every
 * controller's handler for those events has run by then (handlers run as an event is delivered), so what the report
 * shows, the operator has handled — its reconciles may still be queued.
 */
export async function inventoried(sim: AnchoreSimulator, ns: string, pred: (report: InventoryReport['body']) => boolean, timeoutMs = 30_000): Promise<InventoryReport> {
  return eventually(
    () => {
      const last = sim
        .inventories('admin')
        .filter((r) => r.body.namespaces?.some((n) => n.name === ns))
        .at(-1);
      return last && pred(last.body) ? last : undefined;
    },
    timeoutMs,
    50,
  );
}

/** The pods of namespace `ns` an inventory report lists, by name. */
export function inventoryPods(body: InventoryReport['body'], ns: string): string[] {
  const uid = body.namespaces?.find((n) => n.name === ns)?.uid;
  return (body.pods ?? []).filter((p) => p.namespace_uid === uid).map((p) => p.name ?? '');
}
