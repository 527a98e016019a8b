import { createHash } from 'node:crypto';
import type { MCPServerResource } from '../manifests/resource.js';

/** What `metadata.generation` counts changes of for an MCPServer: its spec. */
export function specHash(resource: MCPServerResource): string {
  return createHash('sha256').update(JSON.stringify(resource.manifest.spec)).digest('hex').slice(0, 16);
}
