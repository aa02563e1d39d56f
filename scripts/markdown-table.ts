/** Generated Markdown tables kept between two marker comments (scripts/helm-docs.ts, scripts/readme-settings.ts). */

/** A value as one table cell: a `|` would end the cell and a newline the row. */
export const tableCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Replaces the table between the markers; throws when the markers are missing. */
export function withTableBetween(text: string, table: string, start: string, end: string): string {
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README has no "${start}" … "${end}" markers`);
  return `${text.slice(0, a + start.length)}\n${table}\n${text.slice(b)}`;
}
