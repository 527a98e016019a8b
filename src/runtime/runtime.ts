import type { Readable, Writable } from 'node:stream';

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
}

export interface Termination {
  pid?: number;
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  /** Why: Completed, Error, Signal, StartError, Stopped, Lost (gone while apiary was down). */
  reason: string;
  message?: string;
  /** How long the process ran, for back-off reset. */
  ranForMs: number;
}

export interface ObservedProcess {
  name: string;
  pid: number;
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
}

export type ExitListener = (name: string, termination: Termination) => void;

export interface Runtime {
  /** Starts a server; rejects with an ApiaryError (code StartFailed) when it cannot be started at all. */
  start(spec: LaunchSpec): Promise<ObservedProcess>;
  /** Stops a server gracefully; resolves when it is gone. */
  stop(name: string): Promise<Termination | undefined>;
  observe(name: string): ObservedProcess | undefined;
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
  /** Optional: kill every server at once (SIGKILL), synchronously; returns how many. */
  killAll?(): number;
}
