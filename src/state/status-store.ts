/**
 * Status, generations and events per resource, one JSON file each under
 * the state directory. Only the controller writes here (atomically, owner
 * only); the CLI reads. Unchanged records are not rewritten.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDns1123Label, KINDS, type Kind } from '../api/names.js';
import { messageOf } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';
import type { StateLayout } from './layout.js';
import type { StatusRecord } from './records.js';

/** A state file that is there but cannot be used: named to the user, rebuilt by the controller. */
export interface StateFileProblem {
  kind: Kind;
  name: string;
  file: string;
  error: string;
}

async function sameFile(path: string, known: { size: number; mtimeMs: number }): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && info.size === known.size && info.mtimeMs === known.mtimeMs;
}

export class StatusStore {
  readonly #layout: StateLayout;
  readonly #written = new Map<string, { fingerprint: string; size: number; mtimeMs: number }>();

  constructor(layout: StateLayout) {
    this.#layout = layout;
  }

  async read(kind: Kind, name: string): Promise<StatusRecord | undefined> {
    const result = await this.#readChecked(kind, name);
    return 'record' in result ? result.record : undefined;
  }

  /** A record, nothing (no file), or what is wrong with the file that is there. */
  async #readChecked(kind: Kind, name: string): Promise<{ record: StatusRecord } | { missing: true } | { problem: StateFileProblem }> {
    const file = this.#layout.statusFile(kind, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
      return { problem: { kind, name, file, error: messageOf(err) } };
    }
    try {
      const record = JSON.parse(text) as StatusRecord;
      if (record?.kind === kind && record.metadata?.name === name && typeof record.status === 'object') return { record };
      return { problem: { kind, name, file, error: 'not a status record for this resource' } };
    } catch (err) {
      return { problem: { kind, name, file, error: messageOf(err) } };
    }
  }

  async list(kind?: Kind): Promise<StatusRecord[]> {
    return (await this.scan(kind)).records;
  }

  /** Every readable record, and every status file that is there but cannot be read as one. */
  async scan(kind?: Kind): Promise<{ records: StatusRecord[]; problems: StateFileProblem[] }> {
    const records: StatusRecord[] = [];
    const problems: StateFileProblem[] = [];
    for (const k of kind ? [kind] : KINDS) {
      const files = await readdir(this.#layout.statusKindDir(k)).catch(() => [] as string[]);
      for (const file of files.sort()) {
        const name = file.endsWith('.json') ? file.slice(0, -'.json'.length) : '';
        // Only files apiary could have written: named after a valid name, holding that name.
        if (!isDns1123Label(name)) continue;
        const result = await this.#readChecked(k, name);
        if ('record' in result) records.push(result.record);
        else if ('problem' in result) problems.push(result.problem);
      }
    }
    return { records, problems };
  }

  /**
   * Writes a record unless it equals the last one written (ignoring the
   * write time). Returns whether it wrote.
   */
  async write(record: StatusRecord): Promise<boolean> {
    const path = this.#layout.statusFile(record.kind, record.metadata.name);
    const { writtenAt: _, ...comparable } = record;
    const fingerprint = JSON.stringify(comparable);
    const last = this.#written.get(path);
    // Unchanged, and the file is still the one written (not truncated or replaced behind our back).
    if (last?.fingerprint === fingerprint && (await sameFile(path, last))) return false;
    await ensureDir(dirname(path));
    await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
    const info = await stat(path).catch(() => undefined);
    this.#written.set(path, { fingerprint, size: info?.size ?? -1, mtimeMs: info?.mtimeMs ?? -1 });
    return true;
  }

  async remove(kind: Kind, name: string): Promise<void> {
    const path = this.#layout.statusFile(kind, name);
    this.#written.delete(path);
    await rm(path, { force: true });
  }
}
