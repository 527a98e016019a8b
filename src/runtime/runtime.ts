import type { Readable, Writable } from 'node:stream';
import type { Slot } from '../api/slot.js';
import type { RunHistory } from './history.js';
import type { SandboxSpec, SandboxSupport } from './sandbox.js';

/**
 * The seam between the controller and whatever runs servers. The process
 * runtime implements it with local processes; a Kubernetes runtime can
 * implement it with pods. Nothing here knows about manifests or status.
 */

/** Everything needed to start one server. `env` holds resolved secret values: never log it. */
export interface LaunchSpec {
  name: string;
  command: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Fingerprint of the effective configuration (spec plus secret values), without the values. */
  configHash: string;
  /** The same fingerprint part by part (`args`, `env GITHUB_TOKEN`, ...), to say what changed. */
  configParts?: Readonly<Record<string, string>>;
  generation: number;
  /** Keep stdout as a pipe for apiary (stdio MCP servers); otherwise it goes to the log. */
  attachStdio: boolean;
  /** The secret values in `env`: whatever of the server's output is reported (lastOutput) has them redacted. */
  secrets?: readonly string[];
  /**
   * The variables of `env` that carry a secret value, each with the secret and
   * key it comes from (names only): a server whose output goes straight to its
   * log has it redacted there by the output shim, which reads the values from
   * its own environment.
   */
  secretEnv?: Readonly<Record<string, { secret: string; key: string }>>;
  /** spec.sandbox, resolved: run the command under bubblewrap (a runtime that cannot refuses to start it, never runs it bare). */
  sandbox?: SandboxSpec;
  /** An HTTP server's own port ($PORT), where apiary's proxy and probe reach it: a sandboxed one is served there through its sandbox's ingress forwarder. */
  listenPort?: number;
}

export interface Termination {
  pid?: number;
  /** The slot the process held when it ended, and the configuration it ran. */
  slot?: Slot;
  configHash?: string;
  generation?: number;
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  /** Why: Completed, Error, Signal, StartError, Stopped, Lost (gone while apiary was down). */
  reason: string;
  message?: string;
  /** A run that failed: the last line its output ended with, its secrets redacted (the kubelet's FallbackToLogsOnError). */
  lastOutput?: string;
  /** How long the process ran, for back-off reset. */
  ranForMs: number;
}

export interface ObservedProcess {
  name: string;
  pid: number;
  slot: Slot;
  startedAt: string;
  configHash: string;
  generation: number;
  /** A stop has been asked for and is in progress. */
  stopping: boolean;
  /** Found running from an earlier controller, rather than started by this one. */
  adopted: boolean;
  /** The process's stdin and stdout, when apiary holds them (stdio servers it started). */
  stdio?: { stdin: Writable; stdout: Readable };
}

export interface AdoptionReport {
  adopted: ObservedProcess[];
  /** Records whose process was gone (or whose pid now belongs to another process). */
  gone: { name: string; pid: number }[];
  /** Records that could not be read (damaged, foreign): removed, and their process, if any, is lost to apiary. */
  unreadable: { file: string; error: string }[];
  /** Server processes found without a record (by their log file): adopted, or killed as a second copy. */
  strays: { name: string; pid: number; action: 'adopted' | 'killed' }[];
  /**
   * Sandboxed servers an earlier controller left running (they go with it, so
   * only one that had not gone yet): ended, never adopted, since the sockets
   * its sandbox is reached through were the old controller's. Started again
   * by the next pass.
   */
  ended?: { name: string; pid: number }[];
}

export interface StopOptions {
  /** SIGTERM at once, without first waiting for the process to leave when its stdin closes. */
  terminate?: boolean;
  /** Why, when it is a failure rather than a stop asked for (e.g. Unhealthy): recorded as the termination's reason, and counted for back-off. */
  failure?: { reason: string; message: string };
}

export type ExitListener = (name: string, termination: Termination) => void;

export interface Runtime {
  /**
   * Starts a server's process in a slot (`current` by default; `next` beside
   * a running one, for a rolling update); rejects with an ApiaryError (code
   * StartFailed) when it cannot be started at all.
   */
  start(spec: LaunchSpec, slot?: 'current' | 'next'): Promise<ObservedProcess>;
  /**
   * Stops the process in a slot (`current` by default) gracefully; resolves
   * when it is gone. `terminate`: SIGTERM at once instead of first waiting
   * for the process to leave on its own when its stdin closes (for a process
   * that never served anyone, such as a rollout's new one given up).
   */
  stop(name: string, slot?: Slot, options?: StopOptions): Promise<Termination | undefined>;
  observe(name: string, slot?: Slot): ObservedProcess | undefined;
  /**
   * The `next` process takes over: it becomes `current`, and the one it
   * replaces becomes `old` (still running, to be stopped once it has
   * finished its work). Throws when there is no next process or an old one
   * is still there.
   */
  promote(name: string): void;
  /** Every process of every server, in every slot. */
  list(): ObservedProcess[];
  /** Finds servers left running by an earlier controller. */
  adopt(): Promise<AdoptionReport>;
  onExit(listener: ExitListener): void;
  /** Periodic housekeeping (log rotation). */
  maintain(): Promise<void>;
  /**
   * Optional: keep processes started from now on from running until
   * releaseHeld(), so a cold start of many servers is not slowed by the
   * servers it has already started (see ProcessRuntime).
   */
  holdStarts?(): void;
  releaseHeld?(): void;
  /** What the runtime observed of a server's runs: restarts, the last termination, failures in a row. */
  history(name: string): RunHistory;
  /** Carries over an earlier controller's restart count, waives back-off ({ failures: 0 }), or forgets a server (undefined). */
  amendHistory(name: string, change: Partial<RunHistory> | undefined): void;
  /**
   * Optional: whether this runtime can run a server sandboxed (spec.sandbox)
   * here, and if not why and the way out. A runtime without it isolates
   * servers its own way (a cluster's pods).
   */
  sandboxSupport?(): SandboxSupport;
  /**
   * Optional: what each line a server writes to stderr passes through on its
   * way to the log, where the runtime copies it (stdio servers': the gateway's
   * secret redaction). Without it, lines are copied as they are.
   */
  setOutputFilter?(filter: (name: string, line: string) => string): void;
  /**
   * Optional: told when a sandboxed server's egress proxy refused a host:port
   * not in its allow list, at most once per EGRESS_DENIED_INTERVAL_MS per
   * server and target (every refusal is in the server's log all the same).
   */
  onEgressDenied?(listener: (name: string, target: string) => void): void;
  /** Optional: kill every server at once (SIGKILL), synchronously; returns how many. */
  killAll?(): number;
}
