import type {
  AddImageRequest,
  AnalysisStatus,
  AnchoreApi,
  AnchoreImage,
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
} from '../anchore/anchore.port.ts';
import { AnchoreError, type AnchoreErrorKind } from '../anchore/errors.ts';

/*
 * Anchore in memory, for controller and model unit tests: the AnchoreApi port over a few maps, every call recorded,
 * and errors injectable per operation. No HTTP, no timers of its own unless `analysisMs` asks for one (then fake timers
 * drive it). The HTTP client and the simulator keep their own tests (src/anchore/, test/anchore-sim/); this is for what
 * a controller does with Anchore's answers.
 */

export type AnchoreOperation = keyof AnchoreApi;

export interface FakeAnchoreCall {
  op: AnchoreOperation;
  /** The account the call acted as (absent for version/capabilities). */
  account?: string;
  /** The image digest, policy id, metric id or integration uuid the call named, if any. */
  subject?: string;
}

/** The status each error kind has in the real client, so code that logs or counts `status` sees a plausible one. */
const STATUS: Record<AnchoreErrorKind, number | undefined> = {
  unavailable: 503,
  protocol: 200,
  auth: 401,
  'not-found': 404,
  'account-not-found': 404,
  rejected: 400,
  unsupported: 404,
  tls: undefined,
};

/** An AnchoreError of `kind` as the HTTP client would throw it for `op`. */
export function anchoreError(kind: AnchoreErrorKind, op: string, message = `${op}: ${kind}`, status = STATUS[kind]): AnchoreError {
  return new AnchoreError(kind, op, message, status === undefined ? {} : { status });
}

type Failure = { error: (call: FakeAnchoreCall) => Error; times: number };

/** A verdict as a test writes it: the rest of the PolicyCheck is filled in from the call. */
export type FakeVerdict = Partial<Omit<PolicyCheck, 'image_digest' | 'evaluated_tag'>>;

export class FakeAnchore implements AnchoreApi {
  /** Images per account, by digest. */
  readonly images = new Map<string, Map<string, AnchoreImage>>();
  /** Policies per account (missing account: none). */
  readonly policies = new Map<string, PolicyRecord[]>();
  /** Verdicts by digest (any account, any tag); an analysed image without one passes. */
  readonly verdicts = new Map<string, FakeVerdict>();
  /** Vulnerabilities by digest (none when absent). */
  readonly vulns = new Map<string, Vulnerability[]>();
  /** The Reports API: the catalogue, and the points of each metric id. */
  readonly reportCatalog: ReportMetricInfo[] = [];
  readonly reportPoints = new Map<string, ReportMetricPoint[]>();
  /** Accounts that exist; undefined: every account does. A call for another throws account-not-found. */
  accounts: Set<string> | undefined;
  /** Every call, in order (failed ones too). */
  readonly calls: FakeAnchoreCall[] = [];
  /** What was posted. */
  readonly inventories: Array<{ account: string; inventory: KubernetesInventory }> = [];
  readonly registrations: Array<{ account: string; registration: IntegrationRegistration }> = [];
  readonly healthReports: Array<{ account: string; uuid: string; report: HealthReport }> = [];
  /** An added image is `not_analyzed`, then `analyzed` after this many ms (a timer: use fake timers); 0: analysed at once; undefined: stays until analyze(). */
  analysisMs: number | undefined = 0;
  serverVersion: ServerVersion = { service: '5.20.0', api: '2', db: '5.20.0' };
  capabilityReport: CapabilityReport = { specAvailable: true, missingRequired: [], missingOptional: [] };
  readonly #failures = new Map<AnchoreOperation, Failure[]>();

  constructor(seed: { images?: Record<string, Array<Partial<AnchoreImage> & { image_digest: string }>>; policies?: Record<string, PolicyRecord[]>; accounts?: string[] } = {}) {
    for (const [account, list] of Object.entries(seed.images ?? {})) for (const i of list) this.putImage(account, i);
    for (const [account, list] of Object.entries(seed.policies ?? {})) this.policies.set(account, list);
    if (seed.accounts) this.accounts = new Set(seed.accounts);
  }

  // --- test controls ---

  /** Holds (or replaces) an image; analysed unless the test says otherwise. */
  putImage(account: string, image: Partial<AnchoreImage> & { image_digest: string }): AnchoreImage {
    const full: AnchoreImage = { analysis_status: 'analyzed', image_status: 'active', full_tags: [], ...image };
    this.#account(account).set(image.image_digest, full);
    return full;
  }

