/**
 * A secret as `secret list` and the console's Secrets page show it: keys,
 * form, whether it opens on this machine, and who uses it. Never values.
 */
import type { SecretSummary, SecretUse } from '../api/console.js';
import type { KeyStore } from '../crypto/keys.js';
import { openSecret, secretForms } from '../crypto/secret-data.js';
import { secretReferences } from './references.js';
import type { MCPServerResource, Resource, SecretResource } from './resource.js';

export type { SecretSummary, SecretUse };

/** Every reference to secret `name`, by server then variable. */
export function usesOfSecret(resources: readonly Resource[], name: string): SecretUse[] {
  const uses: SecretUse[] = [];
  for (const r of resources) {
    if (r.kind !== 'MCPServer') continue;
    for (const ref of secretReferences(r as MCPServerResource)) {
      if (ref.secret !== name) continue;
      uses.push({ server: r.name, ...(ref.env !== undefined ? { variable: ref.env } : {}), ...(ref.key !== undefined ? { key: ref.key } : {}), optional: ref.optional });
    }
  }
  return uses.sort((a, b) => a.server.localeCompare(b.server) || (a.variable ?? '').localeCompare(b.variable ?? ''));
}

export async function summarizeSecret(r: SecretResource, all: readonly Resource[], keys: Pick<KeyStore, 'get'>): Promise<SecretSummary> {
  const forms = secretForms(r);
  const kinds = new Set(forms.values());
  const entries = kinds.has('sealed') ? await openSecret(r, keys) : undefined;
  const errors = [...(entries?.values() ?? [])].flatMap((e) => (e.error ? [e.error.message] : []));
  const uses = usesOfSecret(all, r.name);
  return {
    name: r.name,
    keys: [...forms.keys()].sort(),
    form: kinds.size === 0 ? '<empty>' : [...kinds].map((k) => (k === 'base64' ? 'plain' : k)).filter((v, i, a) => a.indexOf(v) === i).join('+'),
    usedBy: [...new Set(uses.map((u) => u.server))],
    uses,
    decrypts: entries === undefined ? 'n/a' : errors.length === 0 ? 'yes' : 'no',
    errors: [...new Set(errors)],
    file: r.source.file,
  };
}

/** What deleting a secret does to the servers that use it, in words (the CLI prints it; the console asks with it). */
export function usersWarning(servers: readonly string[], name: string): string | undefined {
  if (servers.length === 0) return undefined;
  return (
    `secret "${name}" is used by ${servers.map((s) => `mcpserver/${s}`).join(', ')}: ` +
    'running servers keep running, but cannot start or restart until the secret is back'
  );
}
