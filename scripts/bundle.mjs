// Build step after tsc: the CLI as one CommonJS script (dist/apiary.cjs), so a
// verb pays neither for resolving ~100 module files nor (with the V8 code cache
// the launcher keeps beside it) for compiling them. Verbs stay lazily loaded:
// esbuild turns each dynamic import() into an initializer that runs on demand.
// Native addons stay outside the bundle. Then one run warms the code cache.
//
// A verb still pays for reading the whole script and loading its code cache,
// both in proportion to its size; so the dependencies only some verbs use, and
// that make most of it (the Kubernetes client is half), are bundled apart in
// dist/vendor/, each read the first time a module needs it (see VENDOR).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

const EXTERNAL = ['@napi-rs/keyring', 'fs-native-extensions'];

/**
 * The packages bundled apart, by the file they make in dist/vendor/: every
 * module path a pattern matches (a package's subpaths too, as each is
 * imported) goes to that file. The packages of one file share their
 * dependencies (the MCP SDKs their core), so a value one hands another is one
 * it recognizes; a package may be in a file when what it shares with the rest
 * of the bundle (zod, for the MCP SDKs) only goes through methods of its own
 * values (a result schema's parse), as each file carries its own copies of
 * what it depends on.
 */
const VENDOR = {
  kubernetes: /^@kubernetes\/client-node(\/|$)/,
  mcp: /^@modelcontextprotocol\//,
  // Only for values sealed with age recipients (strings and bytes in, strings and bytes out).
  age: /^age-encryption(\/|$)/,
  // Only up's manifest watcher.
  chokidar: /^chokidar(\/|$)/,
  // Only a Gateway with spec.telemetry (src/mcp/otel.ts, imported dynamically): ~140 ms of CPU to load.
  otel: /^@opentelemetry\//,
};
/** Each module path the main bundle imports from a vendor file: the file and its key in the file's exports, in the order met. */
const VENDORED = new Map();

function vendored(path) {
  const file = Object.keys(VENDOR).find((name) => VENDOR[name].test(path));
  if (file === undefined) return undefined;
  if (!VENDORED.has(path)) VENDORED.set(path, { file, key: `p${[...VENDORED.values()].filter((v) => v.file === file).length}` });
  return VENDORED.get(path);
}

/**
 * import() inside a vm.Script run from a code cache has no loader to call
 * (Node loses the script's import callback), so every dynamic import of a
 * module left outside the bundle (native addons, node: built-ins) becomes a
 * lazily initialized module that require()s it: same laziness, no import().
 */
const requireInsteadOfImport = {
  name: 'require-instead-of-import',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      if (!EXTERNAL.includes(args.path) && !args.path.startsWith('node:')) return undefined;
      return { path: args.path, namespace: 'require-external' };
    });
    build.onLoad({ filter: /.*/, namespace: 'require-external' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * An import of a vendored package, static or dynamic, becomes a module that
 * require()s its file beside the bundle when it is first initialized: the
 * launcher serves that require from a code cache of its own.
 */
const requireVendor = {
  name: 'require-vendor',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.namespace === 'vendor') return { path: args.path, external: true };
      return vendored(args.path) === undefined ? undefined : { path: args.path, namespace: 'vendor' };
    });
    build.onLoad({ filter: /.*/, namespace: 'vendor' }, (args) => {
      const { file, key } = vendored(args.path);
      return { contents: `module.exports = require(${JSON.stringify(`./vendor/${file}.cjs`)}).${key};`, loader: 'js' };
    });
  },
};

/**
 * A plugin that edits one text in the package files a pattern matches, as
 * loaded. A package that no longer has the text is bundled as it is, with
 * a warning (`what`, the edit a reader would miss).
 */
function editModule(name, filter, from, to, what) {
  return {
    name,
    setup(build) {
      build.onLoad({ filter }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const found = typeof from === 'string' ? text.includes(from) : from.test(text);
        if (!found) return { contents: text, loader: 'js', warnings: [{ text: `${what} is not there` }] };
        return { contents: text.replace(from, to), loader: 'js' };
      });
    },
  };
}