  /** Sets an image's analysis status (e.g. to finish an analysis `analysisMs: undefined` left pending). */
  analyze(account: string, digest: string, status: AnalysisStatus = 'analyzed'): void {
    const i = this.images.get(account)?.get(digest);
    if (!i) throw new Error(`FakeAnchore: ${account} holds no image ${digest}`);
    i.analysis_status = status;
  }

  /** Deletes an image, as an admin in Anchore does; true if it was held. */
  deleteImage(account: string, digest: string): boolean {
    return this.images.get(account)?.delete(digest) ?? false;
  }

  /**
   * The next `times` calls of `op` throw (Infinity: until cleared). `error`: an AnchoreError kind, an error, or a
   * function of the call. Failures queue in the order given.
   */
  fail(op: AnchoreOperation, error: AnchoreErrorKind | Error | ((call: FakeAnchoreCall) => Error), times = 1): void {
    const make = typeof error === 'function' ? error : typeof error === 'string' ? () => anchoreError(error, op) : () => error;
    const list = this.#failures.get(op) ?? [];
    list.push({ error: make, times });
    this.#failures.set(op, list);
  }

  /** Every call of `op` throws until heal() (an outage). */
  down(op: AnchoreOperation, kind: AnchoreErrorKind = 'unavailable'): void {
    this.heal(op);
    this.fail(op, kind, Infinity);
  }

  /** No more injected failures (of `op`, or of all operations). */
  heal(op?: AnchoreOperation): void {
    if (op) this.#failures.delete(op);
    else this.#failures.clear();
  }

  /** The calls of one operation (of one account, when given). */
  callsOf(op: AnchoreOperation, account?: string): FakeAnchoreCall[] {
    return this.calls.filter((c) => c.op === op && (account === undefined || c.account === account));
  }

  // --- the port ---

  version(): Promise<ServerVersion> {
    return this.#answer({ op: 'version' }, () => ({ ...this.serverVersion }));
  }

  capabilities(): Promise<CapabilityReport> {
    return this.#answer({ op: 'capabilities' }, () => structuredClone(this.capabilityReport));
  }

