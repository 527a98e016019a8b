/**
 * Pinned tool definitions (DESIGN.md section 10, `tools.lock.yaml`): per
 * server, per tool, a digest of what a model reads of a tool (name,
 * description, input and output schema, annotations), so a server that
 * changes a tool after it was approved (a "rug pull") is seen. The
 * description is kept beside the digest for a person reading the lock or
 * its diff in a review. Pure: the file is read and written in src/manifests.
 */
import { createHash } from 'node:crypto';

/** What the lock pins of a tool as a server lists it; anything else in the listing (title, icons, _meta) is not pinned. */
export interface ToolDefinition {
  name: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
}

export interface LockedTool {
  /** `sha256:<hex>` of the canonical JSON of the pinned fields. */
  digest: string;
  /** For reading only: the digest decides. */
  description: string;
}

/** Server name -> tool name -> its pin; both levels sorted by name. */
export interface ToolsLock {
  servers: Record<string, Record<string, LockedTool>>;
}

export const EMPTY_TOOLS_LOCK: ToolsLock = { servers: {} };

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * JSON with object keys sorted at every depth and no whitespace: the same
 * definition gives the same text whatever order the server wrote its keys in.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => byName(a, b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Only the pinned fields, absent ones left out (absent and undefined are the same tool). */
export function pinnedFields(tool: ToolDefinition): ToolDefinition {
  const out: ToolDefinition = { name: tool.name };
  if (tool.description !== undefined) out.description = tool.description;
  if (tool.inputSchema !== undefined) out.inputSchema = tool.inputSchema;
  if (tool.outputSchema !== undefined) out.outputSchema = tool.outputSchema;
  if (tool.annotations !== undefined) out.annotations = tool.annotations;
  return out;
}

export function toolDigest(tool: ToolDefinition): string {
  return `sha256:${createHash('sha256').update(canonicalJson(pinnedFields(tool))).digest('hex')}`;
}

export function lockTool(tool: ToolDefinition): LockedTool {
  return { digest: toolDigest(tool), description: tool.description ?? '' };
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(record).sort(byName).map((k) => [k, record[k]!]));
}

/** A server's entry: every tool it lists now, sorted by name. */
export function lockEntry(tools: readonly ToolDefinition[]): Record<string, LockedTool> {
  return sortedRecord(Object.fromEntries(tools.map((t) => [t.name, lockTool(t)])));
}

/** The lock with `server`'s entry set to `entry` (servers kept sorted). */
export function withEntry(lock: ToolsLock, server: string, entry: Record<string, LockedTool>): ToolsLock {
  return { servers: sortedRecord({ ...lock.servers, [server]: sortedRecord(entry) }) };
}

/**
 * `apiary tools approve NAME [TOOL]`: with a tool, only that tool's pin
 * follows what the server lists now (dropped when the server no longer lists
 * it); without, the whole entry does. Other pins stay as approved before.
 */
export function approveTools(lock: ToolsLock, server: string, tools: readonly ToolDefinition[], tool?: string): ToolsLock {
  if (tool === undefined) return withEntry(lock, server, lockEntry(tools));
  const entry = { ...(lock.servers[server] ?? {}) };
  const now = tools.find((t) => t.name === tool);
  if (now === undefined) delete entry[tool];
  else entry[tool] = lockTool(now);
  return withEntry(lock, server, entry);
}

/** How what a server lists differs from its entry; every list sorted. */
export interface ToolDrift {
  /** Listed with a digest other than the pinned one. */
  changed: string[];
  /** Listed but not in the entry. */
  added: string[];
  /** In the entry but no longer listed (nothing to withhold: reported only). */
  removed: string[];
}

/** `listed`: each tool the server lists now with its digest (toolDigest). */
export function toolDrift(entry: Record<string, LockedTool>, listed: readonly { name: string; digest: string }[]): ToolDrift {
  const names = new Set(listed.map((t) => t.name));
  const changed: string[] = [];
  const added: string[] = [];
  for (const tool of listed) {
    const pin = entry[tool.name];
    if (pin === undefined) added.push(tool.name);
    else if (pin.digest !== tool.digest) changed.push(tool.name);
  }
  const removed = Object.keys(entry).filter((name) => !names.has(name));
  return { changed: changed.sort(byName), added: added.sort(byName), removed: removed.sort(byName) };
}

/** Each tool with its digest, as toolDrift takes them. */
export function digests(tools: readonly ToolDefinition[]): { name: string; digest: string }[] {
  return tools.map((t) => ({ name: t.name, digest: toolDigest(t) }));
}

export function hasDrift(drift: ToolDrift): boolean {
  return drift.changed.length + drift.added.length + drift.removed.length > 0;
}

/** One line for a condition message or an error: which tools and how. */
export function describeDrift(drift: ToolDrift): string {
  const parts = [
    drift.changed.length > 0 ? `changed: ${drift.changed.join(', ')}` : '',
    drift.added.length > 0 ? `new: ${drift.added.join(', ')}` : '',
    drift.removed.length > 0 ? `removed: ${drift.removed.join(', ')}` : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? `tools differ from tools.lock.yaml (${parts.join('; ')})` : 'tools match tools.lock.yaml';
}
