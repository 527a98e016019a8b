import * as z from 'zod';
import { AccessPolicyManifest, ApiarySecretManifest, GatewayManifest, GitRepositoryManifest, KubernetesSecretManifest, MCPServerManifest } from './manifests.js';

export const SCHEMA_ID = 'https://apiary.dev/schemas/v1alpha1/apiary.schema.json';

/** One JSON Schema for every document apiary accepts (for yaml-language-server). */
export function manifestJsonSchema(): Record<string, unknown> {
  const union = z.union([MCPServerManifest, ApiarySecretManifest, KubernetesSecretManifest, GitRepositoryManifest, GatewayManifest, AccessPolicyManifest]);
  return {
    ...z.toJSONSchema(union, { target: 'draft-2020-12' }),
    $id: SCHEMA_ID,
    title: 'apiary manifest (MCPServer, Secret, GitRepository, Gateway or AccessPolicy)',
  };
}