/**
 * commander requires node:child_process (and with it net, stream, dgram) when
 * it loads, for the executable subcommands apiary does not have: a few
 * milliseconds of every verb's start. Its one use, spawn, requires it then.
 * A commander that no longer has the line is bundled as it is, with a warning.
 */
const lazyChildProcess = editModule(
  'lazy-child-process',
  /[\\/]commander[\\/]lib[\\/]command\.js$/,
  "const childProcess = require('node:child_process');",
  "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };",
  'commander: the require of node:child_process to make lazy',
);

/**
 * zod's namespace carries every language's error messages (z.locales, 63 of
 * them, a fifth of the bundle every verb reads); apiary's messages are
 * English, set by zod itself when it loads, and nothing picks another. So
 * z.locales holds English alone. Only the main bundle: the MCP SDKs' file
 * keeps its own zod whole.
 */
const englishOnlyZod = {
  name: 'english-only-zod',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(args.resolveDir, '..', 'locales'), namespace: 'zod-english' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-english' }, (args) => ({ contents: "export { default as en } from './en.js';", resolveDir: args.path, loader: 'js' }));
  },
};


/**
 * The snapshot's CLI (src/cli/snapshot-main.ts) gives main the two verbs it
 * runs, so the other verbs' modules, which main.js's own table imports, are
 * never loaded there: they are left out of its bundle (each an empty module),
 * and so out of the heap every get and validate reads at start.
 */
