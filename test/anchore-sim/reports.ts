// POST /v2/reports/graphql: the two queries of Anchore's Reports API the operator uses, `metrics` and `metricData`,
// each paginated with `pageInfo { nextToken count }` and a `nextToken` argument. Not a GraphQL engine: the query
// text is recognised by its root field and its arguments are read from the inline literal or from `variables`.

export interface ReportMetric {
  id: string;
  name: string;
  description: string;
  metricType: string;
}

export interface GraphqlBody {
  query?: unknown;
  variables?: unknown;
}

export interface GraphqlReply {
  data: Record<string, unknown> | null;
  errors?: Array<{ message: string }>;
}

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown'];

/** The metric catalogue: vulnerabilities by severity across the account's analysed tags, plus analysed tag count. */
export function reportMetricCatalogue(): ReportMetric[] {
  return [
    ...SEVERITIES.map((s) => ({
      id: `vulnerabilities.tags.all.${s}`,
      name: `${s[0]?.toUpperCase()}${s.slice(1)} vulnerabilities (all tags)`,
      description: `Number of ${s} vulnerabilities across all analyzed tags`,
      metricType: 'counter',
    })),
    { id: 'tags.analyzed.all', name: 'Analyzed tags', description: 'Number of analyzed tags', metricType: 'counter' },
  ];
}

function stringArg(query: string, variables: Record<string, unknown>, name: string): string | undefined {
  const v = variables[name];
  if (typeof v === 'string') return v;
  const m = new RegExp(`${name}\\s*:\\s*"([^"]*)"`).exec(query);
  return m?.[1];
}

function encodeToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64');
}

function decodeToken(token: string | undefined): number | 'invalid' {
  if (!token) return 0;
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64').toString('utf8'));
  return m ? Number(m[1]) : 'invalid';
}

function page<T>(items: T[], token: string | undefined, size: number): { results: T[]; pageInfo: { nextToken: string | null; count: number } } | 'invalid' {
  const offset = decodeToken(token);
  if (offset === 'invalid') return 'invalid';
  const results = items.slice(offset, offset + size);
  const next = offset + size < items.length ? encodeToken(offset + size) : null;
  return { results, pageInfo: { nextToken: next, count: results.length } };
}

/**
 * Answers one GraphQL request. `values` gives the current value of each metric id for the account; metricData returns
 * one point per hour inside [start, end] (reports data lags the REST API, so the newest point is the last full hour).
 */
export function answerReportsGraphql(body: GraphqlBody, values: Record<string, number>, now: number, pageSize: number): GraphqlReply {
  const query = typeof body.query === 'string' ? body.query : '';
  const variables = body.variables && typeof body.variables === 'object' ? (body.variables as Record<string, unknown>) : {};
  if (!query.trim()) return { data: null, errors: [{ message: 'Must provide query string.' }] };
  const nextToken = stringArg(query, variables, 'nextToken');
  if (/\bmetricData\s*\(/.test(query)) {
    const filter = (variables['filter'] && typeof variables['filter'] === 'object' ? variables['filter'] : {}) as Record<string, unknown>;
    const metricId = typeof filter['metricId'] === 'string' ? filter['metricId'] : stringArg(query, variables, 'metricId');
    const start = typeof filter['start'] === 'string' ? filter['start'] : stringArg(query, variables, 'start');
    const end = typeof filter['end'] === 'string' ? filter['end'] : stringArg(query, variables, 'end');
    if (!metricId) return { data: null, errors: [{ message: 'metricData: filter.metricId is required' }] };
    if (!(metricId in values)) return { data: { metricData: null }, errors: [{ message: `Unknown metric id: ${metricId}` }] };
    const from = start ? Date.parse(start.endsWith('Z') ? start : `${start}Z`) : now - 24 * 3_600_000;
    const to = end ? Date.parse(end.endsWith('Z') ? end : `${end}Z`) : now;
    if (Number.isNaN(from) || Number.isNaN(to)) return { data: null, errors: [{ message: 'metricData: start and end must be ISO 8601 date-times' }] };
    const lastHour = Math.floor(Math.min(to, now) / 3_600_000) * 3_600_000;
    const points: Array<{ collectedAt: string; value: number }> = [];
    for (let t = Math.ceil(from / 3_600_000) * 3_600_000; t <= lastHour; t += 3_600_000) {
      points.push({ collectedAt: new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z'), value: values[metricId] ?? 0 });
    }
    const p = page(points, nextToken, pageSize);
    if (p === 'invalid') return { data: null, errors: [{ message: 'Invalid nextToken' }] };
    return { data: { metricData: p } };
  }
  if (/\bmetrics\b/.test(query)) {
    const p = page(reportMetricCatalogue(), nextToken, pageSize);
    if (p === 'invalid') return { data: null, errors: [{ message: 'Invalid nextToken' }] };
    return { data: { metrics: p } };
  }
  return { data: null, errors: [{ message: 'Unsupported query: the simulator answers `metrics` and `metricData`' }] };
}
