/**
 * Runs servers as local processes: no shell, each in its own process group
 * (so launchers such as npx do not leak children), stdin kept open, output to
 * a per-server log file that survives the controller, and a record per
 * process (pid + start time) so a restarted controller finds what it left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, type Stats } from 'node:fs';
import { appendFile, copyFile, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isDns1123Label } from '../api/names.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { fileSafeName, type StateLayout } from '../state/layout.js';
import { DIR_MODE, ensureDir, FILE_MODE, writeFileAtomic } from '../util/atomic.js';
import { groupLeadersLoggingTo, isSameProcess, procStartTime } from '../util/proc.js';
import { RunHistories, type RunHistory } from './history.js';
import { lastOutputLine } from './last-output.js';
import { EgressProxy, type EgressRefusal } from './egress-proxy.js';
import { Ingress, INGRESS_SOCKET_NAME } from './ingress.js';
import { EGRESS_PORT, findBwrap, probeSandbox, sandboxArgs, type SandboxSupport } from './sandbox.js';
import { mergeLines, pipeStderr } from './stderr-pipe.js';
import { throughShim } from './output-shim-path.js';
import { OncePerWindow } from '../util/once-per.js';
import type { Slot } from '../api/slot.js';
import type { AdoptionReport, ExitListener, LaunchSpec, ObservedProcess, Runtime, StopOptions, Termination } from './runtime.js';

export interface ProcessRuntimeOptions {
  layout: StateLayout;
  clock: Clock;
  /** After closing stdin, how long to wait before SIGTERM. */
  stdinGraceMs?: number;
  /** After SIGTERM, how long to wait before SIGKILL. */
  termGraceMs?: number;
  /** How often adopted processes (not our children) are checked. */
  adoptedPollMs?: number;
  maxLogBytes?: number;
  logIndexEveryMs?: number;
  /** Where bubblewrap is looked up for sandboxed servers (APIARY_BWRAP, PATH); the controller's own by default. */
  env?: NodeJS.ProcessEnv;
}

/** What is spawned: the server's command, or bubblewrap's (with the sandbox's ingress), or the output shim's. */
interface SpawnRun {
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  ingress?: Ingress;
}

interface ProcessRecord {
  name: string;
  pid: number;
  procStart?: string;
  startedAt: string;
  configHash: string;
  generation: number;
  command: string;
  /** Run under bubblewrap: reached through sockets its controller served, so never adopted by another. */
  sandboxed?: boolean;
}

interface Tracked {
  /** observed.slot says where it is tracked (it changes when a rollout promotes it). */
  observed: ObservedProcess;
  child?: ChildProcess;
  startedAtMs: number;
  exited: Promise<Termination>;
  resolveExit: (t: Termination) => void;
  stopRequested: boolean;
  /** A stop that is a failure (Unhealthy): what its termination says instead of Stopped. */
  failure?: { reason: string; message: string };
  /** What was (or is being) written to its record file. */
  record?: ProcessRecord;
  /** The secret values it was given: redacted from the output a failure quotes. */
  secrets?: readonly string[];
  /** Its stderr copied through apiary to its log (a stdio server's): done once everything it wrote is in the file. */
  stderrDrained?: Promise<void>;
  /** A sandboxed HTTP server's way in (its port on the host's loopback): closed when it ends. */
  ingress?: Ingress;
}

/**
 * How long an exited process's stderr is waited for: a process that left
 * its process group (setsid) can hold the pipe open after the group is
 * killed, and the exit must still be reported.
 */
const STDERR_DRAIN_MS = 2_000;

/** An EgressDenied event per server and target at most this often (as SecretRedacted, per server and key). */
export const EGRESS_DENIED_INTERVAL_MS = 60_000;
/** Targets reported per server within that interval; further refusals are in its log only. */
export const EGRESS_DENIED_TARGETS = 10;

/** The key a process is tracked under: its server's name, and its slot. */
function slotKey(name: string, slot: Slot): string {
  return slot === 'current' ? name : `${name}\0${slot}`;
}

