/**
 * The start-up snapshot's first try at checking a document (scripts/bundle.mjs
 * puts it in front of src/manifests/check-manifest.ts there): in that bundle
 * MANIFEST_SCHEMAS are src/api/lite-schema.ts's records of the same schemas,
 * and a document they take gives zod's output without zod. Anywhere else they
 * are zod's own and every document is left to zod: undefined.
 */
import { MANIFEST_SCHEMAS } from '../api/manifests.js';
import { conform, REFUSED } from '../api/lite-schema.js';
import type { ManifestCheck } from './check-manifest.js';

/** zod's output for a valid document, or undefined: zod decides (invalid, or a case the lite schemas leave to it). */
export function conformManifest(apiVersion: string, kind: string, input: unknown): ManifestCheck | undefined {
  const entry = MANIFEST_SCHEMAS.find((s) => s.apiVersion === apiVersion && s.kind === kind);
  const data = entry === undefined ? REFUSED : conform(entry.schema, input);
  return data === REFUSED ? undefined : { success: true, data };
}
