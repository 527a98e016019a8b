/**
 * Resolves an MCPServer's environment against its secrets (DESIGN.md
 * section 3): every problem is named with the secret, the key and the
 * variable, and a server with any problem is never started with a partial
 * environment. `optional: true` skips silently.
 */
import type { MCPServerSpec } from '../api/manifests.js';
import type { SecretValue } from '../crypto/secret-value.js';
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
}

export async function resolveEnv(spec: MCPServerSpec, lookup: (name: string) => Promise<SecretLookup>): Promise<ResolvedEnv> {
  const vars: [string, string | SecretValue][] = [];
  const problems: SecretProblem[] = [];
  const referenced = new Set<string>();

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
  }
  return { vars, problems, referenced: [...referenced].sort() };
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