export class ProcessRuntime implements Runtime {
  readonly #layout: StateLayout;
  readonly #clock: Clock;
  readonly #stdinGraceMs: number;
  readonly #termGraceMs: number;
  readonly #adoptedPollMs: number;
  readonly #maxLogBytes: number;
  /** Keyed by name and slot (slotKey). */
  readonly #tracked = new Map<string, Tracked>();
  readonly #listeners: ExitListener[] = [];
  /** Record writes and removals per server, in order (an old exit must not remove a new record). */
  readonly #recordOps = new Map<string, Promise<void>>();
  /** The record text last written per process (keyed by slotKey), to notice one damaged behind our back. */
  readonly #recordTexts = new Map<string, { name: string; slot: Slot; pid: number; text: string }>();
  /** Log size last indexed per server, for timestamps. */
  readonly #indexed = new Map<string, number>();
  #indexTimer: { cancel(): void } | undefined;
  readonly #indexEveryMs: number;
  /** Held (stopped) process groups, while a cold start is being set up. */
  #held: Set<number> | undefined;
  readonly #history = new RunHistories();
  readonly #env: NodeJS.ProcessEnv;
  /** Probed once, when the first sandboxed server asks. */
  #sandboxSupport: SandboxSupport | undefined;
  #egress: EgressProxy | undefined;
  #egressDenied: ((name: string, target: string) => void) | undefined;
  /** Which refusals are reported: the events say each server's target once a minute, the log every time. */
  readonly #deniedReported: OncePerWindow;
  /** What each line a stdio server writes to stderr goes through on its way to the log (the gateway's secret redaction). */
  #stderrFilter: (name: string, line: string) => string = (_name, line) => line;

  constructor(options: ProcessRuntimeOptions) {
    this.#layout = options.layout;
    this.#clock = options.clock;
    this.#stdinGraceMs = options.stdinGraceMs ?? 1_000;
    this.#termGraceMs = options.termGraceMs ?? 5_000;
    this.#adoptedPollMs = options.adoptedPollMs ?? 500;
    this.#maxLogBytes = options.maxLogBytes ?? 10 * 1024 * 1024;
    this.#indexEveryMs = options.logIndexEveryMs ?? 250;
    this.#env = options.env ?? process.env;
    this.#deniedReported = new OncePerWindow(options.clock, EGRESS_DENIED_INTERVAL_MS, EGRESS_DENIED_TARGETS);
  }

  setOutputFilter(filter: (name: string, line: string) => string): void {
    this.#stderrFilter = filter;
  }

  onEgressDenied(listener: (name: string, target: string) => void): void {
    this.#egressDenied = listener;
  }

  sandboxSupport(): SandboxSupport {
    this.#sandboxSupport ??= probeSandbox(this.#env);
    return this.#sandboxSupport;
  }

