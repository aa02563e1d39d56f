// /v2/openapi.json, generated from the route table so it always describes exactly what the simulator serves (minus
// what a test asked to hide through openapi_missing, to exercise the operator's capability check).
import type { SimConfig } from './types.ts';

/** The route facts the OpenAPI document needs; RouteDef extends it with the handler. */
export interface OpenApiRouteInfo {
  method: string;
  /** Full path with `{param}` segments, e.g. /v2/images/{image_digest}. */
  path: string;
  /** Published in /v2/openapi.json when set (and not listed in openapi_missing). */
  operationId?: string;
  summary: string;
  tag: string;
  auth: boolean;
  /** RBAC action; routes with one honour x-anchore-account. */
  action?: string;
  /** Part of /v2/system/integrations (gated by integrations_enabled). */
  integration?: boolean;
  queryParams?: string[];
  requestBody?: 'json' | 'form';
  responses: number[];
}

const BOOLEAN_PARAMS = new Set(['force', 'auto_subscribe', 'history', 'detail', 'interactive', 'vendor_only', 'force_refresh', 'include_vuln_description']);

/**
 * Builds the OpenAPI 3 document. Paths are relative to the `/v2` server URL and no securitySchemes are declared,
 * as in Anchore's own spec.
 */
export function buildOpenApi(routes: OpenApiRouteInfo[], config: SimConfig): Record<string, unknown> {
  const missing = new Set(config.openapi_missing);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.operationId === undefined || missing.has(r.operationId)) continue;
    if (r.integration === true && !config.integrations_enabled) continue;
    if (!r.path.startsWith('/v2/')) continue;
    const rel = r.path.slice(3);
    const parameters: Array<Record<string, unknown>> = [];
    for (const m of r.path.matchAll(/\{([^}]+)\}/g)) {
      parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    for (const q of r.queryParams ?? []) {
      parameters.push({ name: q, in: 'query', required: q === 'tag', schema: { type: BOOLEAN_PARAMS.has(q) ? 'boolean' : 'string' } });
    }
    if (r.action !== undefined) parameters.push({ $ref: '#/components/parameters/AsAccountParameter' });
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      parameters,
      responses: Object.fromEntries(r.responses.map((code) => [String(code), { description: code < 400 ? 'Success' : 'Error' }])),
    };
    if (r.action !== undefined) op['x-anchore-authz-action'] = r.action;
    if (!r.auth) op['x-anchore-no-auth'] = true;
    if (r.requestBody !== undefined) {
      const media = r.requestBody === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
      op.requestBody = { required: true, content: { [media]: { schema: { type: 'object' } } } };
    }
    (paths[rel] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Anchore Enterprise API Server (SIMULATOR)',
      description: 'Served by the anchore-operator test simulator; describes only what the simulator implements.',
      version: config.service_version,
    },
    servers: [{ url: '/v2' }],
    paths,
    components: {
      parameters: {
        AsAccountParameter: {
          name: 'x-anchore-account',
          in: 'header',
          required: false,
          description: 'An account name to change the resource scope of the request to that account, if permissions allow (admin only)',
          schema: { type: 'string' },
        },
      },
    },
  };
}
