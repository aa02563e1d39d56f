// The Anchore API surface of the simulator, as data: each route carries what the dispatcher needs (auth, RBAC
// action, gating) and what /v2/openapi.json publishes (operationId, parameters, responses).
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from './auth.ts';
import type { SimulatorCore } from './core.ts';
import { boolParam } from './core.ts';
import { ApiError } from './errors.ts';
import { assertDigestParam } from './images.ts';
import { validateInventory } from './inventory.ts';
import { type OpenApiRouteInfo, buildOpenApi } from './openapi.ts';
import { type GraphqlBody, answerReportsGraphql } from './reports.ts';

/** What a handler gets. */
export interface RouteContext {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Media type of the request body, lower-cased, without parameters ('' when absent). */
  contentType: string;
  raw: Buffer;
  /** Set on routes that need auth. */
  principal: Principal | undefined;
  /** The account the request acts in (the caller's own unless x-anchore-account moved it). */
  account: string;
  now: number;
  /** The body as JSON. @throws ApiError 400 when it is not valid JSON. */
  json(): unknown;
  /** The body as an url-encoded form. */
  form(): Record<string, string>;
}

/** What a handler returns. */
export interface Reply {
  status: number;
  json?: unknown;
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** One route of the Anchore API: what /v2/openapi.json publishes about it, plus its handler. */
export interface RouteDef extends OpenApiRouteInfo {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  handler(ctx: RouteContext): Reply;
}

function ok(json: unknown, status = 200): Reply {
  return { status, json };
}

function requireMedia(ctx: RouteContext, media: string): void {
  if (ctx.contentType !== media) {
    throw new ApiError(415, `Unsupported media type: ${ctx.contentType === '' ? '(none)' : ctx.contentType}. Expected ${media}`);
  }
}

function versionBody(core: SimulatorCore): Record<string, unknown> {
  const v = core.config.service_version;
  return {
    service: { version: v },
    api: core.config.api_version === '' ? {} : { version: core.config.api_version },
    db: { schema_version: v.replace(/[^0-9]/g, '') },
  };
}

/** The route table, bound to a simulator core. */
export function buildRoutes(core: SimulatorCore): RouteDef[] {
  const routes: RouteDef[] = [
    {
      method: 'GET',
      path: '/v2/',
      operationId: 'ping',
      summary: 'Simple status check',
      tag: 'Default',
      auth: true,
      responses: [200],
      handler: () => ok('v2'),
    },
    {
      method: 'GET',
      path: '/v2/version',
      operationId: 'version_check',
      summary: 'Version info',
      tag: 'System',
      auth: false,
      responses: [200],
      handler: () => ok(versionBody(core)),
    },
    {
      method: 'GET',
      path: '/v2/health',
      operationId: 'health_check',
      summary: 'Health check',
      tag: 'System',
      auth: false,
      responses: [200],
      handler: () => ({ status: 200 }),
    },
    {
      method: 'GET',
      path: '/v2/status',
      operationId: 'get_status',
      summary: 'Service status',
      tag: 'System',
      auth: true,
      responses: [200, 500],
      handler: () =>
        ok({ available: true, busy: false, up: true, message: 'all good', version: core.config.service_version, db_version: core.config.service_version.replace(/[^0-9]/g, ''), detail: {} }),
    },
    {
      method: 'GET',
      path: '/v2/system',
      operationId: 'get_system_status',
      summary: 'System status',
      tag: 'System',
      auth: true,
      responses: [200, 500],
      handler: () =>
        ok({
          service_states: ['apiext', 'catalog', 'policy_engine', 'simplequeue', 'analyzer'].map((name) => ({
            service_name: name,
            hostid: `anchore-sim-${name}`,
            base_url: `http://anchore-sim-${name}:8228`,
            status: true,
            status_message: 'available',
            version: core.config.service_version,
            service_detail: { up: true, available: true, busy: false },
          })),
        }),
    },
    {
      method: 'GET',
      path: '/v2/openapi.json',
      summary: 'The OpenAPI document of this server',
      tag: 'System',
      auth: false,
      responses: [200],
      handler: () => ok(buildOpenApi(routes, core.config)),
    },
    {
      method: 'POST',
      path: '/v2/oauth/token',
      operationId: 'get_oauth_token',
      summary: 'Request an OAuth token',
      tag: 'Identity',
      auth: false,
      requestBody: 'form',
      responses: [200, 400, 403, 415, 500],
      handler: (ctx) => {
        requireMedia(ctx, 'application/x-www-form-urlencoded');
        return ok(core.auth.grant(ctx.form()));
      },
    },
    {
      method: 'POST',
      path: '/v2/oauth/revoke',
      operationId: 'revoke_oauth_token',
      summary: 'Revoke an OAuth token',
      tag: 'Identity',
      auth: false,
      requestBody: 'form',
      responses: [200, 400, 401, 415],
      handler: (ctx) => {
        requireMedia(ctx, 'application/x-www-form-urlencoded');
        const token = ctx.form().token;
        if (token === undefined || token === '') throw new ApiError(400, 'token is required', {}, { extra: { error: 'invalid_request' } });
        core.auth.revokeToken(token);
        return { status: 200 };
      },
    },
    {
      method: 'POST',
      path: '/v2/images',
      operationId: 'add_image',
      summary: 'Add an image for analysis',
      tag: 'Images',
      auth: true,
      action: 'createImage',
      queryParams: ['force', 'auto_subscribe'],
      requestBody: 'json',
      responses: [200, 400, 403, 500],
      handler: (ctx) => {
        const force = boolParam(ctx.query, 'force', false);
        boolParam(ctx.query, 'auto_subscribe', false);
        return ok(core.images.add(ctx.account, ctx.json(), force));
      },
    },
    {
      method: 'GET',
      path: '/v2/images',
      operationId: 'list_images',
      summary: 'List images',
      tag: 'Images',
      auth: true,
      action: 'listImages',
      queryParams: ['full_tag', 'image_id', 'history', 'image_status', 'analysis_status', 'analyzed_since'],
      responses: [200, 400, 403, 404, 500],
      handler: (ctx) => {
        const items = core.images.list(ctx.account, ctx.query);
        if (items.length === 0 && ctx.query.full_tag !== undefined && core.config.empty_full_tag_404) {
          throw new ApiError(404, `No images found for full_tag ${ctx.query.full_tag}`, { full_tag: ctx.query.full_tag });
        }
        return ok({ items });
      },
    },
    {
      method: 'GET',
      path: '/v2/images/{image_digest}',
      operationId: 'get_image',
      summary: 'Get an image by digest',
      tag: 'Images',
      auth: true,
      action: 'getImage',
      responses: [200, 400, 403, 404, 500],
      handler: (ctx) => {
        const digest = assertDigestParam(ctx.params.image_digest ?? '');
        const rec = core.images.get(ctx.account, digest);
        if (rec === undefined) throw new ApiError(404, `Image not found: ${digest}`, { image_digest: digest });
        return ok(rec);
      },
    },
    {
      method: 'GET',
      path: '/v2/images/{image_digest}/vuln',
      operationId: 'get_image_vulnerability_types',
      summary: 'Vulnerability types of an image',
      tag: 'Images',
      auth: true,
      action: 'getImage',
      responses: [200, 400, 403, 404, 500],
      handler: (ctx) => ok(core.vulnerabilityTypes(ctx.account, assertDigestParam(ctx.params.image_digest ?? ''))),
    },
    {
      method: 'GET',
      path: '/v2/images/{image_digest}/vuln/{vuln_type}',
      operationId: 'get_image_vulnerabilities_by_digest',
      summary: 'Vulnerabilities of an image',
      tag: 'Images',
      auth: true,
      action: 'getImage',
      queryParams: ['force_refresh', 'include_vuln_description', 'vendor_only', 'base_digest'],
      responses: [200, 400, 403, 404, 500],
      handler: (ctx) => ok(core.vulnerabilities(ctx.account, assertDigestParam(ctx.params.image_digest ?? ''), ctx.params.vuln_type ?? '', ctx.query)),
    },
    {
      method: 'GET',
      path: '/v2/images/{image_digest}/check',
      operationId: 'get_image_policy_check_by_digest',
      summary: 'Policy evaluation of an image',
      tag: 'Images',
      auth: true,
      action: 'getImageEvaluation',
      queryParams: ['tag', 'policy_id', 'detail', 'history', 'interactive', 'base_digest'],
      responses: [200, 400, 403, 404, 500],
      handler: (ctx) => ok(core.check(ctx.account, assertDigestParam(ctx.params.image_digest ?? ''), ctx.query)),
    },
    {
      method: 'GET',
      path: '/v2/policies',
      operationId: 'list_policies',
      summary: 'List policies',
      tag: 'Policies',
      auth: true,
      action: 'listPolicies',
      queryParams: ['detail'],
      responses: [200, 403, 500],
      handler: (ctx) => ok(core.policies.records(ctx.account, boolParam(ctx.query, 'detail', false))),
    },
    {
      method: 'GET',
      path: '/v2/policies/{policy_id}',
      operationId: 'get_policy',
      summary: 'Get a policy',
      tag: 'Policies',
      auth: true,
      action: 'getPolicy',
      queryParams: ['detail'],
      responses: [200, 403, 404, 500],
      handler: (ctx) => {
        const id = ctx.params.policy_id ?? '';
        const rec = core.policies.recordOf(ctx.account, id, boolParam(ctx.query, 'detail', true));
        if (rec === undefined) throw new ApiError(404, `Policy not found: ${id}`, { policy_id: id });
        return ok(rec);
      },
    },
    {
      method: 'POST',
      path: '/v2/kubernetes-inventory',
      operationId: 'post_kubernetes_inventory',
      summary: 'Sync Kubernetes runtime inventory',
      tag: 'Inventories',
      auth: true,
      action: 'syncInventory',
      requestBody: 'json',
      responses: [201, 400, 403, 415, 500],
      handler: (ctx) => {
        requireMedia(ctx, 'application/json');
        core.inventory.accept(ctx.account, validateInventory(ctx.json()), ctx.now, ctx.raw.length);
        return { status: 201 };
      },
    },
    {
      method: 'POST',
      path: '/v2/reports/graphql',
      operationId: 'reports_graphql',
      summary: 'Query the Reports GraphQL API (metrics, metricData)',
      tag: 'Reports',
      auth: true,
      action: 'listImages',
      requestBody: 'json',
      responses: [200, 400, 403, 415, 500],
      handler: (ctx) => {
        requireMedia(ctx, 'application/json');
        return ok(answerReportsGraphql(ctx.json() as GraphqlBody, core.reportValues(ctx.account), ctx.now, core.config.reports_page_size));
      },
    },
    {
      method: 'GET',
      path: '/v2/inventories',
      operationId: 'list_inventories',
      summary: 'List runtime inventory items',
      tag: 'Inventories',
      auth: true,
      action: 'listRuntimeInventories',
      queryParams: ['inventory_type', 'image_digest', 'context'],
      responses: [200, 400, 403, 500],
      handler: (ctx) => ok({ items: core.inventory.list(ctx.account, ctx.query) }),
    },
    {
      method: 'POST',
      path: '/v2/system/integrations/registration',
      operationId: 'register_integration',
      summary: 'Register an integration',
      tag: 'Integrations',
      auth: true,
      action: 'registerIntegration',
      integration: true,
      requestBody: 'json',
      responses: [200, 201, 400, 403, 409, 415, 500],
      handler: (ctx) => {
        requireMedia(ctx, 'application/json');
        const r = core.integrations.register(ctx.account, ctx.json(), ctx.now);
        return ok(r.integration, r.created ? 201 : 200);
      },
    },
    {
      method: 'POST',
      path: '/v2/system/integrations/{integration_uuid}/health-report',
      operationId: 'handle_health_report',
      summary: 'Receive an integration health report',
      tag: 'Integrations',
      auth: true,
      action: 'reportHealth',
      integration: true,
      requestBody: 'json',
      responses: [201, 400, 403, 404, 500],
      handler: (ctx) => {
        core.integrations.healthReport(ctx.params.integration_uuid ?? '', ctx.json(), ctx.now);
        return { status: 201 };
      },
    },
    // Root paths that Anchore serves outside /v2 (KI asks /version; the chart probes /health, /liveness, /startup).
    { method: 'GET', path: '/version', summary: 'Version info (root)', tag: 'Root', auth: false, responses: [200], handler: () => ok(versionBody(core)) },
    { method: 'GET', path: '/health', summary: 'Health (root)', tag: 'Root', auth: false, responses: [200], handler: () => ({ status: 200 }) },
    { method: 'GET', path: '/liveness', summary: 'Liveness (root)', tag: 'Root', auth: false, responses: [200], handler: () => ({ status: 200 }) },
    { method: 'GET', path: '/startup', summary: 'Startup (root)', tag: 'Root', auth: false, responses: [200], handler: () => ({ status: 200 }) },
  ];
  return routes;
}

/** A route compiled for matching. */
export interface CompiledRoute {
  def: RouteDef;
  segments: string[];
}

/** Splits a route path into segments ('' for the trailing slash of /v2/). */
export function compileRoutes(defs: RouteDef[]): CompiledRoute[] {
  return defs.map((def) => ({ def, segments: def.path.split('/').slice(1) }));
}

/** Matches a path against a route; returns its params or undefined. Literal segments beat parameters by route order. */
export function matchRoute(route: CompiledRoute, parts: string[]): Record<string, string> | undefined {
  if (route.segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = route.segments[i]!;
    const part = parts[i]!;
    if (seg.startsWith('{') && seg.endsWith('}')) {
      if (part === '') return undefined;
      try {
        params[seg.slice(1, -1)] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    } else if (seg !== part) return undefined;
  }
  return params;
}
