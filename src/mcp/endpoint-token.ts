/**
 * The bearer token apiary's MCP endpoints require: one per state directory,
 * kept owner-only beside the status, made on first use and kept across
 * restarts, so a client configured once keeps working.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { StateLayout } from '../state/layout.js';
import { writeFileAtomic } from '../util/atomic.js';

const TOKEN = /^[A-Za-z0-9_-]{32,}$/;

export async function readEndpointToken(layout: StateLayout): Promise<string | undefined> {
  const text = (await readFile(layout.endpointTokenFile, 'utf8').catch(() => ''))?.trim();
  return TOKEN.test(text) ? text : undefined;
}

export async function loadEndpointToken(layout: StateLayout): Promise<string> {
  const existing = await readEndpointToken(layout);
  if (existing !== undefined) return existing;
  const token = randomBytes(32).toString('base64url');
  await writeFileAtomic(layout.endpointTokenFile, `${token}\n`);
  return token;
}

/** The header a client sends, as client configurations write it. */
export function authorizationHeader(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}
