import type {
  AddImageRequest,
  AnchoreApi,
  AnchoreImage,
  CallLimits,
  CapabilityReport,
  HealthReport,
  ImageListFilter,
  IntegrationRegistration,
  KubernetesInventory,
  PolicyCheck,
  PolicyRecord,
  ReportMetricInfo,
  ReportMetricPoint,
  ServerVersion,
  Vulnerability,
} from './anchore.port.ts';
import { authUsername } from './auth.ts';
import {
  addImageBody,
  graphqlDateTime,
  healthReportBody,
  isDigest,
  operationsInSpec,
  readGraphqlPage,
  readImage,
  readImageList,
  readIntegrationUuid,
  readMetricInfo,
  readMetricPoint,
  readPolicy,
  readPolicyCheck,
  readPolicyList,
  readVersion,
  readVulnerabilities,
} from './decode.ts';
import { AnchoreError, protocolError } from './errors.ts';
import { AnchoreTransport, type AnchoreTransportConfig } from './transport.ts';
import { jsonInSlices } from '../runtime/cooperative.ts';

/** The client is configured by its transport alone: every option is about how calls travel. */
export type AnchoreHttpConfig = AnchoreTransportConfig;

/** Operations the operator uses, as (method, path below /v2). Used by the capability check. */
const REQUIRED_OPERATIONS = ['POST /images', 'GET /images', 'GET /images/{}', 'POST /kubernetes-inventory'] as const;
const OPTIONAL_OPERATIONS = ['GET /images/{}/check', 'GET /images/{}/vuln/{}', 'GET /policies', 'POST /system/integrations/registration', 'POST /system/integrations/{}/health-report'] as const;

/**
 * Anchore V2 over HTTP: each method is one endpoint (path, query, body) and the decoder of its answer. Transport,
 * retries and errors are AnchoreTransport's; reading the JSON is decode.ts's.
 */
export class AnchoreHttpClient implements AnchoreApi {
  readonly baseUrl: string;
  readonly #cfg: AnchoreHttpConfig;
  readonly #http: AnchoreTransport;

  constructor(cfg: AnchoreHttpConfig) {
    this.#cfg = cfg;
    this.#http = new AnchoreTransport(cfg);
    this.baseUrl = this.#http.baseUrl;
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  get username(): string {
    return authUsername(this.#cfg.auth);
  }

  async version(): Promise<ServerVersion> {
    const read = (b: unknown): ServerVersion => readVersion(b, 'version_check');
    try {
      return await this.#http.call('version_check', 'GET', '/v2/version', { anonymous: true, read });
    } catch (err) {
      // k8s-inventory reads /version at the root; some deployments only route that one.
      if (!(err instanceof AnchoreError && err.kind === 'not-found')) throw err;
      return await this.#http.call('version_check', 'GET', '/version', { anonymous: true, read });
    }
  }

  async capabilities(): Promise<CapabilityReport> {
    let spec: unknown;
    try {
      spec = await this.#http.call('openapi', 'GET', '/v2/openapi.json', {});
    } catch (err) {
      if (err instanceof AnchoreError && err.kind === 'not-found') {
        return { specAvailable: false, missingRequired: [], missingOptional: [] };
      }
      throw err;
    }
    const ops = operationsInSpec(spec);
    return {
      specAvailable: true,
      missingRequired: REQUIRED_OPERATIONS.filter((o) => !ops.has(o)),
      missingOptional: OPTIONAL_OPERATIONS.filter((o) => !ops.has(o)),
    };
  }

  async listImages(account: string, filter: ImageListFilter = {}, limits: CallLimits = {}): Promise<AnchoreImage[]> {
    const operation = 'list_images';
    const list = await this.#http.call(operation, 'GET', '/v2/images', {
      account,
      ...limits,
      query: { image_status: 'active', full_tag: filter.fullTag },
      read: (b) => readImageList(b, operation),
    });
    for (const u of list.unknownStatuses) this.#unknownStatus(operation, u.digest, u.value);
    // The operator re-adds (idempotently) what it could not read; saying so once per list is enough.
    if (list.dropped) {
      this.#cfg.log.warn({ operation, account, dropped: list.dropped, example: list.example }, 'Anchore listed images the operator cannot read; ignoring them');
    }
    return list.images;
  }

  async getImage(account: string, digest: string, limits: CallLimits = {}): Promise<AnchoreImage> {
    const operation = 'get_image';
    assertDigest(digest, operation);
    const r = await this.#http.call(operation, 'GET', `/v2/images/${digest}`, { account, ...limits, read: (b) => readImage(b, operation) });
    return this.#image(operation, r);
  }

