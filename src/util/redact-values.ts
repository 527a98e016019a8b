/**
 * Known values taken out of a text before it is shown: what a server wrote
 * may hold the secrets it was given (a server that prints its environment),
 * and whoever handed them over knows them. At the bottom, beside redactUrl,
 * because the runtime (which reads the output) uses it.
 */

export const REDACTED = '[redacted]';

/**
 * Every occurrence of each value, as written or as JSON and URLs escape it,
 * replaced with [redacted]; the longest first, so a value that holds another
 * is never half shown. Empty values are no secret.
 */
export function redactValues(text: string, values: readonly string[]): string {
  const forms = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    forms.add(value);
    forms.add(JSON.stringify(value).slice(1, -1));
    forms.add(encodeURIComponent(value));
  }
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) out = out.split(form).join(REDACTED);
  return out;
}
