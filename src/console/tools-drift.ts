/**
 * Pinned tool definitions, for the console and `apiary tools diff|approve`
 * alike: what a server lists against its entry in tools.lock.yaml (the text
 * diff of src/api/tool-lock.ts), and an approval, which writes the lock (the
 * file it replaces kept) and the approved definitions the next diff compares
 * with. Both front doors call these, so an approval from the page is the
 * CLI's, refusals and messages included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditSubject } from '../api/audit.js';
import type { ToolsApproveAnswer, ToolsDriftAnswer } from '../api/console.js';
import { approvedAfter, approveTools, describeDrift, digests, driftPatches, hasDrift, toolDrift, type ToolDefinition } from '../api/tool-lock.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { LoadResult } from '../manifests/loader.js';
import { readToolsLock, TOOLS_LOCK_FILE, writeToolsLock } from '../manifests/tools-lock.js';
import { refuseGitSourced, runningManifestDir } from '../source/directory.js';
import { StateLayout } from '../state/layout.js';
import { readObservedTools, writeObservedTools } from '../state/observed-tools.js';
import { writeApprovalNote } from '../state/requests.js';
import type { ApiContext } from './api.js';
import { ApproveToolsBody, readBodyAs } from './bodies.js';
import { sendJson } from './http.js';
import { underDirectoryLock } from './locked-write.js';

const CONSOLE_SUBJECT: AuditSubject = { kind: 'token' };

/** A declared server (every transport is judged: stdio at the bridge, HTTP and hosted at the proxy); otherwise a NotFound error. */
export function requireServer(loaded: LoadResult, dir: string, name: string): void {
  const server = loaded.resources.find((r) => r.kind === 'MCPServer' && r.name === name);
  if (server?.kind !== 'MCPServer') throw new ApiaryError('NotFound', `mcpserver "${name}" not found in ${dir}`);
}

/** What the server listed at its last start, before any filter; a NotFound error when it has not listed any yet. */
export async function listedTools(layout: StateLayout, name: string): Promise<ToolDefinition[]> {
  const tools = await readObservedTools(layout, name);
  if (tools === undefined) {
    throw new ApiaryError('NotFound', `mcpserver "${name}" has not listed its tools yet: apiary keeps what a server lists when it starts`, { hints: ['Start it with: apiary up, and wait for it: apiary wait mcpserver/' + name + ' --for=condition=Ready'] });
  }
  return tools;
}

/** Every drifted tool of a declared stdio server with its diff (none when its entry matches, or it has no entry). */
export async function serverToolsDrift(dir: string, layout: StateLayout, name: string): Promise<Omit<ToolsDriftAnswer, 'approveRefused'>> {
  const entry = (await readToolsLock(dir))?.servers[name];
  if (entry === undefined) return { server: name, pinned: false, summary: `no entry in ${TOOLS_LOCK_FILE}: its tools are not pinned`, tools: [] };
  const listed = await listedTools(layout, name);
  const approved = (await readObservedTools(layout, name, 'approved')) ?? [];
  return { server: name, pinned: true, summary: describeDrift(toolDrift(entry, digests(listed))), tools: driftPatches(name, entry, listed, approved) };
}

/**
 * `apiary tools approve NAME [TOOL]`, for a caller that holds the directory
 * lock and has read it (`loaded`): refused for a directory that follows git
 * and for a server that is not a declared stdio server; with a tool, only
 * that tool's pin follows what the server lists now. An approval that
 * changed the lock leaves a note for the audit log, naming `who` and the
 * tools (the controller records it when the log is on).
 */
export async function approveServerTools(dir: string, loaded: LoadResult, layout: StateLayout, who: AuditSubject, name: string, tool?: string): Promise<ToolsApproveAnswer> {
  await refuseGitSourced(dir, loaded);
  requireServer(loaded, dir, name);
  const listed = await listedTools(layout, name);
  const before = (await readToolsLock(dir)) ?? { servers: {} };
  if (tool !== undefined && before.servers[name]?.[tool] === undefined && !listed.some((t) => t.name === tool)) {
    throw new ApiaryError('NotFound', `mcpserver "${name}" neither lists nor pins a tool "${tool}"`);
  }
  const lock = approveTools(before, name, listed, tool);
  const was = toolDrift(before.servers[name] ?? {}, digests(listed));
  const approved = (await readObservedTools(layout, name, 'approved')) ?? [];
  await writeObservedTools(layout, name, approvedAfter(approved, listed, tool), 'approved');
  const written = await writeToolsLock(dir, lock);
  if (written.written) {
    const tools = tool !== undefined ? [tool] : [...was.changed, ...was.added, ...was.removed].sort();
    await writeApprovalNote(layout, { server: name, tools, subject: who, approvedAt: new Date().toISOString() });
  }
  const left = toolDrift(lock.servers[name] ?? {}, digests(listed));
  return {
    server: name,
    ...(tool !== undefined ? { tool } : {}),
    file: written.path,
    written: written.written,
    ...(written.backup !== undefined ? { backup: written.backup } : {}),
    drifted: hasDrift(left),
    summary: describeDrift(left),
  };
}

/** GET /api/v1/mcpservers/{name}/tools-drift: as `apiary tools diff NAME`, and whether Approve can be offered. */
export async function toolsDrift(ctx: ApiContext, _req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const drift = await serverToolsDrift(await runningManifestDir(ctx.dir, ctx.stateDir), new StateLayout(ctx.stateDir), name!);
  const refused = await refuseGitSourced(ctx.dir).then(
    () => undefined,
    (err: unknown) => messageOf(err),
  );
  sendJson(res, 200, { ...drift, ...(refused !== undefined ? { approveRefused: refused } : {}) } satisfies ToolsDriftAnswer);
}

/** POST /api/v1/mcpservers/{name}/tools-approve {tool?}: as `apiary tools approve NAME [TOOL]`, under the directory's lock. */
export async function toolsApprove(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, [name]: string[]): Promise<void> {
  const { tool } = await readBodyAs(req, ApproveToolsBody);
  // The console signs in with apiary's own token: its approvals are the local token's, as its calls are.
  const answer = await underDirectoryLock(ctx.dir, (loaded) => approveServerTools(ctx.dir, loaded, new StateLayout(ctx.stateDir), CONSOLE_SUBJECT, name!, tool));
  sendJson(res, 200, answer);
}
