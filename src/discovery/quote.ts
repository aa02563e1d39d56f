/**
 * Quotes untrusted text for use inside a failure reason.
 *
 * JSON quoting escapes control characters and quotes, so a reference containing a newline or an
 * ANSI escape cannot forge log lines; long inputs (up to 4096 characters are accepted elsewhere)
 * are shortened so one bad pod cannot flood a log line or a status condition.
 */
export function quote(text: string, max = 120): string {
  const shown = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(shown);
}
