/**
 * How `metadata.generation` is counted: a rule of the API, the same for every
 * kind and every backend, so it lives here rather than in a reconciler.
 */
import { createHash } from 'node:crypto';
import type { AccessPolicyManifest, GatewayManifest, GitRepositoryManifest, MCPServerManifest, SecretManifest } from './manifests.js';

export type DeclaredManifest = MCPServerManifest | SecretManifest | GitRepositoryManifest | GatewayManifest | AccessPolicyManifest;

/**
 * What the generation counts changes of: a Secret's values, the spec of any
 * other kind. Metadata (labels, annotations) changes no generation, as in
 * Kubernetes. The hash is kept in status records, so its input must not change.
 */
export function specHash(manifest: DeclaredManifest): string {
  return createHash('sha256').update(JSON.stringify(declared(manifest))).digest('hex').slice(0, 16);
}

function declared(manifest: DeclaredManifest): unknown {
  switch (manifest.kind) {
    case 'Secret':
      return { e: 'encryptedData' in manifest ? manifest.encryptedData : undefined, s: manifest.stringData, d: manifest.data };
    case 'MCPServer':
    case 'GitRepository':
    case 'AccessPolicy':
      return manifest.spec;
    case 'Gateway':
      return manifest.spec ?? {};
  }
}

/** The generation after seeing `hash`: 1 for a new resource, one more each time the hash changes. */
export function nextGeneration(previous: { generation: number; specHash: string } | undefined, hash: string): number {
  if (previous === undefined) return 1;
  return previous.specHash === hash ? previous.generation : previous.generation + 1;
}
