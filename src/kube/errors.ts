/**
 * Typed Kubernetes API errors, the cluster port's counterpart of AnchoreError (src/anchore/errors.ts). Callers decide
 * from `kind`, never from status codes or casts: the HTTP status and the apiserver's Status reason are read here, once.
 * - not-found: 404 (the object, or the resource itself when its CRD is not installed).
 * - conflict: 409, a stale resourceVersion (Conflict) or a create of a name that exists (AlreadyExists; see `reason`).
 * - gone: 410, a resourceVersion too old to list or watch from (Gone, Expired): relist.
 * - invalid: 422, the apiserver refused the object as invalid (its validation, the CRD schema).
 * - bad-request: 400, a request the apiserver could not decode.
 * - unauthorized: 401, the credentials were not accepted.
 * - forbidden: 403, RBAC (or an admission rule) denies the request.
 * - rejected: any other 4xx (405, 413, 415, …): the apiserver refused the request; retrying the same one will not help.
 * - unavailable: no answer (network error, timeout), 429 or a 5xx: the apiserver, or the path to it, is busy or down.
 * - unknown: an answer that is none of the above.
 */
export type KubeErrorKind = 'not-found' | 'conflict' | 'gone' | 'invalid' | 'bad-request' | 'unauthorized' | 'forbidden' | 'rejected' | 'unavailable' | 'unknown';

/** The kind of an apiserver answer: its HTTP status (undefined: no answer) and, where the status is ambiguous, its Status reason. */
export function kubeErrorKind(status: number | undefined, reason?: string): KubeErrorKind {
  if (status === undefined || status === 0) return 'unavailable';
  if (reason === 'Expired' || reason === 'Gone') return 'gone';
  switch (status) {
    case 400:
      return 'bad-request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 422:
      return 'invalid';
    case 429:
      return 'unavailable';
  }
  if (status >= 500 && status < 600) return 'unavailable';
  if (status >= 400 && status < 500) return 'rejected';
  return 'unknown';
}

export class KubeError extends Error {
  override readonly name = 'KubeError';
  readonly kind: KubeErrorKind;
  /** HTTP status; undefined when there was no answer. */
  readonly status: number | undefined;
  /** The apiserver's Status reason (NotFound, Conflict, AlreadyExists, Invalid, …), or Unknown. */
  readonly reason: string;

  constructor(status: number | undefined, reason: string, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = status;
    this.reason = reason;
    this.kind = kubeErrorKind(status, reason);
  }

  /** The apiserver answered and refused this request (a 4xx other than 429): sending it again will not help. */
  get refused(): boolean {
    return this.kind !== 'unavailable' && this.kind !== 'unknown';
  }
}

/** Whether `err` is a KubeError (of one of `kinds`, when given). */
export function isKubeError(err: unknown, ...kinds: KubeErrorKind[]): err is KubeError {
  return err instanceof KubeError && (kinds.length === 0 || kinds.includes(err.kind));
}
