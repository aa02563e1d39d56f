/**
 * Typed Anchore errors. Controllers decide what to do from `kind`, never from status codes or message text:
 * - unavailable: network error, timeout, 5xx, 429 — Anchore (or the path to it) is down; retry later.
 * - protocol: Anchore answered 2xx, but not with what the API promises: a proxy's HTML login page, truncated or invalid
 *   JSON, wrong types (a numeric image_digest, a missing analysis_status, an object where a list belongs), an unknown
 *   final_action, a body larger than the client's limit. Retried with backoff like `unavailable` (a cut connection
 *   heals), but it does not mean Anchore is unreachable, and a verdict that cannot be read is an error, never a pass.
 * - auth: 401 (bad credentials) or 403 (missing RBAC permission) — retrying will not help until credentials change.
 * - not-found: 404 on a resource (image, policy).
 * - account-not-found: 404 whose message says "User account not found" — the x-anchore-account names an account
 *   Anchore does not have (how k8s-inventory recognises it too). Retrying helps only once someone creates it.
 * - rejected: Anchore refused the input (400, 409, 415, 422).
 * - unsupported: the server lacks an API this operator needs (V1 server, missing operation).
 * - tls: the TLS handshake failed for a reason retrying cannot fix (certificate not trusted, not for this host name,
 *   expired; or https spoken to a plain-http port): the message names the cause and the fix.
 */
export type AnchoreErrorKind = 'unavailable' | 'protocol' | 'auth' | 'not-found' | 'account-not-found' | 'rejected' | 'unsupported' | 'tls';

export class AnchoreError extends Error {
  override readonly name = 'AnchoreError';
  readonly kind: AnchoreErrorKind;
  /** HTTP status, when there was a response. */
  readonly status: number | undefined;
  /** Operation name, e.g. "add_image". */
  readonly operation: string;
  /** Seconds the server asked us to wait (Retry-After), if any. */
  readonly retryAfterSeconds: number | undefined;
  /** Anchore's own error detail, when it sent one. Never contains credentials. */
  readonly detail: unknown;

  constructor(kind: AnchoreErrorKind, operation: string, message: string, opts: { status?: number; retryAfterSeconds?: number; detail?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.operation = operation;
    this.status = opts.status;
    this.retryAfterSeconds = opts.retryAfterSeconds;
    this.detail = opts.detail;
  }

  get retryable(): boolean {
    return this.kind === 'unavailable' || this.kind === 'protocol';
  }
}

/** A 2xx answer that is not what the API promises (see `protocol` above); shared by the transport and the decoders. */
export function protocolError(operation: string, message: string): AnchoreError {
  return new AnchoreError('protocol', operation, `${operation}: unexpected response: ${message}`);
}

/** What an Anchore error body says, whichever of its shapes it uses. */
export interface ParsedErrorBody {
  message: string | undefined;
  detail: unknown;
  requestId: string | undefined;
}

/**
 * Anchore sends errors in (at least) three shapes, and which one depends on the server version and the layer that
 * failed: the spec's `{code, error_type, message, detail}`, the engine's `{message, httpcode, detail}` (with
 * `anchore_request_id` sometimes), and RFC 7807 problem+json `{type, title, status, detail}` from the web framework.
 * Read whichever fields are present; never fail on an unexpected body.
 */
export function parseErrorBody(body: string): ParsedErrorBody {
  const trimmed = body.trim();
  if (!trimmed) return { message: undefined, detail: undefined, requestId: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    // Not JSON (a proxy page, plain text): keep a short, single-line excerpt.
    return { message: excerpt(trimmed), detail: undefined, requestId: undefined };
  }
  if (typeof parsed === 'string') return { message: excerpt(parsed), detail: undefined, requestId: undefined };
  if (!parsed || typeof parsed !== 'object') return { message: undefined, detail: undefined, requestId: undefined };
  const o = parsed as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
  const message =
    str(o['message']) ?? str(o['title'] && o['detail'] ? `${String(o['title'])}: ${String(o['detail'])}` : undefined) ?? str(o['title']) ?? str(o['detail']) ?? str(o['error']) ?? str(o['error_type']);
  const detail = typeof o['detail'] === 'object' ? o['detail'] : undefined;
  return { message: message === undefined ? undefined : excerpt(message), detail, requestId: str(o['anchore_request_id']) };
}

function excerpt(s: string): string {
  const one = s
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return one.length > 300 ? `${one.slice(0, 300)}…` : one;
}

/** Node's codes for a TLS peer that cannot be verified, each with what to do about it. */
const TLS_CAUSES: ReadonlyArray<[RegExp, string]> = [
  [
    /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE)$/,
    "Anchore's TLS certificate is not signed by a CA the operator trusts: set ANCHORE_CA_FILE to the PEM bundle of the CA that signed it (chart: anchore.caBundle)",
  ],
  [/^ERR_TLS_CERT_ALTNAME_INVALID$/, "Anchore's TLS certificate does not name the host in ANCHORE_URL: use a host name the certificate names (its subjectAltNames)"],
  [/^CERT_HAS_EXPIRED$/, "Anchore's TLS certificate has expired: renew it on the Anchore side"],
  [/^CERT_NOT_YET_VALID$/, "Anchore's TLS certificate is not valid yet: check the clocks of Anchore and this node"],
  [/^(ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)$/, 'the TLS handshake failed: is ANCHORE_URL https:// pointing at a plain-http port (or the reverse)?'],
];

/** The TLS failure behind a network error, as a `tls` AnchoreError naming cause and fix; undefined for other errors. */
export function tlsError(operation: string, err: unknown): AnchoreError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    for (const [re, fix] of TLS_CAUSES) {
      if (re.test(code)) {
        const said = (e as { message?: unknown }).message;
        return new AnchoreError('tls', operation, `${operation}: ${fix} (${code}${typeof said === 'string' && said !== code ? `: ${said}` : ''})`, { cause: err });
      }
    }
  }
  return undefined;
}

/**
 * Anchore refused the credentials themselves: a 401, or the token endpoint refusing the password grant (OAuth). Read
 * structurally, so it serves an AnchoreError, a request event (`kind` = its errorKind) or an error seen by code that
 * does not depend on the Anchore client (the work-queue log).
 */
export function credentialsRefused(e: unknown): boolean {
  const x = e as { kind?: unknown; status?: unknown; operation?: unknown } | null;
  return typeof x === 'object' && x !== null && x.kind === 'auth' && (x.status === 401 || x.operation === 'get_oauth_token');
}
