// Checks one exchange against the contract table: the request as the server receives it (path parameters, query,
// media type, body) and the response as the server sends it.
import type { OperationContract, ParamContract } from './operations.ts';
import { type Violation, validate } from './schema.ts';
import { ErrorBody } from './spec.ts';

/** One contract violation seen by the simulator. */
export interface ContractViolation {
  direction: 'request' | 'response';
  operationId: string;
  method: string;
  path: string;
  /** Response violations only. */
  status?: number;
  violations: Violation[];
}

/** A request as the simulator parsed it. */
export interface RequestFacts {
  params: Record<string, string>;
  query: Record<string, string>;
  /** Lower-cased media type without parameters; '' when there is no Content-Type. */
  contentType: string;
  /** Bytes of body received. */
  bodyBytes: number;
  /** Parsed body (JSON or form); undefined when it could not be parsed. */
  body: unknown;
  /** False when a JSON body did not parse. */
  parsed: boolean;
}

/** Converts a query string value to the type its schema names, or says why it cannot. */
function queryValue(name: string, raw: string, p: ParamContract): { value: unknown } | { problem: string } {
  switch (p.schema.type) {
    case 'boolean':
      // Connexion reads true/false in any case; nothing else is a boolean.
      if (/^true$/i.test(raw)) return { value: true };
      if (/^false$/i.test(raw)) return { value: false };
      return { problem: `must be true or false, got ${JSON.stringify(raw)}` };
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) return { problem: `must be a ${p.schema.type}, got ${JSON.stringify(raw)}` };
      return { value: n };
    }
    default:
      return { value: raw };
  }
}

/** Everything wrong with a request; empty when it conforms. */
export function checkRequest(op: OperationContract, req: RequestFacts): Violation[] {
  const out: Violation[] = [];
  for (const [name, schema] of Object.entries(op.pathParams ?? {})) {
    const v = req.params[name];
    if (v === undefined) continue;
    for (const x of validate(schema, v, 'request', `path.${name}`)) out.push(x);
  }
  const declared = op.query ?? {};
  const extra = Object.keys(req.query).filter((k) => !(k in declared));
  if (extra.length > 0) out.push({ path: 'query', message: `Extra query parameter(s) ${extra.join(', ')} not in spec` });
  for (const [name, p] of Object.entries(declared)) {
    const raw = req.query[name];
    if (raw === undefined) {
      if (p.required === true) out.push({ path: `query.${name}`, message: 'is required' });
      continue;
    }
    const conv = queryValue(name, raw, p);
    if ('problem' in conv) out.push({ path: `query.${name}`, message: conv.problem });
    else for (const x of validate(p.schema, conv.value, 'request', `query.${name}`)) out.push(x);
  }
  const body = op.body;
  if (body === undefined) {
    if (req.bodyBytes > 0) out.push({ path: 'body', message: 'this operation takes no request body' });
    return out;
  }
  if (req.bodyBytes === 0) {
    if (body.required) out.push({ path: 'body', message: `a ${body.media} body is required` });
    return out;
  }
  if (req.contentType !== body.media) {
    out.push({ path: 'content-type', message: `must be ${body.media}, got ${req.contentType === '' ? '(none)' : req.contentType}` });
    return out;
  }
  if (!req.parsed) {
    out.push({ path: 'body', message: 'is not valid JSON' });
    return out;
  }
  for (const x of validate(body.schema, req.body, 'request')) out.push(x);
  if (out.length === 0 && op.rules !== undefined) for (const x of op.rules(req.body)) out.push(x);
  return out;
}

/** Everything wrong with a response; empty when it conforms. `body` is undefined when the response has none. */
export function checkResponse(op: OperationContract, status: number, body: unknown): Violation[] {
  if (status >= 400) {
    return body === undefined ? [] : validate(ErrorBody, body, 'response');
  }
  if (!(status in op.success)) {
    return [{ path: 'status', message: `${status} is not a success status of ${op.operationId} (spec: ${Object.keys(op.success).join(', ')})` }];
  }
  const schema = op.success[status];
  if (schema === null || schema === undefined) {
    return body === undefined ? [] : [{ path: 'body', message: `${op.operationId} answers ${status} without a body` }];
  }
  if (body === undefined) return [{ path: 'body', message: `${op.operationId} answers ${status} with a body` }];
  return validate(schema, body, 'response');
}

/** One line naming the first few violations, for error messages and logs. */
export function describeViolations(vs: readonly Violation[], max = 3): string {
  const shown = vs.slice(0, max).map((v) => `${v.path} ${v.message}`);
  return vs.length > max ? `${shown.join('; ')} (and ${vs.length - max} more)` : shown.join('; ');
}
