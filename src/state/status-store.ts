/**
 * Status, generations and events per resource, one JSON file each under
 * the state directory. Only the controller writes here (atomically, owner
 * only); the CLI reads. Unchanged records are not rewritten.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDns1123Label, KINDS, type Kind } from '../api/names.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';
import type { StateLayout } from './layout.js';
import type { StatusRecord } from './records.js';

export class StatusStore {
  readonly #layout: StateLayout;
  readonly #written = new Map<string, string>();

  constructor(layout: StateLayout) {
    this.#layout = layout;
  }

  async read(kind: Kind, name: string): Promise<StatusRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.#layout.statusFile(kind, name), 'utf8')) as StatusRecord;
    } catch {
      return undefined;
    }
  }

  async list(kind?: Kind): Promise<StatusRecord[]> {
    const out: StatusRecord[] = [];
    for (const k of kind ? [kind] : KINDS) {
      const files = await readdir(this.#layout.statusKindDir(k)).catch(() => [] as string[]);
      for (const file of files.sort()) {
        const name = file.endsWith('.json') ? file.slice(0, -'.json'.length) : '';
        // Only files apiary could have written: named after a valid name, holding that name.
        if (!isDns1123Label(name)) continue;
        const record = await this.read(k, name);
        if (record !== undefined && record.kind === k && record.metadata?.name === name) out.push(record);
      }
    }
    return out;
  }

  /**
   * Writes a record unless it equals the last one written (ignoring the
   * write time). Returns whether it wrote.
   */
  async write(record: StatusRecord): Promise<boolean> {
    const path = this.#layout.statusFile(record.kind, record.metadata.name);
    const { writtenAt: _, ...comparable } = record;
    const fingerprint = JSON.stringify(comparable);
    if (this.#written.get(path) === fingerprint) return false;
    await ensureDir(dirname(path));
    await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
    this.#written.set(path, fingerprint);
    return true;
  }

  async remove(kind: Kind, name: string): Promise<void> {
    const path = this.#layout.statusFile(kind, name);
    this.#written.delete(path);
    await rm(path, { force: true });
  }
}
