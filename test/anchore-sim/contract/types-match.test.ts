// The operator's request types against the fixture's schemas, in both senses:
// - at compile time (tsc runs first in `npm test`): each body type the operator sends is assignable to the type the
//   schema accepts, and names no member the schema does not define;
// - at run time: bodies built by the operator's own code (inventory builder, integration controller, health report
//   builder) validate against the schemas with no extra members, and pass the health-report consistency rule.
import { describe, expect, it } from '@jest/globals';
import { healthReportBody } from '../../../src/anchore/decode.ts';
import type { AnchoreApi, HealthReportBody, IntegrationRegistration, KubernetesInventory } from '../../../src/anchore/anchore.port.ts';
import { buildHealthReport, IntegrationController } from '../../../src/controllers/integration.controller.ts';
import { buildInventory } from '../../../src/controllers/inventory.ts';
import { Scope } from '../../../src/model/scope.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { aContainer, aNamespace, aNode, aPod, hex64, memoryStores } from '../../../src/testing/factories.ts';
import { healthReportConsistency } from './operations.ts';
import { type Infer, type Schema, validate } from './schema.ts';
import * as S from './spec.ts';

// ---- compile time ----

/** Keys of T (recursively, through arrays and objects) that U does not define; never when there are none. */
type ExtraKeys<T, U, At extends string = '$'> = T extends readonly (infer TI)[]
  ? U extends readonly (infer UI)[]
    ? ExtraKeys<TI, UI, `${At}[]`>
    : never
  : T extends object
    ? U extends object
      ? string extends keyof U
        ? ExtraKeys<T[keyof T], U[string & keyof U], `${At}{}`>
        : {
            [K in keyof T & string]: K extends keyof U ? ExtraKeys<NonNullable<T[K]>, NonNullable<U[K]>, `${At}.${K}`> : `${At}.${K}`;
          }[keyof T & string]
      : never
    : never;

/** true when T may be sent where schema S is wanted: assignable, and no member outside the schema. */
type Conforms<T, Sc extends Schema> = [T] extends [Infer<Sc>] ? ([ExtraKeys<T, Infer<Sc>>] extends [never] ? true : ExtraKeys<T, Infer<Sc>>) : false;

// Each line fails to compile if the operator's type drifts from the fixture (the error names the offending member).
const inventoryConforms: Conforms<KubernetesInventory, typeof S.KubernetesInventory> = true;
const registrationConforms: Conforms<IntegrationRegistration, typeof S.IntegrationRegister> = true;
const healthReportConforms: Conforms<HealthReportBody, typeof S.HealthReport> = true;

// The checker itself must be able to fail: a wrong type and an extra member are both caught.
const wrongTypeCaught: Conforms<{ cluster_name: number; timestamp: string }, typeof S.KubernetesInventory> = false;
const extraMemberCaught: Conforms<{ cluster_name: string; timestamp: string; clusterName: string }, typeof S.KubernetesInventory> = '$.clusterName';
const missingRequiredCaught: Conforms<{ cluster_name: string }, typeof S.KubernetesInventory> = false;

// ---- run time ----

/** Strict: as a response is checked, so any member the spec does not define counts too. */
function strictViolations(schema: Schema, body: unknown): string[] {
  return validate(schema, JSON.parse(JSON.stringify(body)), 'response').map((v) => `${v.path} ${v.message}`);
}

const digest = (s: string): string => `sha256:${hex64(s)}`;

describe('operator request types match the Anchore contract fixture', () => {
  it('compile-time checks hold (and catch drift)', () => {
    expect([inventoryConforms, registrationConforms, healthReportConforms]).toEqual([true, true, true]);
    expect([wrongTypeCaught, extraMemberCaught, missingRequiredCaught]).toEqual([false, '$.clusterName', false]);
  });

  it('when the operator builds a runtime inventory (several batches, nodes, labels), then every batch conforms to KubernetesInventory', async () => {
    const s = memoryStores();
    s.nodes.put(aNode('node-1'));
    for (const ns of ['shop', 'pay', 'ops']) {
      s.namespaces.put(aNamespace(ns, { team: ns }));
      for (let i = 0; i < 5; i++) {
        s.pods.put(aPod(ns, `web-${i}`, [aContainer('web', `nginx:1.${i}`, { digest: digest(`${ns}${i}`) }), aContainer('side', 'envoy:1')], { node: 'node-1' }));
      }
    }
    const scope = new Scope({ namespaces: {}, imageExclude: [], imagePolicy: { missingTagPolicy: 'digest' }, defaultAccount: 'admin', routes: [] });
    const batches = await buildInventory('admin', s, scope, 'prod', new Date(), 600);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) expect(strictViolations(S.KubernetesInventory, b)).toEqual([]);
  });

  it('when the integration controller registers, then the registration conforms to IntegrationRegister', async () => {
    let sent: IntegrationRegistration | undefined;
    const anchore = {
      registerIntegration: async (_account: string, reg: IntegrationRegistration) => {
        sent = reg;
        return '7e1f2c3a-0000-4000-8000-000000000001';
      },
      sendHealthReport: async () => undefined,
    } as unknown as AnchoreApi;
    const ctl = new IntegrationController({
      anchore,
      account: 'admin',
      username: 'admin',
      clusterName: 'prod',
      registrationId: 'reg',
      instanceId: 'pod-1',
      namespace: 'anchore-system',
      version: '1.2.3',
      healthIntervalMs: 5_000,
      accounts: ['admin', 'team-a'],
      namespaces: ['shop-*'],
      configuration: { inventory: { batch_bytes: 1 } },
      inventoryStatus: () => [],
      log: createLogger({ level: 'error', pretty: false }, { write: () => undefined }),
    });
    ctl.start();
    const end = Date.now() + 5000;
    while (sent === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    ctl.stop();
    expect(sent).toBeDefined();
    expect(strictViolations(S.IntegrationRegister, sent)).toEqual([]);
  });

  it('when a health report is built from mixed outcomes, then it conforms to HealthReport and tells one consistent story', () => {
    const t = new Date('2026-12-01T10:00:00Z');
    const report = buildHealthReport(
      [
        {
          account: 'admin',
          batchCount: 3,
          batches: [
            { index: 1, sentAt: t },
            { index: 2, sentAt: t, error: 'HTTP 400: bad' },
            { index: 3, sentAt: t },
          ],
          lastSuccessfulIndex: 3,
          lastAttempt: t,
        },
        {
          account: 'team-a',
          batchCount: 2,
          batches: [
            { index: 1, sentAt: t },
            { index: 2, sentAt: t },
          ],
          lastSuccessfulIndex: 2,
          lastAttempt: t,
        },
        { account: 'never', batchCount: 0, batches: [], lastSuccessfulIndex: -1 },
      ],
      12.5,
      30,
    );
    const body = healthReportBody(report, 'admin', t, '0b6c0f9e-1d2a-4c3b-8e4f-5a6b7c8d9e0f');
    expect(strictViolations(S.HealthReport, body)).toEqual([]);
    expect(healthReportConsistency(body)).toEqual([]);
    expect(Object.keys(body.health_data.account_k8s_inventory_reports).sort()).toEqual(['admin', 'team-a']);
  });
});
