/**
 * What `apply` would change: a unified diff per document against what the
 * directory declares, and what the controller would then do. Secret values
 * never appear: both sides are redacted, and only which keys change is said.
 */
import { createTwoFilesPatch } from 'diff';
import { isMap, isScalar, parseDocument } from 'yaml';
import type { MCPServerSpec } from '../api/manifests.js';
import { kindLower, type Kind, type ResourceKey } from '../api/names.js';
import { openSecret, type SecretEntry } from '../crypto/secret-data.js';
import type { KeyStore } from '../crypto/keys.js';
import type { InputDocument, PlannedChange } from './apply.js';
import type { Resource, SecretResource } from './resource.js';

export interface DiffEntry {
  key: ResourceKey;
  kind: Kind;
  name: string;
  state: 'new' | 'changed' | 'unchanged';
  /** Unified diff (empty when unchanged). */
  patch: string;
  /** What the controller would do, e.g. "restart (args changed)". */
  consequence: string;
}

const SECRET_MAPS = ['encryptedData', 'stringData', 'data'];
const REDACTED = '<redacted>';
const REDACTED_CHANGED = '<redacted, changed>';

/** The document with every secret value replaced; keys in `changed` get a marker that shows in the diff. */
export function redactSecretText(text: string, changed: ReadonlySet<string>): string {
  const doc = parseDocument(text);
  for (const map of SECRET_MAPS) {
    const node = doc.get(map, true);
    if (!isMap(node)) continue;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (isScalar(pair.value)) {
        pair.value.value = changed.has(key) ? REDACTED_CHANGED : REDACTED;
        pair.value.type = 'PLAIN';
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}

async function secretValues(resource: SecretResource | undefined, keys: Pick<KeyStore, 'get'>): Promise<Map<string, SecretEntry>> {
  return resource ? openSecret(resource, keys) : new Map();
}

function raw(resource: SecretResource | undefined, key: string): string | undefined {
  const m = resource?.manifest;
  if (m === undefined) return undefined;
  return ('encryptedData' in m ? m.encryptedData?.[key] : undefined) ?? m.stringData?.[key] ?? m.data?.[key];
}

/** Keys added, removed or whose value differs (compared decrypted where possible). */
export async function changedSecretKeys(before: SecretResource | undefined, after: SecretResource, keys: Pick<KeyStore, 'get'>): Promise<Set<string>> {
  const [a, b] = await Promise.all([secretValues(before, keys), secretValues(after, keys)]);
  const changed = new Set<string>();
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === undefined || y === undefined) changed.add(key);
    else if (x.value !== undefined && y.value !== undefined) {
      if (!x.value.equals(y.value)) changed.add(key);
    } else if (raw(before, key) !== raw(after, key)) changed.add(key);
  }
  return changed;
}

/** Fields read by apiary itself (the endpoint, the planner), not by the process: changing them restarts nothing. */
const NO_RESTART_FIELDS = new Set(['suspend', 'restartPolicy', 'tools', 'healthCheck', 'strategy', 'image', 'rateLimits']);

export function serverConsequence(before: MCPServerSpec | undefined, after: MCPServerSpec, metadataChanged: boolean): string {
  if (before === undefined) return after.suspend ? 'create (suspended: not started)' : 'create and start';
  if (Boolean(before.suspend) !== Boolean(after.suspend)) return after.suspend ? 'stop (suspend)' : 'start (resume)';
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...fields].filter(
    (f) => !NO_RESTART_FIELDS.has(f) && JSON.stringify(before[f as keyof MCPServerSpec]) !== JSON.stringify(after[f as keyof MCPServerSpec]),
  );
  if (changed.length > 0) return after.suspend ? `no restart: suspended (${changed.join(', ')} changed)` : `restart (${changed.join(', ')} changed)`;
  const settings = [...fields].filter((f) => f !== 'suspend' && NO_RESTART_FIELDS.has(f) && JSON.stringify(before[f as keyof MCPServerSpec]) !== JSON.stringify(after[f as keyof MCPServerSpec]));
  if (settings.length > 0) return `no restart (${settings.join(', ')} changed)`;
  return metadataChanged ? 'no restart (metadata only)' : 'no change';
}

export async function diffChanges(
  changes: readonly PlannedChange[],
  dependants: (secret: string) => string[],
  keys: Pick<KeyStore, 'get'>,
): Promise<DiffEntry[]> {
  const entries: DiffEntry[] = [];
  for (const change of changes) {
    const { input, existing } = change;
    const label = `${kindLower(input.kind)}/${input.name}`;
    const state = existing === undefined ? 'new' : sameText(existing.text, input.text) ? 'unchanged' : 'changed';
    let oldText = existing?.text ?? '';
    let newText = input.text;
    let consequence: string;
    if (input.resource.kind === 'Secret') {
      const before = existing?.resource?.kind === 'Secret' ? existing.resource : undefined;
      const changedKeys = await changedSecretKeys(before, input.resource, keys);
      oldText = existing ? redactSecretText(oldText, new Set()) : '';
      newText = redactSecretText(newText, changedKeys);
      consequence = secretConsequence(existing === undefined, changedKeys, dependants(input.name));
    } else if (input.resource.kind === 'Gateway' || input.resource.kind === 'AccessPolicy') {
      // Access settings restart nothing: the gateway takes them as they are read.
      consequence = existing === undefined ? 'create (no restart)' : 'no restart (access settings change)';
    } else {
      const before = existing?.resource?.kind === 'MCPServer' ? existing.resource : undefined;
      consequence = serverConsequence(before?.manifest.spec, input.resource.manifest.spec, metadataChanged(before, input));
    }
    const patch =
      state === 'unchanged'
        ? ''
        : createTwoFilesPatch(existing ? `a/${label}` : '/dev/null', `b/${label}`, ensureNewline(oldText), ensureNewline(newText), existing?.path ?? '', input.origin, { context: 3 });
    const outcome = state === 'unchanged' ? 'unchanged' : change.action === 'unchanged' ? 'no change to the object (comments or layout only)' : consequence;
    entries.push({ key: input.key, kind: input.kind, name: input.name, state, patch, consequence: outcome });
  }
  return entries;
}

function secretConsequence(created: boolean, changedKeys: ReadonlySet<string>, users: readonly string[]): string {
  const who = users.length === 0 ? 'no dependants' : `${users.length} dependant${users.length === 1 ? '' : 's'} ${created ? 'can start' : 'restart'} (${users.map((u) => `mcpserver/${u}`).join(', ')})`;
  if (created) return `create; ${who}`;
  if (changedKeys.size === 0) return 'no value changes; no restart';
  return `key${changedKeys.size === 1 ? '' : 's'} ${[...changedKeys].sort().join(', ')} changed; ${who}`;
}

function metadataChanged(before: Resource | undefined, input: InputDocument): boolean {
  return JSON.stringify(before?.manifest.metadata) !== JSON.stringify(input.resource.manifest.metadata);
}

function sameText(a: string, b: string): boolean {
  return a.trim() === b.trim();
}

function ensureNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
