import { describe, expect, it } from '@jest/globals';
import { allOf, isDateTime, type Schema, validate } from './schema.ts';

const paths = (schema: Schema, v: unknown, dir: 'request' | 'response' = 'response'): string[] => validate(schema, v, dir).map((x) => `${x.path}: ${x.message}`);

describe('schema validator', () => {
  it('when a scalar has the wrong type, then the path and both types are named', () => {
    expect(paths({ type: 'string' }, 1)).toEqual(['$: must be a string, got integer']);
    expect(paths({ type: 'integer' }, 1.5)).toEqual(['$: must be an integer, got 1.5']);
    expect(paths({ type: 'number' }, Number.NaN)).toEqual(['$: must be a number, got number']);
    expect(paths({ type: 'boolean' }, 'true')).toEqual(['$: must be a boolean, got string']);
  });

  it('when null is given, then only nullable schemas, NullType and anyOf with NullType accept it', () => {
    expect(paths({ type: 'string' }, null)).toEqual(['$: must be string, got null (not nullable in the spec)']);
    expect(paths({ type: 'string', nullable: true }, null)).toEqual([]);
    expect(paths({ type: 'null' }, null)).toEqual([]);
    expect(paths({ anyOf: [{ type: 'null' }, { type: 'object', properties: {} }] }, null)).toEqual([]);
    expect(paths({ anyOf: [{ type: 'null' }, { type: 'object', properties: {} }] }, 'x')).toEqual(['$: matches none of 2 alternatives (got string)']);
  });

  it('when strings break enum, length, pattern or format, then each is reported', () => {
    expect(paths({ type: 'string', enum: ['go', 'stop'] }, 'STOP')).toEqual(['$: must be one of go, stop, got "STOP"']);
    expect(paths({ type: 'string', minLength: 2, maxLength: 3 }, 'a')).toEqual(['$: must be at least 2 characters long']);
    expect(paths({ type: 'string', minLength: 2, maxLength: 3 }, 'abcd')).toEqual(['$: must be at most 3 characters long']);
    expect(paths({ type: 'string', pattern: '^sha256:[a-f0-9]{64}$' }, 'sha256:abc')).toHaveLength(1);
    expect(paths({ type: 'string', format: 'uuid' }, 'not-a-uuid')).toEqual(['$: must be a UUID, got "not-a-uuid"']);
    expect(paths({ type: 'string', format: 'uuid' }, '0b6c0f9e-1d2a-4c3b-8e4f-5a6b7c8d9e0f')).toEqual([]);
    // The spec's own misspellings of date-time are date-times too.
    for (const format of ['date-time', 'datetime', 'data-time'] as const) {
      expect(paths({ type: 'string', format }, '2026-12-01T10:00:00Z')).toEqual([]);
      expect(paths({ type: 'string', format }, '2026-12-01 10:00:00')).toHaveLength(1);
    }
  });

  it('isDateTime wants RFC 3339 with a zone and a real instant', () => {
    expect(isDateTime('2026-12-01T10:00:00.123+01:00')).toBe(true);
    expect(isDateTime('2026-12-01T10:00:00')).toBe(false);
    expect(isDateTime('2026-13-45T10:00:00Z')).toBe(false);
  });

  it('when numbers leave their range or int32, then it is reported', () => {
    const interval: Schema = { type: 'integer', minimum: 30, maximum: 600 };
    expect(paths(interval, 29)).toEqual(['$: must be ≥ 30, got 29']);
    expect(paths(interval, 601)).toEqual(['$: must be ≤ 600, got 601']);
    expect(paths(interval, 30)).toEqual([]);
    expect(paths({ type: 'integer', format: 'int32' }, 2 ** 31)).toEqual([`$: must fit in int32, got ${2 ** 31}`]);
  });

  it('when objects miss required members or carry unknown ones, then requests tolerate extras and responses do not', () => {
    const o: Schema = { type: 'object', required: ['name'], properties: { name: { type: 'string' }, n: { type: 'integer' } } };
    expect(paths(o, { n: 1 })).toEqual(['$.name: is required']);
    expect(paths(o, { name: 'a', n: undefined })).toEqual([]);
    expect(paths(o, { name: 'a', extra: 1 }, 'request')).toEqual([]);
    expect(paths(o, { name: 'a', extra: 1 }, 'response')).toEqual(['$.extra: is not a member the spec defines']);
    expect(paths({ ...o, additionalProperties: false }, { name: 'a', extra: 1 }, 'request')).toEqual(['$.extra: is not a member the spec defines']);
    expect(paths({ type: 'object', additionalProperties: true }, { anything: [1] })).toEqual([]);
  });

  it('when a map has a value schema, then every value is checked under a quoted key', () => {
    const m: Schema = { type: 'object', additionalProperties: { type: 'integer' } };
    expect(paths(m, { 'team-a': 1, 'team b': 'x' })).toEqual(['$["team b"]: must be an integer, got string']);
  });

  it('when arrays hold wrong items, then each is reported with its index', () => {
    expect(paths({ type: 'array', items: { type: 'string' } }, ['a', 2, 'c', false])).toEqual(['$[1]: must be a string, got integer', '$[3]: must be a string, got boolean']);
    expect(paths({ type: 'array', items: { type: 'string' } }, {})).toEqual(['$: must be an array, got object']);
  });

  it('allOf joins members and required lists', () => {
    const joined = allOf({ type: 'object', required: ['a'], properties: { a: { type: 'string' } } }, { type: 'object', required: ['b', 'a'], properties: { b: { type: 'integer' } } });
    expect(joined.required).toEqual(['a', 'b']);
    expect(paths(joined, { a: 'x' })).toEqual(['$.b: is required']);
  });
});
