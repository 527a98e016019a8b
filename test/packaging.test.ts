/**
 * The package as a user gets it: `npm pack` of a copy of the checkout (its
 * prepack builds and sets `prepare` aside, postpack puts it back), the
 * tarball installed with `npm install -g` into a temp prefix (dependencies
 * from npm's cache, else the registry), then that apiary's --version, npx of
 * the same tarball, init and the service's unit pointing into the installed
 * package, and `apiary up` on the bundled manifests it ships until hello is
 * Ready. Slow: about 90 s on a quiet 2-core machine, mostly the
 * build inside npm pack.
 */
import { execFile, spawn } from 'node:child_process';
import { cp, readFile, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { tempDir, workspace } from './helpers/tmp.js';
import { inCi, requireTool } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);

/** A command's outcome whatever its exit code. */
async function outcome(command: string, args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...(await run(command, [...args], { cwd, maxBuffer: 64 * 1024 * 1024 })) };
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(err) };
  }
}
const npm = requireTool('npm', 'it comes with Node.js (https://nodejs.org); a distribution may package it apart: apt install npm');
/** What a copy of the checkout leaves out: installed, built or written by runs. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', 'coverage', 'test-artifacts', '.apiary-state']);
/** npm failing to reach the registry: a machine offline skips (CI fails). */
const OFFLINE = /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|network/;

async function copyCheckout(to: string): Promise<void> {
  for (const name of await readdir(ROOT)) {
    if (!NOT_COPIED.has(name)) await cp(join(ROOT, name), join(to, name), { recursive: true });
  }
  await symlink(join(ROOT, 'node_modules'), join(to, 'node_modules'));
}

it.runIf(npm.available)('npm pack, npm install -g of the tarball, then apiary --version, npx and apiary up on the bundled manifests', async (context) => {
  const root = await tempDir('apiary-pack-');
  const checkout = join(root, 'checkout');
  await copyCheckout(checkout);
  const manifestBefore = await readFile(join(checkout, 'package.json'), 'utf8');

  const packed = await run('npm', ['pack', '--json', '--pack-destination', root], { cwd: checkout, maxBuffer: 64 * 1024 * 1024 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  expect(files).toEqual(expect.arrayContaining(['bin/apiary', 'dist/apiary.cjs', 'dist/vendor/kubernetes.cjs', 'dist/vendor/mcp.cjs', 'dist/src/cli/launch.cjs', 'dist/console/index.html', 'manifests/hello.yaml', 'examples/hello-server.mjs', 'catalog/server-memory.json', 'schemas/apiary.schema.json']));
  expect(files.filter((f) => /^(src|test|ui|scripts|bench|chaos)\/|\.v8cache$|\.blob(\.node)?$|^dist\/(test|bench|chaos)\//.test(f))).toEqual([]);
  // postpack put prepare back: the checkout's npm install still builds.
  expect(await readFile(join(checkout, 'package.json'), 'utf8')).toBe(manifestBefore);
  const tarball = join(root, info!.filename);

  const prefix = join(root, 'prefix');
  const install = await outcome('npm', ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'], root);
  if (install.code !== 0 && !inCi() && OFFLINE.test(install.stderr)) return context.skip(`npm could not reach the registry for apiary's dependencies: ${install.stderr}`);
  expect(install).toMatchObject({ code: 0 });
  // No warning at install: no engine the package's dependencies exclude, no install script npm was not allowed to run.
  expect(install.stderr.split('\n').filter((line) => /warn/i.test(line))).toEqual([]);

  const apiary = join(prefix, 'bin', 'apiary');
  expect((await run(apiary, ['--version'])).stdout).toBe('0.1.0\n');
  const npx = await run('npx', ['--yes', '--prefer-offline', '--package', tarball, '--', 'apiary', '--version'], { cwd: root });
  expect(npx.stdout).toBe('0.1.0\n');

  // From the installed package, init's hello and the service's unit point into it.
  const installed = join(prefix, 'lib', 'node_modules', 'apiary');
  const home = join(root, 'home');
  const userEnv: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_STATE_HOME: join(home, '.local', 'state') };
  for (const name of ['APIARY_DIR', 'APIARY_STATE_DIR', 'APIARY_GIT']) delete userEnv[name];
  const perUser = join(home, '.config', 'apiary', 'manifests');
  expect((await run(apiary, ['init'], { cwd: root, env: userEnv })).stdout).toContain(`created ${perUser} with 2 starter manifest(s)`);
  expect(await readFile(join(perUser, 'hello.yaml'), 'utf8')).toContain(JSON.stringify(join(installed, 'examples', 'hello-server.mjs')));
  if (process.platform === 'linux') {
    const unit = await run(apiary, ['service', 'install', '--dry-run'], { cwd: root, env: userEnv });
    expect(unit.stdout).toContain(`ExecStart="${process.execPath}" "${join(installed, 'dist', 'src', 'cli', 'launch.cjs')}" "up" "--dir" "${perUser}" "--state-dir"`);
  }

  const ws = await workspace(root);
  const env: NodeJS.ProcessEnv = { ...process.env, ...ws.env, NO_COLOR: '1' };
  delete env['APIARY_DIR'];
  const up = spawn(apiary, ['up', '--dir', join(installed, 'manifests'), '--no-ui'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stdout.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => up.on('exit', (code) => resolve(code)));
  try {
    const wait = await run(apiary, ['wait', 'mcp/hello', '--for=condition=Ready', '--dir', join(installed, 'manifests'), '--timeout', '120s'], { env });
    expect(wait.stdout).toContain('mcpserver/hello condition met: Ready=True');
    const get = await run(apiary, ['get', 'mcp', '--dir', join(installed, 'manifests')], { env });
    expect(get.stdout).toMatch(/hello\s+Running\s+True/);
  } finally {
    up.kill('SIGTERM');
  }
  await waitFor('the installed apiary up to stop after SIGTERM', () => up.exitCode !== null || up.signalCode !== null, 60_000, { observe: () => output });
  expect(await exited).toBe(0);
}, 600_000);
