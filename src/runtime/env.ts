/**
 * A server's environment is built, never inherited whole (DESIGN.md section 1):
 * an allowlist of the controller's own variables plus the declared ones.
 */
const INHERITED = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  'LANG',
  'TZ',
  'TMPDIR',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
]);
const PROXY = new Set(['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']);

export function isInherited(name: string): boolean {
  return INHERITED.has(name) || name.startsWith('LC_') || PROXY.has(name.toUpperCase());
}

/** The controller's variables a server inherits (compute once: reading process.env is slow). */
export function inheritedEnvironment(parent: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && isInherited(name)) env[name] = value;
  }
  return env;
}

/** The inherited allowlist, then the declared variables (which win). */
export function buildEnvironment(inherited: Readonly<Record<string, string>>, declared: Iterable<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = { ...inherited };
  for (const [name, value] of declared) env[name] = value;
  return env;
}