  listImages(account: string, filter?: ImageListFilter): Promise<AnchoreImage[]> {
    return this.#answer({ op: 'listImages', account }, () =>
      [...(this.images.get(account)?.values() ?? [])].filter((i) => filter?.fullTag === undefined || i.full_tags.includes(filter.fullTag)).map((i) => structuredClone(i)),
    );
  }

  getImage(account: string, digest: string): Promise<AnchoreImage> {
    return this.#answer({ op: 'getImage', account, subject: digest }, () => structuredClone(this.#image(account, digest, 'getImage')));
  }

  addImage(account: string, req: AddImageRequest): Promise<AnchoreImage> {
    const digest = req.digestPullString?.split('@')[1];
    return this.#answer({ op: 'addImage', account, subject: digest ?? req.tag }, () => {
      const key = digest ?? `tag:${req.tag}`;
      const held = this.images.get(account)?.get(key);
      if (held && !req.force) {
        if (!held.full_tags.includes(req.tag)) held.full_tags.push(req.tag);
        return structuredClone(held);
      }
      const added = this.putImage(account, {
        image_digest: key,
        analysis_status: this.analysisMs === 0 ? 'analyzed' : 'not_analyzed',
        full_tags: [req.tag],
        ...(req.annotations ? { annotations: { ...req.annotations } } : {}),
      });
      if (this.analysisMs) setTimeout(() => (added.analysis_status = 'analyzed'), this.analysisMs);
      return structuredClone(added);
    });
  }

  postKubernetesInventory(account: string, inventory: KubernetesInventory): Promise<void> {
    return this.#answer({ op: 'postKubernetesInventory', account }, () => void this.inventories.push({ account, inventory: structuredClone(inventory) }));
  }

  registerIntegration(account: string, registration: IntegrationRegistration): Promise<string> {
    return this.#answer({ op: 'registerIntegration', account }, () => {
      this.registrations.push({ account, registration: structuredClone(registration) });
      return `uuid-${registration.registration_id}`;
    });
  }

  sendHealthReport(account: string, uuid: string, report: HealthReport): Promise<void> {
    return this.#answer({ op: 'sendHealthReport', account, subject: uuid }, () => void this.healthReports.push({ account, uuid, report: structuredClone(report) }));
  }

  listPolicies(account: string): Promise<PolicyRecord[]> {
    return this.#answer({ op: 'listPolicies', account }, () => structuredClone(this.policies.get(account) ?? []));
  }

  getPolicy(account: string, policyId: string): Promise<PolicyRecord> {
    return this.#answer({ op: 'getPolicy', account, subject: policyId }, () => {
      const p = this.policies.get(account)?.find((x) => x.policy_id === policyId);
      if (!p) throw anchoreError('not-found', 'getPolicy', `getPolicy: no policy ${policyId}`);
      return { ...p };
    });
  }

  checkImage(account: string, digest: string, tag: string, policyId?: string): Promise<PolicyCheck> {
    return this.#answer({ op: 'checkImage', account, subject: digest }, () => {
      const image = this.#image(account, digest, 'checkImage');
      if (image.analysis_status !== 'analyzed') throw anchoreError('not-found', 'checkImage', `checkImage: ${digest} is not analyzed`);
      const policies = this.policies.get(account) ?? [];
      const policy = policyId === undefined ? policies.find((p) => p.active) : policies.find((p) => p.policy_id === policyId);
      if (!policy && policies.length > 0) throw anchoreError('not-found', 'checkImage', `checkImage: no policy ${policyId ?? '(active)'}`);
      const v = this.verdicts.get(digest) ?? {};
      const findings = v.findings ?? [];
      return {
        policy_id: v.policy_id ?? policy?.policy_id ?? policyId ?? 'default',
        image_digest: digest,
        evaluated_tag: tag,
        status: v.status ?? 'pass',
        final_action: v.final_action ?? (v.status === 'fail' ? 'stop' : 'go'),
        final_action_reason: v.final_action_reason ?? 'policy_evaluation',
        number_of_findings: v.number_of_findings ?? findings.length,
        findings,
        ...(v.evaluation_time ? { evaluation_time: v.evaluation_time } : {}),
      };
    });
  }

  vulnerabilities(account: string, digest: string): Promise<Vulnerability[]> {
    return this.#answer({ op: 'vulnerabilities', account, subject: digest }, () => {
      this.#image(account, digest, 'vulnerabilities');
      return structuredClone(this.vulns.get(digest) ?? []);
    });
  }

  reportMetrics(account: string): Promise<ReportMetricInfo[]> {
    return this.#answer({ op: 'reportMetrics', account }, () => structuredClone(this.reportCatalog));
  }

  reportMetricData(account: string, metricId: string, start: Date, end: Date): Promise<ReportMetricPoint[]> {
    return this.#answer({ op: 'reportMetricData', account, subject: metricId }, () => {
      const points = this.reportPoints.get(metricId);
      if (!points) throw anchoreError('not-found', 'reportMetricData', `reportMetricData: no metric ${metricId}`);
      return points.filter((p) => Date.parse(p.collectedAt) >= start.getTime() && Date.parse(p.collectedAt) <= end.getTime()).map((p) => ({ ...p }));
    });
  }

  // --- helpers ---

  #account(account: string): Map<string, AnchoreImage> {
    let m = this.images.get(account);
    if (!m) this.images.set(account, (m = new Map<string, AnchoreImage>()));
    return m;
  }

  #image(account: string, digest: string, op: string): AnchoreImage {
    const i = this.images.get(account)?.get(digest);
    if (!i) throw anchoreError('not-found', op, `${op}: ${account} holds no image ${digest}`);
    return i;
  }

  /** Records the call, then throws an injected failure, or a missing account's error, or answers (asynchronously, as the client does). */
  async #answer<T>(call: FakeAnchoreCall, answer: () => T): Promise<T> {
    this.calls.push(call);
    await Promise.resolve();
    const failures = this.#failures.get(call.op);
    const next = failures?.[0];
    if (next) {
      if (--next.times <= 0) failures.shift();
      throw next.error(call);
    }
    if (call.account !== undefined && this.accounts && !this.accounts.has(call.account)) {
      throw anchoreError('account-not-found', call.op, `${call.op}: the Anchore account does not exist (404): User account not found: ${call.account}`);
    }
    return answer();
  }
}
