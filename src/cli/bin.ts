import { main } from './main.js';

/**
 * Set while the start-up snapshot is built (src/cli/snapshot.cts): that build
 * runs the verbs itself, and the runs started from the snapshot call main.
 */
const SNAPSHOT_HANDOFF = Symbol.for('apiary.snapshot');
const handoff = (globalThis as Record<symbol, unknown>)[SNAPSHOT_HANDOFF] as ((run: typeof main) => void) | undefined;

// No top-level await: the launcher loads this entry as one bundled CommonJS script.
if (handoff !== undefined) handoff(main);
else
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
