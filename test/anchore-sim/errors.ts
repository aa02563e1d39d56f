// The three error body shapes an Anchore client meets (see the contract doc §3): the engine helper's
// {message, httpcode, detail}, the spec's ApiErrorResponse {code, error_type, message, detail}, and the web
// framework's RFC 7807 problem+json for unknown URLs and wrong methods.
import type { ErrorShape } from './types.ts';

/** An error answered with the configured Anchore error shape. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly detail: Record<string, unknown>;
  readonly headers: Record<string, string>;
  /** Extra top-level members (e.g. the RFC 6749 `error` code of the OAuth endpoint). */
  readonly extra: Record<string, unknown>;

  constructor(status: number, message: string, detail: Record<string, unknown> = {}, opts: { headers?: Record<string, string>; extra?: Record<string, unknown> } = {}) {
    super(message);
    this.status = status;
    this.detail = detail;
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
  }
}

/** An error answered as application/problem+json, the way the framework answers routing failures. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly status: number;
  readonly title: string;
  readonly headers: Record<string, string>;

  constructor(status: number, title: string, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.title = title;
    this.headers = headers;
  }
}

const ERROR_TYPES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'gateway_timeout',
};

/** Picks the shape for each error body; `alternate` flips on every call. */
export class ErrorShaper {
  private flip = false;
  private readonly shape: ErrorShape;

  constructor(shape: ErrorShape) {
    this.shape = shape;
  }

  /** The body for an error in the configured shape. */
  body(status: number, message: string, detail: Record<string, unknown> = {}, requestId?: string): Record<string, unknown> {
    let useSpec: boolean;
    if (this.shape === 'alternate') {
      useSpec = this.flip;
      this.flip = !this.flip;
    } else {
      useSpec = this.shape === 'spec';
    }
    if (useSpec) {
      return { code: status, error_type: ERROR_TYPES[status] ?? 'error', message, detail };
    }
    const body: Record<string, unknown> = { message, httpcode: status, detail: { error_codes: [], ...detail } };
    if (requestId !== undefined) body.anchore_request_id = requestId;
    return body;
  }
}

/** The problem+json body for a routing failure. */
export function problemBody(status: number, title: string, detail: string): Record<string, unknown> {
  return { type: 'about:blank', title, status, detail };
}

/** The framework's 404 text for an unknown URL. */
export const NOT_FOUND_DETAIL = 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';