  /**
   * Servers write their logs straight to the file (so logs survive the
   * controller), so lines carry no time. A small index records when the file
   * reached each size; `logs --timestamps` maps lines to it (within the period).
   */
  #scheduleIndex(): void {
    if (this.#indexTimer !== undefined || this.#tracked.size === 0) return;
    this.#indexTimer = this.#clock.setTimeout(() => {
      this.#indexTimer = undefined;
      void this.#indexLogs().finally(() => this.#scheduleIndex());
    }, this.#indexEveryMs);
  }

  async #indexLogs(): Promise<void> {
    for (const name of this.#currentNames()) await this.#indexLog(name);
  }

  /** The servers with a current process (whose log is NAME.log). */
  #currentNames(): string[] {
    return [...this.#tracked.values()].filter((t) => t.observed.slot === 'current').map((t) => t.observed.name);
  }

  async #indexLog(name: string): Promise<void> {
    const size = (await stat(this.#layout.logFile(name)).catch(() => undefined))?.size ?? 0;
    if (size <= (this.#indexed.get(name) ?? 0)) return;
    this.#indexed.set(name, size);
    const now = new Date(this.#clock.now()).toISOString();
    await appendFile(this.#layout.logIndexFile(name), `${size} ${now}\n`, { mode: FILE_MODE }).catch(() => undefined);
  }

  onExit(listener: ExitListener): void {
    this.#listeners.push(listener);
  }

  history(name: string): RunHistory {
    return this.#history.get(name);
  }

  amendHistory(name: string, change: Partial<RunHistory> | undefined): void {
    this.#history.amend(name, change);
  }

  observe(name: string, slot: Slot = 'current'): ObservedProcess | undefined {
    return this.#tracked.get(slotKey(name, slot))?.observed;
  }

  list(): ObservedProcess[] {
    return [...this.#tracked.values()].map((t) => t.observed);
  }

  async start(spec: LaunchSpec, slot: 'current' | 'next' = 'current'): Promise<ObservedProcess> {
    if (this.#tracked.has(slotKey(spec.name, slot))) throw new ApiaryError('Io', `server "${spec.name}" already has a ${slot} process`);
    try {
      const observed = await this.#spawn(spec, slot);
      if (slot === 'current') this.#history.started(spec.name);
      return observed;
    } catch (err) {
      // A start that failed before a process existed is a failed run of the server, with back-off.
      if (slot === 'current' && err instanceof ApiaryError && err.code === 'StartFailed') {
        const now = new Date(this.#clock.now()).toISOString();
        this.#history.ended(spec.name, { exitCode: null, signal: null, finishedAt: now, reason: 'StartError', message: err.message, ranForMs: 0, slot, configHash: spec.configHash, generation: spec.generation });
      }
      throw err;
    }
  }

  async #spawn(spec: LaunchSpec, slot: 'current' | 'next'): Promise<ObservedProcess> {
    // Synchronous file work up to the spawn: many servers starting at once on a
    // busy machine would otherwise queue behind each other in libuv's threadpool.
    this.#checkWorkingDir(spec);
    // A next process writes its own log until it takes over: the current one keeps writing NAME.log.
    const sandboxed: SpawnRun = spec.sandbox !== undefined ? await this.#sandboxed(spec) : { command: spec.command, args: spec.args, env: spec.env };
    // A server whose output goes straight to its log (it outlives the controller) runs through the output shim, which
    // redacts its secrets line by line on the way. A stdio server's stderr, and a sandboxed server's output (it goes with
    // the controller: --die-with-parent, which a shim between them would tie to the shim), pass through apiary instead.
    const shimmed = !spec.attachStdio && spec.sandbox === undefined && spec.secretEnv !== undefined;
    try {
      return await this.#spawnRun(spec, slot, shimmed ? { ...sandboxed, ...throughShim(sandboxed, spec.secretEnv!) } : sandboxed);
    } catch (err) {
      sandboxed.ingress?.close();
      throw err;
    }
  }

  async #spawnRun(spec: LaunchSpec, slot: 'current' | 'next', run: SpawnRun): Promise<ObservedProcess> {
    const logFd = slot === 'current' ? this.#openFreshLog(spec.name) : openSync(this.#layout.nextLogFile(spec.name), 'w', FILE_MODE);
    // A stdio server lives only as long as the controller's pipes to it: its stderr can pass through apiary too (redacted);
    // so can a sandboxed HTTP server's stdout and stderr, as it goes with the controller. Any other server outlives the
    // controller, so its output stays on the file (a pipe to a gone controller breaks), through the shim when it has secrets.
    const piped = spec.attachStdio || spec.sandbox !== undefined;
    let child: ChildProcess;
    try {
      child = spawn(run.command, [...run.args], {
        cwd: spec.cwd,
        env: run.env,
        shell: false,
        detached: true,
        // Piped: the log stays open as fd 3 all the same, so a next controller still finds the server by it (groupLeadersLoggingTo).
        stdio: piped ? ['pipe', 'pipe', 'pipe', logFd] : ['pipe', logFd, logFd],
      });
    } catch (err) {
      closeSync(logFd);
      // Node validates argv and env synchronously, and its message quotes the
      // offending value (which may be a secret): only the code goes further.
      throw startError(spec, err as NodeJS.ErrnoException);
    }
    // The descriptor stays open only for the stderr copy, which closes it when the pipe ends.
    const output = !piped || child.stderr === null ? undefined : spec.attachStdio || child.stdout === null ? child.stderr : mergeLines(child.stdout, child.stderr);
    const stderrDrained = output !== undefined ? pipeStderr(output, logFd, () => (line) => this.#stderrFilter(spec.name, line)) : undefined;
    if (stderrDrained === undefined) closeSync(logFd);
    if (child.pid === undefined) {
      const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
      throw startError(spec, error);
    }
    // A later 'error' (e.g. EPIPE on stdin) must not crash the controller.
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    const pid = child.pid;
    const startedAtMs = this.#clock.now();
    const observed: ObservedProcess = {
      name: spec.name,
      pid,
      slot,
      startedAt: new Date(startedAtMs).toISOString(),
      configHash: spec.configHash,
      generation: spec.generation,
      stopping: false,
      adopted: false,
      ...(spec.attachStdio && child.stdin && child.stdout ? { stdio: { stdin: child.stdin, stdout: child.stdout } } : {}),
    };
    const tracked = this.#track(observed, startedAtMs, child);
    if (spec.secrets !== undefined) tracked.secrets = spec.secrets;
    if (stderrDrained !== undefined) tracked.stderrDrained = stderrDrained;
    if (run.ingress !== undefined) tracked.ingress = run.ingress;
    if (this.#held !== undefined) {
      signalGroup(pid, 'SIGSTOP');
      this.#held.add(pid);
    }
    this.#scheduleIndex();
    child.once('exit', (code, signal) => {
      const finish = (): void =>
        this.#finish(tracked, {
          exitCode: code,
          signal,
          reason: tracked.stopRequested ? (tracked.failure?.reason ?? 'Stopped') : signal !== null ? 'Signal' : code === 0 ? 'Completed' : 'Error',
          ...(tracked.stopRequested && tracked.failure ? { message: tracked.failure.message } : {}),
        });
      if (tracked.stderrDrained === undefined) return finish();
      // Reported once its last words are in the log (lastOutput quotes them): the group goes first, so nothing holds the pipe.
      signalGroup(pid, 'SIGKILL');
      const late = this.#clock.setTimeout(finish, STDERR_DRAIN_MS);
      void tracked.stderrDrained.then(() => {
        late.cancel();
        finish();
      });
    });
    tracked.record = {
      name: spec.name,
      pid,
      startedAt: observed.startedAt,
      configHash: spec.configHash,
      generation: spec.generation,
      command: basename(spec.command),
      ...(spec.sandbox !== undefined ? { sandboxed: true } : {}),
      ...(procStartTime(pid) !== undefined ? { procStart: procStartTime(pid)! } : {}),
    };
    await this.#writeRecord(tracked.record, slot);
    return observed;
  }

  promote(name: string): void {
    const current = this.#tracked.get(slotKey(name, 'current'));
    const next = this.#tracked.get(slotKey(name, 'next'));
    if (next === undefined) throw new ApiaryError('Io', `server "${name}" has no next process to promote`);
    if (this.#tracked.has(slotKey(name, 'old'))) throw new ApiaryError('Io', `server "${name}" still has an old process`);
    this.#tracked.delete(slotKey(name, 'next'));
    next.observed.slot = 'current';
    this.#tracked.set(slotKey(name, 'current'), next);
    if (current !== undefined) {
      current.observed.slot = 'old';
      this.#tracked.set(slotKey(name, 'old'), current);
    }
    // Each process keeps writing its own file (the descriptors follow the renames):
    // the old one's output is `logs --previous` from now on, the new one's `logs`.
    renameIfPresent(this.#layout.logFile(name), this.#layout.previousLogFile(name));
    renameIfPresent(this.#layout.logIndexFile(name), this.#layout.previousLogIndexFile(name));
    renameIfPresent(this.#layout.nextLogFile(name), this.#layout.logFile(name));
    this.#indexed.set(name, 0);
    // Records move in an order that a crash at any point leaves adoptable: the
    // old record first, then the current one overwritten, then next's removed.
    // Adoption keeps NAME.json and ends whatever NAME.old/next.json name besides.
    this.#recordTexts.delete(slotKey(name, 'next'));
    if (current?.record !== undefined) void this.#writeRecord(current.record, 'old');
    if (next.record !== undefined) void this.#writeRecord(next.record, 'current');
    void this.#recordOp(name, () => rm(this.#layout.processRecord(name, 'next'), { force: true }));
  }

  /**
   * A cold start of many servers competes with itself: every server already
   * started boots on the cores the controller spawns and records from, and a
   * spawn waits for its child to be scheduled to exec. Measured here, 100 node
   * servers took 7.3 s just to spawn (~75 ms each); held stopped while the
   * controller starts and records them all, they spawn in ~0.1 s. The
   * controller holds during its first pass and releases when it is done.
   */
  holdStarts(): void {
    this.#held ??= new Set();
  }

  releaseHeld(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const pid of held ?? []) signalGroup(pid, 'SIGCONT');
  }

  killAll(): number {
    let killed = 0;
    for (const tracked of this.#tracked.values()) {
      tracked.stopRequested = true;
      tracked.observed.stopping = true;
      signalGroup(tracked.observed.pid, 'SIGKILL');
      killed++;
    }
    return killed;
  }

  async stop(name: string, slot: Slot = 'current', options: StopOptions = {}): Promise<Termination | undefined> {
    const tracked = this.#tracked.get(slotKey(name, slot));
    if (tracked === undefined) return undefined;
    tracked.stopRequested = true;
    if (options.failure !== undefined) tracked.failure = options.failure;
    tracked.observed.stopping = true;
    const pid = tracked.observed.pid;
    tracked.child?.stdin?.end();
    const within = (ms: number): Promise<Termination | undefined> =>
      Promise.race([tracked.exited, new Promise<undefined>((resolve) => this.#clock.setTimeout(() => resolve(undefined), ms))]);
    let done = tracked.child !== undefined && options.terminate !== true ? await within(this.#stdinGraceMs) : undefined;
    if (done === undefined) {
      signalGroup(pid, 'SIGTERM');
      // A stopped (SIGSTOP, hung in a debugger) process only sees SIGTERM once it runs again.
      signalGroup(pid, 'SIGCONT');
      done = await within(this.#termGraceMs);
    }
    if (done === undefined) {
      signalGroup(pid, 'SIGKILL');
      done = await tracked.exited;
    }
    return done;
  }

  async adopt(): Promise<AdoptionReport> {
    const report: AdoptionReport = { adopted: [], gone: [], unreadable: [], strays: [] };
    const files = await readdir(this.#layout.processDir).catch(() => [] as string[]);
    // A controller that died mid-rollout leaves NAME.next.json or NAME.old.json beside NAME.json:
    // the current process is adopted, and any other is ended (read after the current ones).
    const sidelined: { path: string; record: ProcessRecord }[] = [];
    for (const file of files) {
      if (!file.endsWith('.json')) continue;
      const path = `${this.#layout.processDir}/${file}`;
      let record: ProcessRecord;
      let slot: Slot;
      try {
        record = JSON.parse(await readFile(path, 'utf8')) as ProcessRecord;
        slot = (/^[^.]+\.(next|old)\.json$/.exec(file)?.[1] as Slot | undefined) ?? 'current';
        // Only a record apiary could have written: named after its server and slot, with a pid.
        if (!isDns1123Label(record.name) || file !== basename(this.#layout.processRecord(record.name, slot)) || !Number.isInteger(record.pid)) throw new Error('not a process record');
      } catch (err) {
        report.unreadable.push({ file: path, error: messageOf(err) });
        await rm(path, { force: true });
        continue;
      }
      if (slot !== 'current') {
        sidelined.push({ path, record });
        continue;
      }
      if (this.#tracked.has(slotKey(record.name, 'current'))) continue;
      if (!isSameProcess(record.pid, record.procStart)) {
        report.gone.push({ name: record.name, pid: record.pid });
        await rm(path, { force: true });
        continue;
      }
      if (record.sandboxed === true) {
        this.#endSandboxed(report, record.name, record.pid);
        await rm(path, { force: true });
        continue;
      }
      report.adopted.push(this.#adoptRecord(record));
    }
    for (const { path, record } of sidelined) {
      const adopted = this.#tracked.get(slotKey(record.name, 'current'))?.observed.pid === record.pid;
      if (!adopted && isSameProcess(record.pid, record.procStart)) {
        signalGroup(record.pid, 'SIGKILL');
        report.strays.push({ name: record.name, pid: record.pid, action: 'killed' });
      }
      await rm(path, { force: true });
    }
    this.#adoptUnrecorded(report);
    return report;
  }

  #adoptRecord(record: ProcessRecord): ObservedProcess {
    const observed: ObservedProcess = {
      name: record.name,
      pid: record.pid,
      slot: 'current',
      startedAt: record.startedAt,
      configHash: record.configHash,
      generation: record.generation,
      stopping: false,
      adopted: true,
    };
    const tracked = this.#track(observed, Date.parse(record.startedAt));
    tracked.record = record;
    this.#recordTexts.set(slotKey(record.name, 'current'), { name: record.name, slot: 'current', pid: record.pid, text: JSON.stringify(record, null, 2) });
    // A controller killed during a cold start may have left it held.
    signalGroup(record.pid, 'SIGCONT');
    this.#pollAdopted(record, tracked);
    return observed;
  }

  /**
   * A record can be lost (damaged or removed while no controller ran). The
   * server still names itself by the log file its stderr is open on: one
   * found that way is adopted with an unknown configuration (so the next
   * pass rolls it to the manifest), and a second copy of a server already
   * adopted is killed. Either way, never two copies of one server.
   */
  #adoptUnrecorded(report: AdoptionReport): void {
    const logDir = this.#layout.logDir;
    // Killed just above (an old or next copy, or a sandboxed one, from its record) but not gone yet: still holding its log, already handled.
    const killed = new Set([...report.strays.filter((s) => s.action === 'killed').map((s) => s.pid), ...(report.ended ?? []).map((e) => e.pid)]);
    for (const found of groupLeadersLoggingTo(logDir)) {
      if (killed.has(found.pid)) continue;
      const name = /^(.+?)(\.previous|\.next)?\.log$/.exec(basename(found.file))?.[1];
      if (name === undefined || !isDns1123Label(name)) continue;
      const tracked = this.#tracked.get(slotKey(name, 'current'));
      if (tracked?.observed.pid === found.pid) continue;
      if (this.#isSandboxLeader(found.pid)) {
        this.#endSandboxed(report, name, found.pid);
        continue;
      }
      if (tracked !== undefined) {
        signalGroup(found.pid, 'SIGKILL');
        report.strays.push({ name, pid: found.pid, action: 'killed' });
        continue;
      }
      const now = new Date(this.#clock.now()).toISOString();
      const record: ProcessRecord = { name, pid: found.pid, procStart: found.procStart, startedAt: now, configHash: 'unknown', generation: 0, command: '' };
      report.adopted.push(this.#adoptRecord(record));
      report.strays.push({ name, pid: found.pid, action: 'adopted' });
      void this.#writeRecord(record, 'current');
    }
  }

  /**
   * A sandboxed server is reached only through what its controller served
   * (the ingress listener, the egress socket), and was started to go with it
   * (--die-with-parent): one still running when another controller starts
   * is ended, and the next pass starts it again, reachable.
   */
  #endSandboxed(report: AdoptionReport, name: string, pid: number): void {
    signalGroup(pid, 'SIGKILL');
    (report.ended ??= []).push({ name, pid });
  }

  /** Whether a process group's leader is bubblewrap (a sandboxed server found without its record). */
  #isSandboxLeader(pid: number): boolean {
    let argv0: string;
    try {
      argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    } catch {
      return false;
    }
    return argv0 === findBwrap(this.#env) || basename(argv0) === 'bwrap';
  }

  async maintain(): Promise<void> {
    await this.#repairRecords();
    for (const name of this.#currentNames()) {
      const path = this.#layout.logFile(name);
      const size = (await stat(path).catch(() => undefined))?.size ?? 0;
      if (size <= this.#maxLogBytes) continue;
      // copytruncate: the child appends (O_APPEND), so it carries on at the new end.
      await copyFile(path, this.#layout.rotatedLogFile(name));
      await truncate(path, 0);
      renameIfPresent(this.#layout.logIndexFile(name), `${this.#layout.rotatedLogFile(name)}.idx`);
      this.#indexed.set(name, 0);
    }
  }

  #track(observed: ObservedProcess, startedAtMs: number, child?: ChildProcess): Tracked {
    let resolveExit!: (t: Termination) => void;
    const exited = new Promise<Termination>((resolve) => (resolveExit = resolve));
    const tracked: Tracked = { observed, startedAtMs, exited, resolveExit, stopRequested: false, ...(child ? { child } : {}) };
    this.#tracked.set(slotKey(observed.name, observed.slot), tracked);
    return tracked;
  }

  #finish(tracked: Tracked, exit: { exitCode: number | null; signal: string | null; reason: string; message?: string }): void {
    const { name, slot } = tracked.observed;
    if (this.#tracked.get(slotKey(name, slot)) !== tracked) return;
    this.#tracked.delete(slotKey(name, slot));
    // The leader is gone; whatever it left in its group goes too.
    signalGroup(tracked.observed.pid, 'SIGKILL');
    tracked.ingress?.close();
    const now = this.#clock.now();
    const termination: Termination = {
      pid: tracked.observed.pid,
      slot,
      configHash: tracked.observed.configHash,
      generation: tracked.observed.generation,
      exitCode: exit.exitCode,
      signal: exit.signal,
      finishedAt: new Date(now).toISOString(),
      reason: exit.reason,
      ...(exit.message !== undefined ? { message: exit.message } : {}),
      ranForMs: Math.max(0, now - tracked.startedAtMs),
    };
    const lastOutput = exit.reason === 'Error' || exit.reason === 'Signal' ? lastOutputLine(this.#logFileOf(name, slot), tracked.secrets ?? []) : undefined;
    if (lastOutput !== undefined) termination.lastOutput = lastOutput;
    // Report the exit in the same turn the process leaves observe(): a reconcile in between
    // would see neither the process nor its termination, and start a second copy.
    if (slot === 'current') this.#history.ended(name, termination);
    tracked.resolveExit(termination);
    for (const listener of this.#listeners) listener(name, termination);
    this.#recordTexts.delete(slotKey(name, slot));
    void this.#recordOp(name, () => rm(this.#layout.processRecord(name, slot), { force: true }));
    if (slot === 'current') void this.#indexLog(name);
    if (this.#egress?.serving(name) === true && ![...this.#tracked.values()].some((t) => t.observed.name === name)) void this.#egress.close(name);
  }

  #recordOp(name: string, op: () => Promise<unknown>): Promise<void> {
    const next = (this.#recordOps.get(name) ?? Promise.resolve()).then(op).then(
      () => undefined,
      () => undefined,
    );
    this.#recordOps.set(name, next);
    return next;
  }

  #pollAdopted(record: ProcessRecord, tracked: Tracked): void {
    const check = (): void => {
      if (!this.#isTracked(tracked)) return;
      if (isSameProcess(record.pid, record.procStart)) {
        this.#clock.setTimeout(check, this.#adoptedPollMs);
        return;
      }
      this.#finish(tracked, {
        exitCode: null,
        signal: null,
        reason: tracked.stopRequested ? (tracked.failure?.reason ?? 'Stopped') : 'Lost',
        message: tracked.stopRequested && tracked.failure ? tracked.failure.message : 'exit status unknown: the process was started by an earlier controller',
      });
    };
    this.#clock.setTimeout(check, this.#adoptedPollMs);
  }

  #checkWorkingDir(spec: LaunchSpec): void {
    const info = statOrUndefined(spec.cwd);
    if (info?.isDirectory() !== true) {
      throw new ApiaryError('StartFailed', `working directory ${spec.cwd} does not exist`);
    }
  }

  /**
   * The bubblewrap command line that runs a sandboxed server, and its
   * environment: a private home, and for network allow the egress proxy
   * (served first) as its HTTP(S)_PROXY; for none, no proxy settings at all.
   */
  async #sandboxed(spec: LaunchSpec): Promise<{ command: string; args: readonly string[]; env: Record<string, string>; ingress?: Ingress }> {
    const sandbox = spec.sandbox!;
    const support = this.sandboxSupport();
    // Never run bare what asked for a sandbox (the reconciler shows SandboxUnavailable before it gets here).
    if (!support.available) throw new ApiaryError('StartFailed', `cannot sandbox: ${support.reason}`);
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(spec.env)) if (!/^(https?|all|no)_proxy$/i.test(key)) env[key] = value;
    const given = spec.env['HOME'];
    env['HOME'] = given !== undefined && given.startsWith('/') && given !== '/' ? given : '/home/sandbox';
    const ingress = spec.listenPort !== undefined ? await this.#openIngress(spec.name, spec.listenPort) : undefined;
    let egressSocket: string | undefined;
    if (sandbox.network === 'allow') {
      egressSocket = await this.#serveEgress(spec.name, sandbox.allow).catch((err: unknown) => {
        ingress?.close();
        throw new ApiaryError('StartFailed', `cannot start the egress proxy for the sandbox: ${messageOf(err)}`);
      });
      const proxy = `http://127.0.0.1:${EGRESS_PORT}`;
      // NODE_USE_ENV_PROXY: Node (22.21+, 24.5+) honours the variables only when asked to.
      Object.assign(env, { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy, NO_PROXY: '', no_proxy: '', NODE_USE_ENV_PROXY: '1' });
    }
    const args = sandboxArgs({
      sandbox,
      command: spec.command,
      args: spec.args,
      cwd: spec.cwd,
      home: env['HOME'],
      stateDir: this.#layout.root,
      nodePath: process.execPath,
      ...(egressSocket !== undefined ? { egressSocket } : {}),
      ...(ingress !== undefined ? { ingress: { dir: ingress.dir, socketName: INGRESS_SOCKET_NAME, port: spec.listenPort! } } : {}),
    });
    return { command: support.bwrap, args, env, ...(ingress !== undefined ? { ingress } : {}) };
  }

  /** A sandboxed HTTP server's port on the host, served through its sandbox (one folder per process under the state directory's ingress/). */
  async #openIngress(name: string, port: number): Promise<Ingress> {
    return Ingress.open(join(this.#layout.root, 'ingress'), name, port).catch((err: unknown) => {
      throw new ApiaryError('StartFailed', `cannot serve the sandboxed server's port: ${messageOf(err)}`);
    });
  }

  /** Serves the server's egress (one socket per server, under the state directory); returns the socket's path. */
  async #serveEgress(name: string, allow: readonly string[]): Promise<string> {
    this.#egress ??= new EgressProxy((refusal) => this.#egressRefused(refusal));
    return this.#egress.serve(name, join(this.#layout.root, 'egress', fileSafeName(name)), allow);
  }

  /** A refusal goes to the server's own log, where `apiary logs NAME` shows it beside what the server said about it. */
  #egressRefused(refusal: EgressRefusal): void {
    const line = `apiary egress proxy: refused ${refusal.method} ${refusal.target}: not in spec.sandbox.allow of server ${refusal.server} (403)\n`;
    void appendFile(this.#layout.logFile(refusal.server), line, { mode: FILE_MODE }).catch(() => undefined);
    if (this.#egressDenied !== undefined && this.#deniedReported.first(refusal.server, refusal.target)) this.#egressDenied(refusal.server, refusal.target);
  }

  /** The log a process in a slot writes (a replaced one's was renamed when the next took over). */
  #logFileOf(name: string, slot: Slot): string {
    if (slot === 'next') return this.#layout.nextLogFile(name);
    return slot === 'old' ? this.#layout.previousLogFile(name) : this.#layout.logFile(name);
  }

  #openFreshLog(name: string): number {
    mkdirSync(this.#layout.logDir, { recursive: true, mode: DIR_MODE });
    const current = this.#layout.logFile(name);
    const size = statOrUndefined(current)?.size ?? 0;
    if (size > 0) renameSync(current, this.#layout.previousLogFile(name));
    renameIfPresent(this.#layout.logIndexFile(name), this.#layout.previousLogIndexFile(name));
    this.#indexed.set(name, 0);
    return openSync(current, 'a', FILE_MODE);
  }

  #isTracked(tracked: Tracked): boolean {
    return this.#tracked.get(slotKey(tracked.observed.name, tracked.observed.slot)) === tracked;
  }

  /** Written in order with removals; skipped when the process is already gone again (or has moved to another slot). */
  async #writeRecord(record: ProcessRecord, slot: Slot): Promise<void> {
    await this.#recordOp(record.name, async () => {
      if (this.#tracked.get(slotKey(record.name, slot))?.observed.pid !== record.pid) return;
      const text = JSON.stringify(record, null, 2);
      await ensureDir(this.#layout.processDir);
      await writeFileAtomic(this.#layout.processRecord(record.name, slot), text);
      this.#recordTexts.set(slotKey(record.name, slot), { name: record.name, slot, pid: record.pid, text });
    });
  }

  /**
   * A record is how the next controller finds a process after a crash: one
   * damaged or removed behind our back would leave that process to run
   * unseen beside a new copy. Each is checked, and rewritten if it is not
   * what was written.
   */
  async #repairRecords(): Promise<void> {
    for (const [key, written] of this.#recordTexts) {
      if (this.#tracked.get(key)?.observed.pid !== written.pid) {
        this.#recordTexts.delete(key);
        continue;
      }
      const current = await readFile(this.#layout.processRecord(written.name, written.slot), 'utf8').catch(() => undefined);
      if (current !== written.text) await this.#writeRecord(JSON.parse(written.text) as ProcessRecord, written.slot);
    }
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    // Nothing to move.
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function startError(spec: LaunchSpec, error: NodeJS.ErrnoException): ApiaryError {
  const message =
    error.code === 'ENOENT'
      ? `command "${spec.command}" not found${spec.command.includes('/') ? '' : ' on PATH'}`
      : error.code === 'EACCES'
        ? `command "${spec.command}" is not executable`
        : `cannot start "${spec.command}": ${error.code ?? error.name}`;
  // No cause: the raw error's message may quote argv or environment values.
  return new ApiaryError('StartFailed', message);
}
