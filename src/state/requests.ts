/**
 * Requests from the CLI to the controller that are not file edits, such as
 * a rollout restart (like `kubectl rollout restart`). One small file per
 * request in the state directory; the controller removes it once handled.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isDns1123Label } from '../api/names.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';
import type { StateLayout } from './layout.js';

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
