// A small JSON-Schema subset (the part of OpenAPI 3.0 that Anchore's V2 spec uses for the operations the operator
// calls) with a validator, and a type-level `Infer` so the operator's TypeScript types can be checked against the
// same schemas at compile time (see types-match.test.ts).

/** Formats the V2 spec uses. `datetime` and `data-time` are the spec's own misspellings of `date-time`. */
export type StringFormat = 'date-time' | 'datetime' | 'data-time' | 'uuid' | 'path';

export interface StringSchema {
  readonly type: 'string';
  readonly format?: StringFormat;
  readonly enum?: readonly string[];
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly nullable?: boolean;
}

export interface NumberSchema {
  readonly type: 'integer' | 'number';
  readonly format?: 'int32';
  readonly minimum?: number;
  readonly maximum?: number;
  readonly nullable?: boolean;
}

export interface BooleanSchema {
  readonly type: 'boolean';
  readonly nullable?: boolean;
}

export interface ArraySchema {
  readonly type: 'array';
  readonly items: Schema;
  readonly nullable?: boolean;
}

export interface ObjectSchema {
  readonly type: 'object';
  readonly properties?: { readonly [name: string]: Schema };
  readonly required?: readonly string[];
  /**
   * false: no other members (the spec says so). A schema: a map whose values follow it. true: free-form members
   * (the spec's `properties: {}` objects such as `annotations` and error `detail`). Unset: the members the spec
   * lists, and — only where the value is a request — anything else, which Anchore tolerates (k8s-inventory sends
   * `serverVersionMetadata`). A response of the simulator never carries a member the spec does not define.
   */
  readonly additionalProperties?: boolean | Schema;
  readonly nullable?: boolean;
}

/** The spec's `anyOf: [NullType, $ref X]`: X or null. */
export interface AnyOfSchema {
  readonly anyOf: readonly Schema[];
}

/** The spec's NullType (`enum: [null]`). */
export interface NullSchema {
  readonly type: 'null';
}

export type Schema = StringSchema | NumberSchema | BooleanSchema | ArraySchema | ObjectSchema | AnyOfSchema | NullSchema;

/** Where a value goes: a request body the server reads, or a response body the server writes. */
export type Direction = 'request' | 'response';