  async addImage(account: string, req: AddImageRequest): Promise<AnchoreImage> {
    const operation = 'add_image';
    const r = await this.#http.call(operation, 'POST', '/v2/images', {
      account,
      json: addImageBody(req),
      query: { auto_subscribe: false, force: req.force ? true : undefined },
      read: (b) => readImage(b, operation),
    });
    return this.#image(operation, r);
  }

  async postKubernetesInventory(account: string, inventory: KubernetesInventory): Promise<void> {
    // A 10,000-pod inventory is megabytes of JSON: serialised in slices, once for every attempt.
    const rawJson = await jsonInSlices(inventory as unknown as Record<string, unknown>);
    await this.#http.call('post_kubernetes_inventory', 'POST', '/v2/kubernetes-inventory', {
      account,
      rawJson,
      expectEmpty: true,
    });
  }

  async registerIntegration(account: string, reg: IntegrationRegistration): Promise<string> {
    const operation = 'register_integration';
    return this.#http.call(operation, 'POST', '/v2/system/integrations/registration', {
      account,
      json: reg,
      read: (b) => readIntegrationUuid(b, operation),
    });
  }

  async sendHealthReport(account: string, uuid: string, report: HealthReport): Promise<void> {
    await this.#http.call('handle_health_report', 'POST', `/v2/system/integrations/${encodeURIComponent(uuid)}/health-report`, {
      account,
      expectEmpty: true,
      json: healthReportBody(report, this.username, new Date(), crypto.randomUUID()),
    });
  }

  async listPolicies(account: string, limits: CallLimits = {}): Promise<PolicyRecord[]> {
    const operation = 'list_policies';
    return this.#http.call(operation, 'GET', '/v2/policies', {
      account,
      ...limits,
      query: { detail: false },
      read: (b) => readPolicyList(b, operation),
    });
  }

  async getPolicy(account: string, policyId: string): Promise<PolicyRecord> {
    const operation = 'get_policy';
    return this.#http.call(operation, 'GET', `/v2/policies/${encodeURIComponent(policyId)}`, {
      account,
      query: { detail: false },
      read: (b) => readPolicy(b, operation),
    });
  }

  async checkImage(account: string, digest: string, tag: string, policyId?: string, limits: CallLimits = {}): Promise<PolicyCheck> {
    const operation = 'get_image_policy_check_by_digest';
    assertDigest(digest, operation);
    return this.#http.call(operation, 'GET', `/v2/images/${digest}/check`, {
      account,
      ...limits,
      query: { tag, policy_id: policyId, detail: true, interactive: true },
      read: (b) => {
        const check = readPolicyCheck(b, digest, tag);
        if (typeof check === 'string') throw protocolError(operation, check);
        return check;
      },
    });
  }

  async vulnerabilities(account: string, digest: string): Promise<Vulnerability[]> {
    const operation = 'get_image_vulnerabilities_by_digest';
    assertDigest(digest, operation);
    return this.#http.call(operation, 'GET', `/v2/images/${digest}/vuln/all`, {
      account,
      read: (b) => readVulnerabilities(b, operation),
    });
  }

  async reportMetrics(account: string): Promise<ReportMetricInfo[]> {
    const out: ReportMetricInfo[] = [];
    await this.#graphqlPages(
      account,
      'query Metrics($nextToken: String) { metrics(nextToken: $nextToken) { pageInfo { nextToken count } results { id name description metricType } } }',
      {},
      'metrics',
      (r) => {
        const m = readMetricInfo(r);
        if (m) out.push(m);
      },
    );
    return out;
  }

  async reportMetricData(account: string, metricId: string, start: Date, end: Date): Promise<ReportMetricPoint[]> {
    const out: ReportMetricPoint[] = [];
    await this.#graphqlPages(
      account,
      'query MetricData($filter: MetricDataFilter, $nextToken: String) { metricData(filter: $filter, nextToken: $nextToken) { pageInfo { nextToken count } results { collectedAt value } } }',
      { filter: { metricId, start: graphqlDateTime(start), end: graphqlDateTime(end) } },
      'metricData',
      (r) => {
        const p = readMetricPoint(r);
        if (p) out.push(p);
      },
    );
    return out;
  }

  /** Follows pageInfo.nextToken to the end (at most 1000 pages: a server that never stops is an error, not a loop). */
  async #graphqlPages(account: string, query: string, variables: Record<string, unknown>, field: string, each: (r: Record<string, unknown>) => void): Promise<void> {
    const operation = 'reports_graphql';
    let nextToken: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = await this.#http.call(operation, 'POST', '/v2/reports/graphql', {
        account,
        json: { query, variables: { ...variables, nextToken } },
        read: (b) => readGraphqlPage(b, field, operation),
      });
      for (const r of page.results) each(r);
      if (page.nextToken === undefined) return;
      nextToken = page.nextToken;
    }
    throw protocolError(operation, 'more than 1000 pages; giving up');
  }

  #image(operation: string, r: { image: AnchoreImage; unknownStatus?: string }): AnchoreImage {
    if (r.unknownStatus !== undefined) this.#unknownStatus(operation, r.image.image_digest, r.unknownStatus);
    return r.image;
  }

  readonly #warnedStatuses = new Set<string>();

  /** A newer Anchore may add analysis states: not final, so the image is polled again; said once per value. */
  #unknownStatus(operation: string, digest: string, value: string): void {
    if (this.#warnedStatuses.has(value) || this.#warnedStatuses.size >= 100) return;
    this.#warnedStatuses.add(value);
    this.#cfg.log.warn({ operation, digest, analysis_status: value.slice(0, 100) }, 'Anchore reported an analysis_status this operator does not know; treating it as not final and polling again');
  }
}

/** A digest goes into the URL path: anything else is refused before a request is made. */
function assertDigest(digest: string, operation: string): void {
  if (!isDigest(digest)) throw new AnchoreError('rejected', operation, `${operation}: "${digest}" is not a sha256 digest`);
}
