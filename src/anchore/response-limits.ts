/**
 * How much of Anchore's answers the client may hold in memory: a cap per operation, sized to what that endpoint really
 * returns, and one budget shared by every answer being read at once. docs/anchore-contract.md ("How large an answer may
 * be") explains each number; a unit test keeps that table and this one the same.
 */

const MiB = 1024 * 1024;

/**
 * Largest 2xx body read per operation (its operationId). A larger one fails the call with a `protocol` error naming the
 * limit; a body announced larger by content-length is not read at all.
 */
export const RESPONSE_LIMITS: Readonly<Record<string, number>> = {
  version_check: 1 * MiB,
  get_oauth_token: 1 * MiB,
  openapi: 16 * MiB,
  list_images: 64 * MiB,
  get_image: 4 * MiB,
  add_image: 4 * MiB,
  list_policies: 4 * MiB,
  get_policy: 4 * MiB,
  get_image_policy_check_by_digest: 32 * MiB,
  get_image_vulnerabilities_by_digest: 32 * MiB,
  reports_graphql: 8 * MiB,
  register_integration: 1 * MiB,
  handle_health_report: 1 * MiB,
  post_kubernetes_inventory: 1 * MiB,
};

/** An operation the table does not name. */
export const DEFAULT_RESPONSE_LIMIT = 8 * MiB;

/** Error answers (non-2xx) are read only this far; a longer one is classified by its status alone. */
export const ERROR_BODY_LIMIT = 1 * MiB;

/**
 * Bytes of answers held at once, whatever Anchore sends, for the whole process. Sized for the chart's 512 MiB memory
 * limit: see docs/anchore-contract.md for the arithmetic.
 */
export const DEFAULT_RESPONSE_BUDGET = 96 * MiB;

export function responseLimit(operation: string): number {
  return RESPONSE_LIMITS[operation] ?? DEFAULT_RESPONSE_LIMIT;
}

export function formatBytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
