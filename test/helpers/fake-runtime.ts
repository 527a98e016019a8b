/**
 * A Runtime with no processes: each "process" is a scripted MCP server on
 * in-memory streams, and exits happen when the test says so. With a
 * FakeClock, the MCPServer executor can be driven step by step without
 * waiting on wall time.
 */
import { RunHistories, type RunHistory } from '../../src/runtime/history.js';
import type { AdoptionReport, ExitListener, LaunchSpec, ObservedProcess, Runtime, StopOptions, Termination } from '../../src/runtime/runtime.js';
import type { Slot } from '../../src/api/slot.js';
import type { Clock } from '../../src/util/clock.js';
import { scriptedServer, type ScriptedServer } from './scripted-server.js';

export interface FakeProcess {
  observed: ObservedProcess;
  server: ScriptedServer;
  spec: LaunchSpec;
  startedAtMs: number;
}

export class FakeRuntime implements Runtime {
  readonly #clock: Clock;
  readonly #listeners: ExitListener[] = [];
  readonly #procs = new Map<string, FakeProcess>();
  #nextPid = 1000;
  readonly #history = new RunHistories();
  /** Every start, in order. */
  readonly started: LaunchSpec[] = [];
  /** How a process started from this spec behaves: answers the handshake, or stays silent. */
  behaviour: (spec: LaunchSpec) => NonNullable<Parameters<typeof scriptedServer>[0]> = () => ({});

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  async start(spec: LaunchSpec, slot: 'current' | 'next' = 'current'): Promise<ObservedProcess> {
    if (this.#procs.has(key(spec.name, slot))) throw new Error(`${spec.name} already has a ${slot} process`);
    const server = scriptedServer(this.behaviour(spec));
    const observed: ObservedProcess = {
      name: spec.name,
      pid: this.#nextPid++,
      slot,
      startedAt: new Date(this.#clock.now()).toISOString(),
      configHash: spec.configHash,
      generation: spec.generation,
      stopping: false,
      adopted: false,
      stdio: { stdin: server.toServer, stdout: server.fromServer },
    };
    this.started.push(spec);
    this.#procs.set(key(spec.name, slot), { observed, server, spec, startedAtMs: this.#clock.now() });
    if (slot === 'current') this.#history.started(spec.name);
    return observed;
  }

  /** The scripted server behind a process, to make it speak (a notification of its own). */
  server(name: string, slot: 'current' | 'next' = 'current'): ScriptedServer | undefined {
    return this.#procs.get(key(name, slot))?.server;
  }

  history(name: string): RunHistory {
    return this.#history.get(name);
  }

  amendHistory(name: string, change: Partial<RunHistory> | undefined): void {
    this.#history.amend(name, change);
  }

  /** Stops at once: the process leaves as soon as it is asked to. */
  async stop(name: string, slot: Slot = 'current', options: StopOptions = {}): Promise<Termination | undefined> {
    const proc = this.#procs.get(key(name, slot));
    if (proc === undefined) return undefined;
    proc.observed.stopping = true;
    return this.exit(name, slot, { exitCode: 0, signal: null, reason: options.failure?.reason ?? 'Stopped', ...(options.failure ? { message: options.failure.message } : {}) });
  }

  /** The process in `slot` ends (a crash, when the test says so). */
  exit(name: string, slot: Slot, how: { exitCode: number | null; signal: string | null; reason: string; message?: string }): Termination {
    const proc = this.#procs.get(key(name, slot));
    if (proc === undefined) throw new Error(`no ${slot} process for ${name}`);
    this.#procs.delete(key(name, slot));
    proc.server.close();
    const termination: Termination = {
      pid: proc.observed.pid,
      slot,
      configHash: proc.observed.configHash,
      generation: proc.observed.generation,
      ...how,
      finishedAt: new Date(this.#clock.now()).toISOString(),
      ranForMs: this.#clock.now() - proc.startedAtMs,
    };
    if (slot === 'current') this.#history.ended(name, termination);
    for (const listener of this.#listeners) listener(name, termination);
    return termination;
  }

  process(name: string, slot: Slot = 'current'): FakeProcess | undefined {
    return this.#procs.get(key(name, slot));
  }

  observe(name: string, slot: Slot = 'current'): ObservedProcess | undefined {
    return this.#procs.get(key(name, slot))?.observed;
  }

  promote(name: string): void {
    const next = this.#procs.get(key(name, 'next'));
    if (next === undefined) throw new Error(`${name} has no next process`);
    if (this.#procs.has(key(name, 'old'))) throw new Error(`${name} still has an old process`);
    const current = this.#procs.get(key(name, 'current'));
    this.#procs.delete(key(name, 'next'));
    next.observed.slot = 'current';
    this.#procs.set(key(name, 'current'), next);
    if (current !== undefined) {
      current.observed.slot = 'old';
      this.#procs.set(key(name, 'old'), current);
    }
  }

  list(): ObservedProcess[] {
    return [...this.#procs.values()].map((p) => p.observed);
  }

  async adopt(): Promise<AdoptionReport> {
    return { adopted: [], gone: [], unreadable: [], strays: [] };
  }

  onExit(listener: ExitListener): void {
    this.#listeners.push(listener);
  }

  async maintain(): Promise<void> {}
}

function key(name: string, slot: Slot): string {
  return `${name}/${slot}`;
}
