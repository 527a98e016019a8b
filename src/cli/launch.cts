/**
 * What ./bin/apiary runs: the bundled CLI (dist/apiary.cjs) through a V8
 * code cache kept beside it, one per Node.js version, so a verb starts close
 * to node's own start-up time. Without the bundle (a build without esbuild)
 * it runs the unbundled CLI. The cache is only a cache: missing, stale
 * (V8 rejects it), unwritable or not ours, it is rebuilt or passed over.
 */
import fs = require('node:fs');
import Module = require('node:module');
import path = require('node:path');
import url = require('node:url');
import vm = require('node:vm');

const { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, writeSync } = fs;
const { join } = path;

const bundle = join(__dirname, '..', '..', 'apiary.cjs');

function ownedAndPrivate(path: string): boolean {
  const info = statSync(path, { throwIfNoEntry: false });
  return info !== undefined && info.uid === process.getuid?.() && (info.mode & 0o022) === 0;
}

function run(): void {
  const cacheFile = `${bundle}.${process.version}-${process.arch}.v8cache`;
  const source = readFileSync(bundle, 'utf8');
  const cachedData = ownedAndPrivate(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new vm.Script(Module.wrap(source), {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    // Written at exit, when the run has compiled what it needed; atomically, owner-only.
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
  const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} };
  wrapper.call(module.exports, module.exports, Module.createRequire(bundle), module, bundle, join(bundle, '..'));
}

if (existsSync(bundle)) run();
else void import(url.pathToFileURL(join(__dirname, 'bin.js')).href);