const SNAPSHOT_VERBS = /^\.\/commands\/(get|validate)\.js$/;
const onlySnapshotVerbs = {
  name: 'only-snapshot-verbs',
  setup(build) {
    build.onResolve({ filter: /^\.\/commands\/[a-z-]+\.js$/ }, (args) => {
      if (args.kind !== 'dynamic-import' || !/[\\/]cli[\\/]main\.js$/.test(args.importer) || SNAPSHOT_VERBS.test(args.path)) return undefined;
      return { path: args.path, namespace: 'not-in-snapshot' };
    });
    build.onLoad({ filter: /.*/, namespace: 'not-in-snapshot' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/**
 * Two of zod's schema methods make a schema for metadata only: a clone links
 * to the schema it was made from (`.optional()`, `.min()`: `_zod.parent`),
 * only so a registry's metadata is inherited, and `.describe()` makes a clone
 * to register a description on. Parsing reads neither, and get and validate
 * never read a description (explain, which does, is not in the snapshot).
 * Both kept schemas alive: 390 zod schemas where there were 625. The zod path
 * the start-up snapshot loads for a document its lite schemas refuse
 * (SNAPSHOT_ZOD, below) drops the link, and its describe gives the schema
 * itself, so it loads less; the main bundle keeps zod whole. (When zod was in
 * the snapshot's heap, this saved 110 KB of blob and about 6 million of 187
 * million instructions a get, under cachegrind.)
 */
const zodWithoutMetadataClones = [
  editModule('no-zod-clone-parents', /[\\/]zod[\\/]v4[\\/]core[\\/]util\.js$/, /if \(!def \|\| params\?\.parent\)\s*cl\._zod\.parent = inst;/, '', "zod: clone's parent link to drop"),
  editModule(
    'no-zod-describe-clones',
    /[\\/]zod[\\/]v4[\\/]classic[\\/]schemas\.js$/,
    /describe\(description\) \{\s*const cl = this\.clone\(\);\s*core\.globalRegistry\.add\(cl, \{ description \}\);\s*return cl;\s*\}/,
    'describe() { return this; }',
    "zod: describe's clone to drop",
  ),
];

/**
 * zod out of the start-up snapshot: its library and apiary's schemas were a
 * third of the heap every get and validate deserialized at start (1.3 MB of
 * 4 MB; a snapshot without them: get 1.87x -> 1.65x `node -e 0`). In the
 * snapshot's bundle, src/api/manifests.ts builds its schemas with
 * src/api/lite-schema.ts (the same calls, recorded as data), and parse.ts's
 * checkManifest asks them first (src/manifests/check-manifest-lite.ts); a
 * document they refuse, the first time, loads SNAPSHOT_ZOD, the zod path
 * bundled apart (src/manifests/check-manifest.ts), through the launcher's
 * code cache (src/cli/launch.cts, loadBeside), so every message is the one
 * zod's issues make. A manifests.ts that no longer imports zod so is
 * bundled as it is, with a warning (and zod then stays in the snapshot).
 */
const SNAPSHOT_ZOD = 'apiary-snapshot-zod.cjs';
const liteSchemas = [
  editModule('lite-manifest-schemas', /[\\/]dist[\\/]src[\\/]api[\\/]manifests\.js$/, "import * as z from 'zod';", "import * as z from './lite-schema.js';", "manifests.ts: the import of zod to replace"),
  {
    name: 'lite-check-manifest',
    setup(build) {
      build.onResolve({ filter: /^\.\/check-manifest\.js$/ }, (args) =>
        /[\\/]manifests[\\/]parse\.js$/.test(args.importer) ? { path: join(args.resolveDir, 'check-manifest.js'), namespace: 'lite-check' } : undefined,
      );
      build.onResolve({ filter: /^\.\/src\/cli\/launch\.cjs$/ }, (args) => ({ path: args.path, external: true }));
      build.onLoad({ filter: /.*/, namespace: 'lite-check' }, (args) => ({
        contents: `import { conformManifest } from './check-manifest-lite.js';
let zodCheck;
export function checkManifest(apiVersion, kind, input) {
  return conformManifest(apiVersion, kind, input) ?? (zodCheck ??= require('./src/cli/launch.cjs').loadBeside('${SNAPSHOT_ZOD}').checkManifest)(apiVersion, kind, input);
}`,
        resolveDir: join(args.path, '..'),
        loader: 'js',
      }));
    },
  },
];

/**
 * In the start-up snapshot's bundle, apiary's imports of node:fs/promises get
 * src/cli/snapshot-fs.ts instead: the same functions, its reads blocking
 * (get and validate read a dozen small files; as promises, each a trip to the
 * thread pool, they cost a start ~1.1 ms). Its own import of node:fs/promises
 * is node's.
 */
const blockingReads = {
  name: 'blocking-reads',
  setup(build) {
    build.onResolve({ filter: /^(node:)?fs\/promises$/ }, (args) =>
      /[\\/]dist[\\/]src[\\/]/.test(args.importer) && !/[\\/]cli[\\/]snapshot-fs\.js$/.test(args.importer) ? { path: join(process.cwd(), 'dist', 'src', 'cli', 'snapshot-fs.js') } : undefined,
    );
  },
};

/**
 * The `yaml` package out of the start-up snapshot: in its bundle, apiary's
 * imports of it get a module that reads with src/manifests/yaml-lite.ts (the
 * subset manifests are written in, with the package's positions and values)
 * and loads SNAPSHOT_YAML, the package bundled apart, through the launcher's
 * code cache, for a text the reader leaves (a YAML error, an anchor, a block
 * scalar...) and for stringify (get -o yaml). The package was 160 KB of the
 * bundle's 350 and 2.8 ms of a get's 7 ms of work. A module of the snapshot
 * that imports any other name from it fails this build (esbuild: no such
 * export), rather than bundling the package back in unseen.
 */
const SNAPSHOT_YAML = 'apiary-snapshot-yaml.cjs';
const liteYaml = {
  name: 'lite-yaml',
  setup(build) {
    build.onResolve({ filter: /^yaml$/ }, (args) => (/[\\/]dist[\\/]src[\\/]/.test(args.importer) ? { path: 'yaml', namespace: 'lite-yaml' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lite-yaml' }, () => ({
      contents: `import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocumentsLite } from './manifests/yaml-lite.js';
let full;
const yaml = () => (full ??= require('./src/cli/launch.cjs').loadBeside('${SNAPSHOT_YAML}'));
export { LineCounter, isMap, isPair, isScalar, isSeq };
export function parseAllDocuments(text, options) {
  return parseAllDocumentsLite(text, options?.lineCounter) ?? yaml().parseAllDocuments(text, options);
}
export function stringify(...args) {
  return yaml().stringify(...args);
}`,
      resolveDir: join(process.cwd(), 'dist', 'src'),
      loader: 'js',
    }));
  },
};

const OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // ESM builds first: jsonc-parser's UMD build requires its parts at run time, which a bundle cannot follow.
  mainFields: ['module', 'main'],
  target: 'node20.19',
  external: EXTERNAL,
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
};

/** A vendor file's entry: each package's part (see vendorPart) as a namespace under its key. */
const vendorEntry = (pkgs) => pkgs.map((pkg, i) => `import * as p${i} from ${JSON.stringify(`vendor-part:${pkg}`)};\nexport { p${i} };`).join('\n');

const vendorParts = {
  name: 'vendor-parts',
  setup(build) {
    build.onResolve({ filter: /^vendor-part:/ }, (args) => ({ path: args.path.slice('vendor-part:'.length), namespace: 'vendor-part' }));
    build.onLoad({ filter: /.*/, namespace: 'vendor-part' }, (args) => ({ contents: vendorPart(args.path), resolveDir: '.', loader: 'js' }));
  },
};

/**
 * What the vendor file of a package exports: the names apiary's modules import
 * from it (tsc has dropped the type-only ones), so esbuild leaves out the rest
 * of the package as it would in one bundle; everything when a module takes the
 * whole namespace or imports it dynamically.
 */
function vendorPart(pkg) {
  const quoted = `['"]${pkg.replace(/[/.]/g, '\\$&')}['"]`;
  const named = new RegExp(`import\\s*\\{([^}]*)\\}\\s*from\\s*${quoted}`, 'g');
  const whole = new RegExp(`(import\\s*\\*\\s*as\\s*\\w+\\s*from|import\\s*\\()\\s*${quoted}`);
  const names = new Set();
  for (const entry of readdirSync('dist/src', { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    if (whole.test(text)) return `export * from ${JSON.stringify(pkg)};`;
    for (const [, list] of text.matchAll(named)) {
      for (const name of list.split(',').map((part) => part.trim().split(/\s+as\s+/)[0].trim())) if (name !== '' && !name.startsWith('type ')) names.add(name);
    }
  }
  return `export { ${[...names].sort().join(', ')} } from ${JSON.stringify(pkg)};`;
}

/**
 * The launcher reads a bundle as Latin-1, which costs a copy where UTF-8 costs
 * a decoding and, for one character past ASCII, a string of two bytes a
 * character: esbuild leaves some characters (in regular expressions) as they
 * are, so they become \u escapes, which mean the same in a string, a template,
 * a regular expression and an identifier.
 */
function asciiOnly(file) {
  const text = readFileSync(file, 'utf8');
  // eslint-disable-next-line no-control-regex
  const ascii = text.replace(/[^\x00-\x7f]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(file, ascii);
}

const MAIN_PLUGINS = [requireInsteadOfImport, requireVendor, lazyChildProcess, englishOnlyZod];
await build({ ...OPTIONS, plugins: MAIN_PLUGINS, entryPoints: ['dist/src/cli/bin.js'], outfile: 'dist/apiary.cjs' });
asciiOnly('dist/apiary.cjs');
// What the start-up snapshot holds (below): the CLI with get and validate only, built the same way.
await build({ ...OPTIONS, plugins: [onlySnapshotVerbs, blockingReads, liteYaml, ...liteSchemas, ...MAIN_PLUGINS], entryPoints: ['dist/src/cli/snapshot-main.js'], outfile: 'dist/apiary-snapshot.cjs' });
asciiOnly('dist/apiary-snapshot.cjs');
// The zod path the snapshot's get and validate load for a document the lite schemas refuse.
await build({ ...OPTIONS, plugins: [...zodWithoutMetadataClones, englishOnlyZod], entryPoints: ['dist/src/manifests/check-manifest.js'], outfile: `dist/${SNAPSHOT_ZOD}` });
asciiOnly(`dist/${SNAPSHOT_ZOD}`);
// The yaml package, for what the snapshot's reader leaves and for stringify.
await build({ ...OPTIONS, stdin: { contents: "export { parseAllDocuments, stringify } from 'yaml';", resolveDir: '.', loader: 'js' }, outfile: `dist/${SNAPSHOT_YAML}` });
asciiOnly(`dist/${SNAPSHOT_YAML}`);
for (const file of Object.keys(VENDOR)) {
  const pkgs = [...VENDORED].filter(([, v]) => v.file === file).map(([path]) => path);
  if (pkgs.length === 0) continue;
  const outfile = `dist/vendor/${file}.cjs`;
  await build({ ...OPTIONS, plugins: [requireInsteadOfImport, vendorParts], stdin: { contents: vendorEntry(pkgs), resolveDir: '.', loader: 'js' }, outfile });
  asciiOnly(outfile);
}
// The cache is made by get on the bundled manifests: what get and validate
// share (reading YAML, checking it with zod) comes compiled, which saves them
// more than --help's cache of every verb's top level (measured: get 1.69x
// node's start with it, 1.81x with --help's).
// Only a cache: if get fails here, the first verb run makes it. The old caches
// go first: V8 checks a cache against its script's length only, and get keeps
// a cache it accepts.
for (const entry of readdirSync('dist', { recursive: true, withFileTypes: true })) {
  if (entry.isFile() && entry.name.endsWith('.v8cache')) rmSync(join(entry.parentPath, entry.name));
}
const state = mkdtempSync(join(tmpdir(), 'apiary-bundle-'));
spawnSync(process.execPath, ['dist/src/cli/launch.cjs', 'get', '--dir', 'manifests', '--state-dir', state], { stdio: 'ignore' });
rmSync(state, { recursive: true, force: true });

// A V8 start-up snapshot for get and validate (src/cli/snapshot.cts says what
// it holds; measured in bench/cli.ts). It only works with the node that made
// it, so beside it goes which one: its path, in a file as old as the snapshot,
// which bin/apiary compares with the node on PATH using shell built-ins only
// (another node, or that one replaced by a newer file since, and it does not
// use the snapshot). Not in the package (package.json files): an install has
// no snapshot and starts as before.
// Only a speed-up: if building it fails, the verbs start as they did.
const BLOB = 'dist/apiary.blob';
rmSync(BLOB, { force: true });
rmSync(`${BLOB}.node`, { force: true });
// The builder runs its entry with require and __dirname but no exports, which tsc's CommonJS output sets.
const ENTRY = 'dist/src/cli/snapshot-entry.cjs';
writeFileSync(ENTRY, `(function (exports) {\n${readFileSync('dist/src/cli/snapshot.cjs', 'utf8')}\n})({});\n`);
// Without NODE_OPTIONS: node refuses a snapshot run with V8 flags other than it was built with (a CI's
// --max-old-space-size would make every later get exit 14), and bin/apiary uses it only without such flags.
const env = { ...process.env };
delete env.NODE_OPTIONS;
const snapshot = spawnSync(process.execPath, ['--snapshot-blob', BLOB, '--build-snapshot', ENTRY], { encoding: 'utf8', env });
if (snapshot.status === 0) {
  writeFileSync(`${BLOB}.node`, `${process.execPath}\n`);
} else {
  rmSync(BLOB, { force: true });
  console.warn(`bundle: no start-up snapshot (get and validate start without one): ${(snapshot.stderr || snapshot.error?.message || '').trim().split('\n').slice(0, 3).join(' ')}`);
}
