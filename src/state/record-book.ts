/**
 * The controller's in-memory view of the state directory: generations,
 * status and events per resource, persisted through the StatusStore. Loaded
 * once at start; written only by reconcilers.
 */
import { nextGeneration } from '../api/generation.js';
import { resourceKey, type Kind, type ResourceKey } from '../api/names.js';
import type { MCPServerStatus, AnyStatus } from '../api/status.js';
import type { Clock } from '../util/clock.js';
import { addEvent, type StatusRecord } from './records.js';
import type { StateFileProblem, StatusStore } from './status-store.js';

export class RecordBook {
  readonly #store: StatusStore;
  readonly #clock: Clock;
  readonly #writer: { pid: number; runId: string };
  readonly #records = new Map<ResourceKey, StatusRecord>();
  readonly #listeners = new Set<(kind: Kind, name: string) => void>();

  constructor(store: StatusStore, clock: Clock, writer: { pid: number; runId: string }) {
    this.#store = store;
    this.#clock = clock;
    this.#writer = writer;
  }

  /** Loads what the last run left; returns the status files that could not be read (they are rebuilt). */
  async load(): Promise<StateFileProblem[]> {
    const { records, problems } = await this.#store.scan();
    for (const record of records) this.#records.set(resourceKey(record.kind, record.metadata.name), record);
    return problems;
  }

  get(kind: Kind, name: string): StatusRecord | undefined {
    return this.#records.get(resourceKey(kind, name));
  }

  keys(): ResourceKey[] {
    return [...this.#records.keys()];
  }

  /** Every record as last written (readers copy what they keep). */
  all(): StatusRecord[] {
    return [...this.#records.values()];
  }

  /** Hears each record written or removed, after the file is: a live reader (the console) re-reads then. */
  onWrite(listener: (kind: Kind, name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #written(kind: Kind, name: string): void {
    for (const listener of this.#listeners) listener(kind, name);
  }

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  /** The resource's generation for this spec hash, counted as the API says (`nextGeneration`). */
  observeSpec(kind: Kind, name: string, specHash: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> }): number {
    const key = resourceKey(kind, name);
    const existing = this.#records.get(key);
    if (existing === undefined) {
      const record: StatusRecord = {
        kind,
        metadata: { name, generation: nextGeneration(undefined, specHash), creationTimestamp: this.#now(), ...meta },
        specHash,
        status: { observedGeneration: 0, phase: 'Pending', conditions: [], restartCount: 0 } as MCPServerStatus,
        events: [],
        writtenBy: this.#writer,
        writtenAt: this.#now(),
      };
      this.#records.set(key, record);
      return record.metadata.generation;
    }
    const { labels: _l, annotations: _a, ...baseMeta } = existing.metadata;
    existing.metadata = { ...baseMeta, ...meta };
    existing.metadata.generation = nextGeneration({ generation: existing.metadata.generation, specHash: existing.specHash }, specHash);
    existing.specHash = specHash;
    return existing.metadata.generation;
  }

  generation(kind: Kind, name: string): number {
    return this.get(kind, name)?.metadata.generation ?? 0;
  }

  event(kind: Kind, name: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const record = this.get(kind, name);
    if (record === undefined) return;
    record.events = addEvent(record.events, { type, reason, message }, this.#now());
  }

  /** Sets status and persists the record if anything changed. */
  async setStatus(kind: Kind, name: string, status: AnyStatus): Promise<void> {
    const record = this.get(kind, name);
    if (record === undefined) return;
    record.status = status;
    record.writtenBy = this.#writer;
    record.writtenAt = this.#now();
    if (await this.#store.write(record)) this.#written(kind, name);
  }

  /** Ensures a record exists for a resource whose manifest is invalid and was never valid. */
  ensure(kind: Kind, name: string): void {
    if (this.get(kind, name) === undefined) this.observeSpec(kind, name, '', {});
  }

  async remove(kind: Kind, name: string): Promise<void> {
    this.#records.delete(resourceKey(kind, name));
    await this.#store.remove(kind, name);
    this.#written(kind, name);
  }
}
