/** Which secrets an MCPServer needs, and which servers need a secret. */
import type { MCPServerResource, Resource } from './resource.js';

export interface SecretReference {
  secret: string;
  /** Undefined for envFrom (every key). */
  key?: string;
  /** The variable it fills (envFrom: the prefix, if any). */
  env?: string;
  optional: boolean;
}

export function secretReferences(server: MCPServerResource): SecretReference[] {
  const refs: SecretReference[] = [];
  for (const e of server.manifest.spec.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref !== undefined) refs.push({ secret: ref.name, key: ref.key, env: e.name, optional: ref.optional === true });
  }
  for (const e of server.manifest.spec.envFrom ?? []) {
    refs.push({ secret: e.secretRef.name, ...(e.prefix ? { env: e.prefix } : {}), optional: e.secretRef.optional === true });
  }
  return refs;
}

export function referencedSecretNames(server: MCPServerResource): Set<string> {
  return new Set(secretReferences(server).map((r) => r.secret));
}

/** The MCPServers (by name, sorted) that reference secret `name`. */
export function serversUsingSecret(resources: readonly Resource[], name: string): string[] {
  return resources
    .filter((r): r is MCPServerResource => r.kind === 'MCPServer' && referencedSecretNames(r).has(name))
    .map((r) => r.name)
    .sort();
}
