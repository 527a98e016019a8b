/**
 * Requests from the CLI to the controller that are not file edits, such as
 * a rollout restart (like `kubectl rollout restart`). One small file per
 * request in the state directory; the controller removes it once handled.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditSubject } from '../api/audit.js';
import { isDns1123Label } from '../api/names.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';
import { fileSafeName, type StateLayout } from './layout.js';

export interface RestartRequest {
  name: string;
  requestedAt: string;
}

const PREFIX = 'restart-';

export async function requestRestart(layout: StateLayout, name: string, now: Date = new Date()): Promise<RestartRequest> {
  await ensureDir(layout.requestsDir);
  const request = { name, requestedAt: now.toISOString() };
  await writeFileAtomic(layout.restartRequestFile(name), JSON.stringify(request));
  return request;
}

export async function readRestartRequests(layout: StateLayout): Promise<RestartRequest[]> {
  const files = await readdir(layout.requestsDir).catch(() => [] as string[]);
  const out: RestartRequest[] = [];
  for (const file of files) {
    if (!file.startsWith(PREFIX) || !file.endsWith('.json')) continue;
    try {
      const request = JSON.parse(await readFile(join(layout.requestsDir, file), 'utf8')) as RestartRequest;
      // A foreign file naming something else (or nothing valid) is not a request.
      if (typeof request.name === 'string' && isDns1123Label(request.name) && file === `${PREFIX}${request.name}.json`) out.push(request);
    } catch {
      // Half-written or foreign: ignored; a complete one replaces it atomically.
    }
  }
  return out;
}

/** Removes the request if it is still the one that was handled (a newer one stays). */
export async function clearRestartRequest(layout: StateLayout, handled: RestartRequest): Promise<void> {
  const path = layout.restartRequestFile(handled.name);
  try {
    const current = JSON.parse(await readFile(path, 'utf8')) as RestartRequest;
    if (current.requestedAt === handled.requestedAt) await rm(path, { force: true });
  } catch {
    // Already gone.
  }
}

/** `apiary reconcile source`: fetch now. One file; a newer request replaces it, the controller acts on each once. */
export interface ReconcileRequest {
  requestedAt: string;
}

export async function requestReconcile(layout: StateLayout, now: Date = new Date()): Promise<ReconcileRequest> {
  await ensureDir(layout.requestsDir);
  const request = { requestedAt: now.toISOString() };
  await writeFileAtomic(layout.reconcileRequestFile, JSON.stringify(request));
  return request;
}

export async function readReconcileRequest(layout: StateLayout): Promise<ReconcileRequest | undefined> {
  try {
    const request = JSON.parse(await readFile(layout.reconcileRequestFile, 'utf8')) as ReconcileRequest;
    return typeof request.requestedAt === 'string' && !Number.isNaN(Date.parse(request.requestedAt)) ? { requestedAt: request.requestedAt } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An approval of a server's tools (`apiary tools approve`, the console's
 * Approve), left for the controller to put in the audit log: the CLI does
 * not write the log itself (one writer keeps the chain), and a note waits
 * for the next controller when none runs. One file per approval.
 */
export interface ApprovalNote {
  server: string;
  tools: string[];
  subject: AuditSubject;
  approvedAt: string;
}

const APPROVAL_PREFIX = 'approved-';
/** A note naming more is damaged or not ours: an approval names the tools of one server. */
const NOTE_MAX_BYTES = 64 * 1024;

export async function writeApprovalNote(layout: StateLayout, note: ApprovalNote): Promise<void> {
  await ensureDir(layout.requestsDir);
  const file = `${APPROVAL_PREFIX}${fileSafeName(note.server)}-${Date.parse(note.approvedAt)}-${randomBytes(4).toString('hex')}.json`;
  await writeFileAtomic(join(layout.requestsDir, file), JSON.stringify(note));
}

/** The approval notes waiting, oldest first, each with its file (to remove once recorded); a foreign or damaged one is removed. */
export async function readApprovalNotes(layout: StateLayout): Promise<{ file: string; note: ApprovalNote }[]> {
  const files = (await readdir(layout.requestsDir).catch(() => [] as string[])).filter((f) => f.startsWith(APPROVAL_PREFIX) && f.endsWith('.json'));
  const out: { file: string; note: ApprovalNote }[] = [];
  for (const name of files) {
    const file = join(layout.requestsDir, name);
    const note = await readFile(file, 'utf8').then(parseApprovalNote, () => undefined);
    if (note === undefined) await rm(file, { force: true });
    else out.push({ file, note });
  }
  return out.sort((a, b) => a.note.approvedAt.localeCompare(b.note.approvedAt));
}

function parseApprovalNote(text: string): ApprovalNote | undefined {
  if (text.length > NOTE_MAX_BYTES) return undefined;
  try {
    const n = JSON.parse(text) as Partial<ApprovalNote>;
    const subject = n.subject as AuditSubject | undefined;
    const valid =
      typeof n.server === 'string' &&
      isDns1123Label(n.server) &&
      Array.isArray(n.tools) &&
      n.tools.every((t) => typeof t === 'string') &&
      typeof n.approvedAt === 'string' &&
      !Number.isNaN(Date.parse(n.approvedAt)) &&
      typeof subject?.kind === 'string' &&
      ['token', 'user', 'none'].includes(subject.kind);
    return valid ? { server: n.server!, tools: n.tools!, subject: subject!, approvedAt: n.approvedAt! } : undefined;
  } catch {
    return undefined;
  }
}