export interface Violation {
  /** JSON path of the offending value, e.g. `$.health_data.account_k8s_inventory_reports.admin.batches[0].batch_index`. */
  path: string;
  message: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** True for an RFC 3339 date-time that also names a real instant. */
export function isDateTime(v: string): boolean {
  return RFC3339.test(v) && !Number.isNaN(Date.parse(v));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function memberPath(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

const patternCache = new Map<string, RegExp>();
function compiled(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

/**
 * Validates `value` against `schema` and returns every violation found (empty when it conforms).
 * Members with value `undefined` count as absent, as JSON.stringify would drop them.
 */
export function validate(schema: Schema, value: unknown, direction: Direction, path = '$'): Violation[] {
  const out: Violation[] = [];
  check(schema, value, direction, path, out);
  return out;
}

function check(schema: Schema, value: unknown, direction: Direction, path: string, out: Violation[]): void {
  if ('anyOf' in schema) {
    for (const s of schema.anyOf) if (validate(s, value, direction, path).length === 0) return;
    out.push({ path, message: `matches none of ${schema.anyOf.length} alternatives (got ${typeName(value)})` });
    return;
  }
  if (schema.type === 'null') {
    if (value !== null) out.push({ path, message: `must be null, got ${typeName(value)}` });
    return;
  }
  if (value === null) {
    if (schema.nullable !== true) out.push({ path, message: `must be ${schema.type}, got null (not nullable in the spec)` });
    return;
  }
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') {
        out.push({ path, message: `must be a string, got ${typeName(value)}` });
        return;
      }
      if (schema.enum !== undefined && !schema.enum.includes(value)) out.push({ path, message: `must be one of ${schema.enum.join(', ')}, got ${JSON.stringify(value)}` });
      if (schema.minLength !== undefined && value.length < schema.minLength) out.push({ path, message: `must be at least ${schema.minLength} characters long` });
      if (schema.maxLength !== undefined && value.length > schema.maxLength) out.push({ path, message: `must be at most ${schema.maxLength} characters long` });
      if (schema.pattern !== undefined && !compiled(schema.pattern).test(value)) out.push({ path, message: `must match ${schema.pattern}, got ${JSON.stringify(value)}` });
      if (schema.format === 'date-time' || schema.format === 'datetime' || schema.format === 'data-time') {
        if (!isDateTime(value)) out.push({ path, message: `must be an RFC 3339 date-time, got ${JSON.stringify(value)}` });
      } else if (schema.format === 'uuid' && !UUID.test(value)) {
        out.push({ path, message: `must be a UUID, got ${JSON.stringify(value)}` });
      }
      return;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        out.push({ path, message: `must be ${schema.type === 'integer' ? 'an integer' : 'a number'}, got ${typeName(value)}` });
        return;
      }
      if (schema.type === 'integer' && !Number.isInteger(value)) out.push({ path, message: `must be an integer, got ${value}` });
      if (schema.format === 'int32' && (value < -2147483648 || value > 2147483647)) out.push({ path, message: `must fit in int32, got ${value}` });
      if (schema.minimum !== undefined && value < schema.minimum) out.push({ path, message: `must be ≥ ${schema.minimum}, got ${value}` });
      if (schema.maximum !== undefined && value > schema.maximum) out.push({ path, message: `must be ≤ ${schema.maximum}, got ${value}` });
      return;
    case 'boolean':
      if (typeof value !== 'boolean') out.push({ path, message: `must be a boolean, got ${typeName(value)}` });
      return;
    case 'array':
      if (!Array.isArray(value)) {
        out.push({ path, message: `must be an array, got ${typeName(value)}` });
        return;
      }
      for (let i = 0; i < value.length; i++) check(schema.items, value[i], direction, `${path}[${i}]`, out);
      return;
    case 'object': {
      if (!isPlainObject(value)) {
        out.push({ path, message: `must be an object, got ${typeName(value)}` });
        return;
      }
      const props = schema.properties ?? {};
      for (const r of schema.required ?? []) {
        if (value[r] === undefined) out.push({ path: memberPath(path, r), message: 'is required' });
      }
      const extra = schema.additionalProperties;
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        const p = props[k];
        if (p !== undefined) check(p, v, direction, memberPath(path, k), out);
        else if (typeof extra === 'object') check(extra, v, direction, memberPath(path, k), out);
        else if (extra === false || (extra === undefined && direction === 'response')) {
          out.push({ path: memberPath(path, k), message: 'is not a member the spec defines' });
        }
      }
      return;
    }
  }
}

/** One object schema with the members of several (the spec's allOf). `required` lists are joined. */
export function allOf(...parts: readonly ObjectSchema[]): ObjectSchema {
  const properties: Record<string, Schema> = {};
  const required: string[] = [];
  for (const p of parts) {
    Object.assign(properties, p.properties);
    required.push(...(p.required ?? []));
  }
  return { type: 'object', properties, required: [...new Set(required)] };
}

// ---- Types from schemas (compile-time only) ----

type NullIf<S> = S extends { readonly nullable: true } ? null : never;
type RequiredKeys<S> = S extends { readonly required: readonly (infer R)[] } ? R & string : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<P, R extends string> = Simplify<{ -readonly [K in keyof P as K extends R ? K : never]: Infer<P[K]> } & { -readonly [K in keyof P as K extends R ? never : K]?: Infer<P[K]> }>;

/** The TypeScript type of the values a schema accepts. */
export type Infer<S> = S extends { readonly anyOf: readonly (infer A)[] }
  ? Infer<A>
  : S extends { readonly type: 'null' }
    ? null
    : S extends { readonly type: 'string'; readonly enum: readonly (infer E)[] }
      ? E | NullIf<S>
      : S extends { readonly type: 'string' }
        ? string | NullIf<S>
        : S extends { readonly type: 'integer' | 'number' }
          ? number | NullIf<S>
          : S extends { readonly type: 'boolean' }
            ? boolean | NullIf<S>
            : S extends { readonly type: 'array'; readonly items: infer I }
              ? Infer<I>[] | NullIf<S>
              : S extends { readonly type: 'object'; readonly properties: infer P }
                ? ObjectOf<P, RequiredKeys<S>> | NullIf<S>
                : S extends { readonly type: 'object'; readonly additionalProperties: infer V extends Schema }
                  ? Record<string, Infer<V>> | NullIf<S>
                  : S extends { readonly type: 'object' }
                    ? Record<string, unknown> | NullIf<S>
                    : never;
