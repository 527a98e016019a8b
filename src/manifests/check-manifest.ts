/**
 * A document checked against the schema of its apiVersion and kind: zod's
 * output when valid, else the problems a person reads (src/manifests/issues.ts).
 * The start-up snapshot's bundle swaps this module for one that asks
 * src/api/lite-schema.ts first and loads this one only for a document it
 * refuses (scripts/bundle.mjs), so every message still comes from here.
 */
import { MANIFEST_SCHEMAS } from '../api/manifests.js';
import { describeIssues, type FieldProblem } from './issues.js';

export type ManifestCheck = { success: true; data: unknown } | { success: false; problems: FieldProblem[] };

export function checkManifest(apiVersion: string, kind: string, input: unknown): ManifestCheck {
  const entry = MANIFEST_SCHEMAS.find((s) => s.apiVersion === apiVersion && s.kind === kind);
  if (entry === undefined) throw new Error(`no schema for ${apiVersion} ${kind}`);
  const parsed = entry.schema.safeParse(input);
  return parsed.success ? { success: true, data: parsed.data } : { success: false, problems: describeIssues(entry.schema, parsed.error.issues, input) };
}
