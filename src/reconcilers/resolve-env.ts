/**
 * Resolves an MCPServer's environment against its secrets (DESIGN.md
 * section 3): every problem is named with the secret, the key and the
 * variable, and a server with any problem is never started with a partial
 * environment. `optional: true` skips silently.
 */
import type { MCPServerSpec } from '../api/manifests.js';
import { expandReferences, headerValueFlaw, referencedNames } from '../api/remote.js';
import type { SecretValue } from '../crypto/secret-value.js';
import type { NamedSecret } from '../api/secret-redactor.js';
import type { SecretLookup } from './secret-resolver.js';

export type SecretProblemReason = 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretDecryptFailed' | 'SecretValueInvalid';

export interface SecretProblem {
  reason: SecretProblemReason;
  secret: string;
  message: string;
}

export interface ResolvedEnv {
  /** In order: envFrom first, then env (a later entry wins). */
  vars: [string, string | SecretValue][];
  problems: SecretProblem[];
  /** Secret versions used, for the configuration fingerprint. */
  referenced: string[];
  /** Every secret value the server is given, with its secret and key: what the gateway keeps out of its responses. */
  secrets: NamedSecret[];
}

/** Where a variable's value came from, to name the secret and key in a problem. */
interface Origin {
  secret: string;
  key: string;
  needed: string;
}

export async function resolveEnv(spec: MCPServerSpec, lookup: (name: string) => Promise<SecretLookup>): Promise<ResolvedEnv> {
  const vars: [string, string | SecretValue][] = [];
  const problems: SecretProblem[] = [];
  const referenced = new Set<string>();
  const origins = new Map<string, Origin>();
  const secrets: NamedSecret[] = [];

  for (const source of spec.envFrom ?? []) {
    const ref = source.secretRef;
    const found = await lookup(ref.name);
    referenced.add(ref.name);
    const needed = `needed for envFrom${source.prefix ? ` with prefix ${source.prefix}` : ''}`;
    if (found.state !== 'ok') {
      if (ref.optional !== true) problems.push(missing(ref.name, found, needed));
      continue;
    }
    for (const entry of [...found.entries.values()].sort((a, b) => a.key.localeCompare(b.key))) {
      const variable = `${source.prefix ?? ''}${entry.key}`;
      if (entry.value === undefined) {
        if (ref.optional !== true) problems.push(decryptFailed(ref.name, entry.error?.message, needed));
      } else if (!passable(entry.value)) {
        problems.push(unpassable(ref.name, entry.key, `needed for env ${variable} from envFrom`));
      } else {
        vars.push([variable, entry.value]);
        secrets.push({ secret: ref.name, key: entry.key, value: entry.value.reveal() });
        origins.set(variable, { secret: ref.name, key: entry.key, needed: `needed for env ${variable} from envFrom` });
      }
    }
  }

  for (const env of spec.env ?? []) {
    const ref = env.valueFrom?.secretKeyRef;
    if (ref === undefined) {
      vars.push([env.name, env.value ?? '']);
      continue;
    }
    referenced.add(ref.name);
    const needed = `needed for env ${env.name}`;
    const found = await lookup(ref.name);
    if (found.state !== 'ok') {
      if (ref.optional !== true) problems.push(missing(ref.name, found, needed));
      continue;
    }
    const entry = found.entries.get(ref.key);
    if (entry === undefined) {
      if (ref.optional !== true) {
        problems.push({ reason: 'SecretKeyNotFound', secret: ref.name, message: `secret "${ref.name}" has no key "${ref.key}" (${needed})` });
      }
      continue;
    }
    if (entry.value === undefined) {
      if (ref.optional !== true) problems.push(decryptFailed(ref.name, entry.error?.message, needed));
      continue;
    }
    if (!passable(entry.value)) {
      problems.push(unpassable(ref.name, ref.key, needed));
      continue;
    }
    vars.push([env.name, entry.value]);
    secrets.push({ secret: ref.name, key: ref.key, value: entry.value.reveal() });
    origins.set(env.name, { secret: ref.name, key: ref.key, needed });
  }
  if (spec.remote !== undefined) problems.push(...remoteProblems(spec.remote, vars, origins));
  return { vars, problems, referenced: [...referenced].sort(), secrets };
}

/**
 * A secret put into a hosted server's header or URL must leave them sendable:
 * a header value HTTP can carry, a URL that still parses. Refused here, before
 * the gateway sees it, so the reason names the secret and key, never the value.
 */
function remoteProblems(remote: NonNullable<MCPServerSpec['remote']>, vars: ResolvedEnv['vars'], origins: Map<string, Origin>): SecretProblem[] {
  const values = new Map(vars.map(([name, value]) => [name, typeof value === 'string' ? value : value.reveal()]));
  const problems: SecretProblem[] = [];
  for (const header of remote.headers ?? []) {
    for (const name of referencedNames(header.value)) {
      const origin = origins.get(name);
      const flaw = origin === undefined ? undefined : headerValueFlaw(values.get(name) ?? '');
      if (origin === undefined || flaw === undefined) continue;
      problems.push(invalidValue(origin, `holds ${flaw}, which an HTTP header cannot carry (${origin.needed}, used in header ${header.name})`));
    }
  }
  if (!URL.canParse(expandReferences(remote.url, (name) => values.get(name)))) {
    for (const name of referencedNames(remote.url)) {
      const origin = origins.get(name);
      if (origin !== undefined) problems.push(invalidValue(origin, `does not make spec.remote.url a valid URL (${origin.needed})`));
    }
  }
  return problems;
}

function invalidValue(origin: Origin, what: string): SecretProblem {
  return { reason: 'SecretValueInvalid', secret: origin.secret, message: `secret "${origin.secret}" key "${origin.key}" ${what}` };
}

function missing(name: string, found: Exclude<SecretLookup, { state: 'ok' }>, needed: string): SecretProblem {
  const message =
    found.state === 'missing'
      ? `secret "${name}" not found (${needed})`
      : `secret "${name}" is invalid: ${found.message} (${needed})`;
  return { reason: 'SecretNotFound', secret: name, message };
}

function decryptFailed(name: string, detail: string | undefined, needed: string): SecretProblem {
  return { reason: 'SecretDecryptFailed', secret: name, message: `${detail ?? `secret "${name}" cannot be decrypted`} (${needed})` };
}

/**
 * A process environment is a list of C strings: a NUL byte cannot be passed
 * (spawn would fail, quoting the value in its error). Refused here, before any
 * spawn, so the reason names the secret and key and never the value.
 */
function passable(value: SecretValue): boolean {
  return !value.reveal().includes('\0');
}

function unpassable(name: string, key: string, needed: string): SecretProblem {
  return {
    reason: 'SecretValueInvalid',
    secret: name,
    message: `secret "${name}" key "${key}" holds a NUL byte, which an environment variable cannot carry (${needed})`,
  };
}
