/**
 * The CLI the start-up snapshot holds (src/cli/snapshot.cts, bundled apart as
 * dist/apiary-snapshot.cjs): get and validate only, the verbs bin/apiary
 * starts from the snapshot, so it carries no other verb's code (a heap of
 * 0.9 MB less to read at every start: about 2.5 ms). The snapshot's build
 * takes main from here and runs it; it never runs on its own.
 */
import { main, type Verbs } from './main.js';

const SNAPSHOT_VERBS: Verbs = {
  get: () => import('./commands/get.js').then((m) => m.registerGet),
  validate: () => import('./commands/validate.js').then((m) => m.registerValidate),
};

type Main = (argv: readonly string[], io: Parameters<typeof main>[1], env: NodeJS.ProcessEnv) => Promise<number>;
const HANDOFF = Symbol.for('apiary.snapshot');
const handoff = (globalThis as Record<symbol, unknown>)[HANDOFF] as ((run: Main) => void) | undefined;
if (handoff === undefined) throw new Error('snapshot-main is for the start-up snapshot\'s build only');
handoff((argv, io, env) => main(argv, io, env, SNAPSHOT_VERBS));
