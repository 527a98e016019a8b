/**
 * The CLI the start-up snapshot holds (src/cli/snapshot.cts, bundled apart as
 * dist/apiary-snapshot.cjs): get and validate only, the verbs bin/apiary
 * starts from the snapshot, so it carries no other verb's code (a heap of
 * 0.9 MB less to read at every start: about 2.5 ms). A command line in the
 * plain forms (src/cli/snapshot-argv.ts) runs the verb directly; any other
 * goes through main.ts and commander, imported only then, so that neither
 * is set up in the heap the snapshot saves (both verbs' warming runs take
 * the direct way). The snapshot's build takes main from here and runs it;
 * it never runs on its own.
 */
import { createContext } from './context.js';
import { descriptorIo, type Io } from './io.js';
import type { Verbs } from './main.js';
import { reportFailure } from './report-failure.js';
import { readSnapshotArgv, type SnapshotCommand } from './snapshot-argv.js';
import { APIARY_VERSION } from '../util/version.js';

const SNAPSHOT_VERBS: Verbs = {
  get: () => import('./commands/get.js').then((m) => m.registerGet),
  validate: () => import('./commands/validate.js').then((m) => m.registerValidate),
};

async function run(command: SnapshotCommand, io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  if (command.verb === 'version') {
    io.out(APIARY_VERSION);
    return 0;
  }
  const ctx = createContext(io, env);
  try {
    if (command.verb === 'get') await (await import('./commands/get.js')).runGet(ctx, command.type, command.name, command.opts, command.globals);
    else await (await import('./commands/validate.js')).runValidate(ctx, command.path, command.opts, command.globals);
    return ctx.exitCode;
  } catch (err) {
    return reportFailure(io, err);
  }
}

type Main = (argv: readonly string[], io: Io | undefined, env: NodeJS.ProcessEnv) => Promise<number>;
const HANDOFF = Symbol.for('apiary.snapshot');
const handoff = (globalThis as Record<symbol, unknown>)[HANDOFF] as ((run: Main) => void) | undefined;
if (handoff === undefined) throw new Error('snapshot-main is for the start-up snapshot\'s build only');
handoff(async (argv, io, env) => {
  const command = readSnapshotArgv(argv);
  if (command !== undefined) return run(command, io ?? descriptorIo(), env);
  return (await import('./main.js')).main(argv, io, env, SNAPSHOT_VERBS);
});
