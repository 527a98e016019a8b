/**
 * The whole definitions of the tools each server listed at its last
 * handshake, as the gateway saw them before any filter: what `apiary tools
 * lock|diff|approve` read (a withheld tool is absent from the endpoint, so
 * the endpoint cannot show what changed). `<state>/tools/<name>.json`,
 * owner-only, written atomically.
 */
import { join } from 'node:path';
import type { ToolDefinition } from '../api/tool-lock.js';
import { ApiaryError, messageOf } from '../errors.js';
import { ensureDir, readTextIfPresent, writeFileAtomic } from '../util/atomic.js';
import { fileSafeName, type StateLayout } from './layout.js';

/**
 * `listed`: what the server listed last (the gateway writes it). `approved`:
 * the definitions `apiary tools lock|approve` pinned, kept so `tools diff`
 * can show a schema's change (the lock keeps only digests and descriptions).
 */
export type ToolsRecord = 'listed' | 'approved';

export function observedToolsFile(layout: StateLayout, name: string, record: ToolsRecord = 'listed'): string {
  return join(layout.toolsDir, `${fileSafeName(name)}${record === 'approved' ? '.approved' : ''}.json`);
}

export async function writeObservedTools(layout: StateLayout, name: string, tools: readonly ToolDefinition[], record: ToolsRecord = 'listed'): Promise<void> {
  const file = observedToolsFile(layout, name, record);
  await ensureDir(layout.toolsDir);
  await writeFileAtomic(file, `${JSON.stringify({ server: name, tools }, null, 2)}\n`);
}

/** The tools `name` listed last, or undefined when no process of it has listed any yet. */
export async function readObservedTools(layout: StateLayout, name: string, record: ToolsRecord = 'listed'): Promise<ToolDefinition[] | undefined> {
  const file = observedToolsFile(layout, name, record);
  const text = await readTextIfPresent(file);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { tools?: unknown };
    if (!Array.isArray(parsed.tools)) throw new Error('no tools array');
    return (parsed.tools as ToolDefinition[]).filter((t) => typeof t?.name === 'string');
  } catch (err) {
    throw new ApiaryError('StateInvalid', `${file} is damaged (${messageOf(err)}); it is written again at the server's next start`, { cause: err });
  }
}
