/**
 * The entry of apiary's V8 start-up snapshot (`node --build-snapshot`, run by
 * scripts/bundle.mjs). `get` and `validate` are where start-up shows: most of
 * their time went to what every run redid the same way (reading the bundle
 * and its code cache, running its top level, building the schemas,
 * compiling the YAML parser and the validators). The build loads the bundle,
 * runs both verbs once on the bundled manifests so what they run is compiled,
 * and V8 saves that heap; ./bin/apiary starts those verbs from it. Every start
 * deserializes that heap, so it holds only what those runs need: the schemas
 * as src/api/lite-schema.ts records them (not zod, loaded only for a document
 * they refuse), and get and validate without commander (src/cli/snapshot-main.ts,
 * which imports it only for a command line its own parser leaves). Nothing of
 * the run's environment is kept: the verbs take it from their context (the
 * build runs them with an empty environment), and paths come from where the
 * snapshot is at run time.
 *
 * While building, require() gives built-in modules only: a verb that needed
 * anything else (a vendor file, a native addon) fails the build here rather
 * than a run later. At run time every require goes through the bundle's
 * place, as the launcher's would (built-ins from this file's require).
 */
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import v8 = require('node:v8');

type Main = (argv: readonly string[], io: unknown, env: NodeJS.ProcessEnv) => Promise<number>;
type Wrapper = (exports: object, require: (id: string) => unknown, module: { exports: unknown }, filename: string, dirname: string) => void;

const dist = path.join(__dirname, '..', '..');
/** The bundle of src/cli/snapshot-main.ts: the CLI with get and validate only. */
const bundle = path.join(dist, 'apiary-snapshot.cjs');
/** The bundle's entry (src/cli/snapshot-main.ts) hands its main here. */
const HANDOFF = Symbol.for('apiary.snapshot');
/** What the snapshot's verbs were warmed with, and all that may start from it (bin/apiary asks for no other). */
const VERBS = ['get', 'validate'];

/** Output of the warming runs: dropped. */
const quiet = { out: (): void => undefined, err: (): void => undefined, color: false, isTTY: false, status: (): void => undefined };

/** Where the blob is, known once it runs (setDeserializeMainFunction, below). */
let here: string | undefined;
/** The require of the bundle's place, for what is not built in (a vendor file, zod's path, a native addon): made the first time one is asked for. */
let packageRequire: ((id: string) => unknown) | undefined;

/**
 * The bundle's require when it runs from the snapshot. A built-in module
 * comes from this file's require (the one node gives a snapshot's entry,
 * which serves built-ins only, and refuses anything else as not found);
 * anything else from a require made at the bundle's place, with node:module,
 * which is loaded only then (~0.3 ms a start that get and validate mostly do
 * without).
 */
function runtimeRequire(id: string): unknown {
  if (!id.startsWith('.') && !id.startsWith('/')) {
    try {
      return require(id);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  if (packageRequire === undefined) {
    if (here === undefined) throw new Error(`require('${id}') before the snapshot runs`);
    // node:module only now: it is not among the built-ins a snapshot may hold loaded.
    const { createRequire } = require('node:module') as typeof import('node:module');
    packageRequire = createRequire(path.join(here, 'apiary.cjs'));
  }
  return packageRequire(id);
}

function loadBundle(): Main {
  let main: Main | undefined;
  (globalThis as Record<symbol, unknown>)[HANDOFF] = (handed: Main): void => {
    main = handed;
  };
  // The Function constructor, not node:vm, which node does not count among the built-ins a snapshot may hold loaded.
  const source = `${fs.readFileSync(bundle, 'latin1')}\n//# sourceURL=${bundle}`;
  const wrapped = new Function('exports', 'require', 'module', '__filename', '__dirname', source) as Wrapper;
  const module = { exports: {} };
  wrapped.call(module.exports, module.exports, (id) => (here === undefined ? require(id) : runtimeRequire(id)), module, bundle, dist);
  delete (globalThis as Record<symbol, unknown>)[HANDOFF];
  if (main === undefined) throw new Error(`${bundle} did not hand over its main`);
  return main;
}

/** The blob this process started from: --snapshot-blob's value, taken out of execArgv so a child node does not inherit it. */
function takeBlobArg(): string {
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--snapshot-blob' && i + 1 < args.length) return args.splice(i, 2)[1]!;
    if (arg.startsWith('--snapshot-blob=')) return args.splice(i, 1)[0]!.slice('--snapshot-blob='.length);
  }
  throw new Error('started without --snapshot-blob');
}

const main = loadBundle();

async function warm(): Promise<void> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'apiary-snapshot-'));
  try {
    const manifests = path.join(dist, '..', 'manifests');
    for (const verb of VERBS) {
      const code = await main(verb === 'get' ? ['get', '--dir', manifests, '--state-dir', state] : [verb, manifests], quiet, {});
      if (code !== 0) throw new Error(`warming the snapshot: apiary ${verb} exited ${code}`);
    }
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
}

warm().catch((err: unknown) => {
  process.exitCode = 1;
  throw err;
});

v8.startupSnapshot.setDeserializeMainFunction(() => {
  here = path.dirname(path.resolve(takeBlobArg()));
  // As if started by the launcher: apiary finds its package (catalog, console, a detached up) from argv[1].
  process.argv.splice(1, 0, path.join(here, 'src', 'cli', 'launch.cjs'));
  void main(process.argv.slice(2), undefined, process.env).then((code) => {
    process.exitCode = code;
  });
});
