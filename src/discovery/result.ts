/**
 * The outcome of parsing or compiling untrusted input (pod specs, kubelet status, operator config).
 *
 * Discovery code never throws on bad input: one malformed pod among 10,000 must not abort a
 * reconcile, and the `reason` is shown to cluster admins, so it has to say what to fix.
 */
export type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Wraps a successful value. */
export const ok = <T>(value: T): Result<T> => ({ ok: true, value });

/** Wraps a failure; `reason` should name the offending input and what is wrong with it. */
export const fail = <T = never>(reason: string): Result<T> => ({ ok: false, reason });
