/**
 * What ./bin/apiary runs: the bundled CLI (dist/apiary.cjs) through a V8
 * code cache kept beside it, one per Node.js version, so a verb starts close
 * to node's own start-up time. The dependencies bundled apart (dist/vendor/,
 * required by the bundle when a verb first needs one) get a cache each, the
 * same way. Without the bundle (a build without esbuild) it runs the
 * unbundled CLI. The cache is only a cache: missing, stale (V8 rejects it),
 * unwritable or not ours, it is rebuilt or passed over.
 */
import fs = require('node:fs');
import path = require('node:path');
import url = require('node:url');
import vm = require('node:vm');

const { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, writeSync } = fs;
const { dirname, join } = path;

const bundle = join(__dirname, '..', '..', 'apiary.cjs');
const VENDOR = /^\.\/vendor\/[a-z-]+\.cjs$/;

/**
 * A run of up or ui (until stopped) compiles, over hours, most of what it
 * ever runs: as the bundle's cache, every short verb would pay to load all
 * that. Such a run leaves the bundle's cache to the next short verb (the
 * vendor files, which short verbs do not read, it caches). A server named
 * "up" in a get's argument only means that get does the same.
 */
const longRunning = process.argv.slice(2).some((arg) => arg === 'up' || arg === 'ui');

type Wrapper = (exports: object, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

function ownedAndPrivate(path: string): boolean {
  const info = statSync(path, { throwIfNoEntry: false });
  return info !== undefined && info.uid === process.getuid?.() && (info.mode & 0o022) === 0;
}

/** Writes the script's cache at exit, when the run has compiled what it needed; atomically, owner-only. */
function saveAtExit(script: vm.Script, cacheFile: string): void {
  process.once('exit', () => {
    try {
      const temp = `${cacheFile}.${process.pid}.tmp`;
      const fd = openSync(temp, 'wx', 0o600);
      writeSync(fd, script.createCachedData());
      closeSync(fd);
      renameSync(temp, cacheFile);
    } catch {
      // A read-only checkout: run without a cache.
    }
  });
}

/**
 * Node's CommonJS wrapper (Module.wrap), written out: loading node:module
 * for it, and for createRequire, costs more than the rest of this file. The
 * bundle's require is this file's (see requireFor), which finds the packages
 * left outside the bundle the same way from here as from beside the bundle.
 */
const wrap = (source: string): string => `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;

/** A bundled CommonJS script, run once, from its code cache when there is a good one. */
function load(file: string): unknown {
  const cacheFile = `${file}.${process.version}-${process.arch}.v8cache`;
  // The build leaves only ASCII in a bundle (scripts/bundle.mjs): Latin-1 reads it as is, a copy, no decoding.
  const source = readFileSync(file, 'latin1');
  const cachedData = ownedAndPrivate(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new vm.Script(wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
  const stale = cachedData === undefined || script.cachedDataRejected === true;
  if (stale && !(file === bundle && longRunning)) saveAtExit(script, cacheFile);
  const module = { exports: {} };
  (script.runInThisContext() as Wrapper).call(module.exports, module.exports, requireFor(file), module, file, dirname(file));
  return module.exports;
}

/** The bundle's require: a vendor file through load (once), anything else as node would. */
function requireFor(file: string): NodeJS.Require {
  const plain = require;
  const loaded = new Map<string, unknown>();
  const bundled = ((id: string): unknown => {
    if (!VENDOR.test(id)) return plain(id);
    if (!loaded.has(id)) loaded.set(id, load(join(dirname(file), id)));
    return loaded.get(id);
  }) as NodeJS.Require;
  return Object.assign(bundled, { resolve: plain.resolve, cache: plain.cache, main: plain.main, extensions: plain.extensions });
}

/**
 * A script bundled beside the main bundle, loaded as a vendor file is: the
 * start-up snapshot's get and validate load zod's path
 * (dist/apiary-snapshot-zod.cjs) so, for a document their schemas refuse,
 * and the yaml package (dist/apiary-snapshot-yaml.cjs), for a text their
 * reader leaves and for -o yaml. They require this file for it, which then
 * runs no CLI of its own.
 */
function loadBeside(name: string): unknown {
  return load(join(dirname(bundle), name));
}
exports.loadBeside = loadBeside;

if (require.main === module) {
  if (existsSync(bundle)) load(bundle);
  else void import(url.pathToFileURL(join(__dirname, 'bin.js')).href);
}
