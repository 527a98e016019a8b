/**
 * What a hosted server's URL and headers (spec.remote) may hold: `$(VAR)`
 * references to spec.env, in Kubernetes' dependent-variable syntax (`$$`
 * escapes a dollar; an unknown name stays as written), and HTTP's rule for
 * header values, checked before anything is sent so a bad value is a
 * manifest or secret problem, never an exception in the proxy.
 */

const REFERENCE = /\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g;

/** `text` with every `$(NAME)` that `value` knows replaced (`$$` becomes `$`). */
export function expandReferences(text: string, value: (name: string) => string | undefined): string {
  return text.replace(REFERENCE, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return value(name) ?? whole;
  });
}

/** The variable names `text` refers to, in order, each once. */
export function referencedNames(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(REFERENCE)) if (match[1] !== undefined) names.add(match[1]);
  return [...names];
}

/**
 * Why `value` cannot be sent as an HTTP header value, or undefined when it
 * can. Node's HTTP client and fetch both refuse these (Node throws on the
 * first request): a line break would also end the header and start another.
 */
export function headerValueFlaw(value: string): string | undefined {
  let flaw: string | undefined;
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code === 0x0d || code === 0x0a) return 'a line break';
    if (code === 0) flaw ??= 'a NUL byte';
    else if ((code < 0x20 && code !== 0x09) || code === 0x7f) flaw ??= 'a control character';
    else if (code > 0xff) flaw ??= 'a character past U+00FF';
  }
  return flaw;
}

/** The same rule as a pattern, for the JSON Schema: tab, printable ASCII and Latin-1. */
export const HEADER_VALUE = /^[\t -~\u0080-\u00ff]*$/;

export const HEADER_VALUE_RULE = 'must be one line of text that HTTP can carry: no line break, NUL or other control character, nothing past U+00FF';

/**
 * How apiary names a hosted server in status, events and logs: its URL's
 * origin and path as the manifest writes them, `$(VAR)` unexpanded, without
 * user info, query or fragment (where keys are usually put).
 */
export function remoteLabel(template: string): string {
  const parts = /^(https?:\/\/)(?:[^/?#@]*@)?([^/?#]*)([^?#]*)/.exec(template);
  return parts === null ? 'spec.remote.url' : `${parts[1]}${parts[2]}${parts[3]}`;
}

/** The host (and port) of a label, as written. */
export function remoteLabelHost(label: string): string {
  return label.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/**
 * `text` with every secret value put into a hosted server's URL or headers
 * replaced by [redacted], as written and percent-encoded (a server's error
 * may quote the URL it was asked for).
 */
export function withoutSecrets(text: string, secrets: readonly string[]): string {
  const forms = [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s)]))].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return forms.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

/**
 * withoutSecrets, catching each value as JSON escapes it too: what a server
 * wrote (a server that prints its environment) may quote a value inside a
 * JSON string. The runtime shows a failed run's last line through it.
 */
export function redactValues(text: string, values: readonly string[]): string {
  return withoutSecrets(text, values.flatMap((value) => [value, JSON.stringify(value).slice(1, -1)]));
}
