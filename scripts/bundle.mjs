// Build step after tsc: the CLI as one CommonJS script (dist/apiary.cjs), so a
// verb pays neither for resolving ~100 module files nor (with the V8 code cache
// the launcher keeps beside it) for compiling them. Verbs stay lazily loaded:
// esbuild turns each dynamic import() into an initializer that runs on demand.
// Native addons stay outside the bundle. Then one run warms the code cache.
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';

const EXTERNAL = ['@napi-rs/keyring', 'fs-native-extensions'];

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

await build({
  plugins: [requireInsteadOfImport],
  entryPoints: ['dist/src/cli/bin.js'],
  outfile: 'dist/apiary.cjs',
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
});
// --help registers every verb, so the cache covers every module's top level.
execFileSync(process.execPath, ['dist/src/cli/launch.cjs', '--help'], { stdio: 'ignore' });
