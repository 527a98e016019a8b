import { Option, type Command } from 'commander';
import { KeyStore } from '../crypto/keys.js';
import { resolveLocations, type Locations } from '../state/paths.js';
import type { Io } from './io.js';

/** What every command needs: output, and the directories from the global options. */
export interface CliContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  exitCode: number;
  locations(cmd: Command): Locations;
  /** The master key store (one per process, so the key is fetched once). */
  keys: KeyStore;
}

export function createContext(io: Io, env: NodeJS.ProcessEnv): CliContext {
  return {
    io,
    env,
    exitCode: 0,
    keys: new KeyStore({ env }),
    locations(cmd) {
      const opts = cmd.optsWithGlobals<{ dir?: string; stateDir?: string; git?: string }>();
      return resolveLocations({ dir: opts.dir, stateDir: opts.stateDir, git: opts.git }, env);
    },
  };
}

export function outputOption<T extends string>(choices: readonly T[], fallback: T): Option {
  return new Option('-o, --output <format>', 'output format').choices(choices).default(fallback);
}
