/**
 * Pinned tool definitions (DESIGN.md section 10, `tools.lock.yaml`): per
 * server, per tool, a digest of what a model reads of a tool (name,
 * description, input and output schema, annotations), so a server that
 * changes a tool after it was approved (a "rug pull") is seen. The
 * description is kept beside the digest for a person reading the lock or
 * its diff in a review. Pure: the file is read and written in src/manifests.
 * The text diff `apiary tools diff` prints and the console shows is made
 * here too, so both show the same.
 */
import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';

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

/**
 * What a server lists, with one page of a paged tools/list answer taken in:
 * its tools replace those of the same name and new ones are added. A page
 * cannot tell of a tool removed (another page may hold it): removals are
 * learnt from a whole listing only.
 */
export function withPage<T extends { name: string }>(known: readonly T[], page: readonly T[]): T[] {
  const byNameOnPage = new Map(page.map((t) => [t.name, t]));
  const kept = known.map((t) => byNameOnPage.get(t.name) ?? t);
  const knownNames = new Set(known.map((t) => t.name));
  return [...kept, ...page.filter((t) => !knownNames.has(t.name))];
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

/** The lock file's name, as a diff's header names the pinned side. */
const LOCK_FILE = 'tools.lock.yaml';

/** What a diff compares of a tool: its description, then its schemas and annotations as sorted, indented JSON. */
function readable(tool: ToolDefinition, descriptionOnly = false): string {
  const parts = [`description:\n${tool.description ?? ''}\n`];
  if (descriptionOnly) return parts[0]!;
  for (const field of ['inputSchema', 'outputSchema', 'annotations'] as const) {
    if (tool[field] !== undefined) parts.push(`${field}:\n${JSON.stringify(JSON.parse(canonicalJson(tool[field])), null, 2)}\n`);
  }
  return parts.join('');
}

/**
 * The text diff of one tool. The pinned side is the approved definition
 * kept in the state directory when its digest is the lock's; otherwise (a
 * lock from git, made on another machine) only the descriptions are
 * compared, and a note says the schemas differ when the descriptions do not.
 */
export function toolPatch(server: string, tool: string, pin: LockedTool | undefined, approved: ToolDefinition | undefined, now: ToolDefinition | undefined): string {
  const whole = pin === undefined || (approved !== undefined && toolDigest(approved) === pin.digest);
  const before = pin === undefined ? '' : whole ? readable(approved!) : readable({ name: tool, description: pin.description }, true);
  const after = now === undefined ? '' : readable(now, !whole);
  const note = !whole && now !== undefined && before === after ? '(the description is the same: the schemas or annotations changed; the approved ones are not kept in this state directory to show)\n' : '';
  return createTwoFilesPatch(`${LOCK_FILE} ${server}/${tool}`, `listed ${server}/${tool}`, before, after, '', '', { context: 3 }) + note;
}

/** One drifted tool: how, and its text diff. */
export interface DriftedTool {
  name: string;
  change: 'changed' | 'added' | 'removed';
  patch: string;
}

/** Every drifted tool of a server, by name, with its diff: what `tools diff NAME` prints and the console shows. */
export function driftPatches(server: string, entry: Record<string, LockedTool>, listed: readonly ToolDefinition[], approved: readonly ToolDefinition[]): DriftedTool[] {
  const drift = toolDrift(entry, digests(listed));
  const changes: [string, DriftedTool['change']][] = [
    ...drift.changed.map((n) => [n, 'changed'] as [string, DriftedTool['change']]),
    ...drift.added.map((n) => [n, 'added'] as [string, DriftedTool['change']]),
    ...drift.removed.map((n) => [n, 'removed'] as [string, DriftedTool['change']]),
  ];
  return changes
    .sort(([a], [b]) => byName(a, b))
    .map(([name, change]) => ({ name, change, patch: toolPatch(server, name, entry[name], approved.find((t) => t.name === name), listed.find((t) => t.name === name)) }));
}

/**
 * The approved definitions kept for the diff after `approve NAME [TOOL]`:
 * all that the server lists, or with a tool, the others as approved before
 * and that tool as listed now.
 */
export function approvedAfter(approved: readonly ToolDefinition[], listed: readonly ToolDefinition[], tool?: string): ToolDefinition[] {
  return tool === undefined ? [...listed] : [...approved.filter((t) => t.name !== tool), ...listed.filter((t) => t.name === tool)];
}
