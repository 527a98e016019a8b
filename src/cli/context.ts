import type { Command, Option } from 'commander';
import { KeyStore } from '../crypto/keys.js';
import { resolveLocations, type Locations } from '../state/paths.js';
import type { Io } from './io.js';

/** What every command needs: output, and the directories from the global options. */
export interface CliContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  exitCode: number;
  locations(cmd: GlobalOptionSource): Locations;
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
      const opts = cmd.optsWithGlobals();
      return resolveLocations({ dir: opts.dir, stateDir: opts.stateDir, git: opts.git }, env);
    },
  };
}

/**
 * Where the global options (--dir, --state-dir, --git) come from: a commander
 * Command, or what the start-up snapshot's own parser read (src/cli/snapshot-argv.ts).
 */
export interface GlobalOptionSource {
  optsWithGlobals(): { dir?: string; stateDir?: string; git?: string };
}

/** Made by the command it goes on (`cmd.createOption`), so this file loads nothing of commander: the start-up snapshot runs get and validate without it. */
export function outputOption<T extends string>(cmd: Command, choices: readonly T[], fallback: T): Option {
  return cmd.createOption('-o, --output <format>', 'output format').choices(choices).default(fallback);
}
