/**
 * `apiary init` and the per-user manifest directory: the order a verb finds
 * its directory in (--dir, $APIARY_DIR, ./manifests when it exists, the
 * per-user directory), and an installed
 * apiary run from any folder using the directory init made.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveLocations } from '../src/state/paths.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

/** A home of its own: config, state and data homes in a temp folder, and an empty folder to run from. */
async function home(): Promise<{ root: string; cwd: string; perUser: string; env: NodeJS.ProcessEnv }> {
  const root = await tempDir('apiary-init-');
  const cwd = join(root, 'elsewhere');
  await mkdir(cwd);
  const env = { HOME: root, XDG_CONFIG_HOME: join(root, 'config'), XDG_STATE_HOME: join(root, 'state'), XDG_DATA_HOME: join(root, 'data') };
  return { root, cwd, perUser: join(root, 'config', 'apiary', 'manifests'), env };
}

/** The environment of a CLI run: the test's own, without the variables that name a directory. */
function cliEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete merged['APIARY_DIR'];
  delete merged['APIARY_STATE_DIR'];
  delete merged['APIARY_GIT'];
  return merged;
}

describe('where a verb finds its manifest directory', () => {
  it('--dir, then $APIARY_DIR, then ./manifests when it exists, else the per-user directory (made or not)', async () => {
    const h = await home();
    const dirOf = (options: { dir?: string }, env: NodeJS.ProcessEnv = h.env): string => resolveLocations(options, env, h.cwd).dirDisplay;
    expect(dirOf({})).toBe(h.perUser);
    await mkdir(h.perUser, { recursive: true });
    expect(dirOf({})).toBe(h.perUser);
    expect(dirOf({}, { ...h.env, APIARY_DIR: '/from/env' })).toBe('/from/env');
    expect(dirOf({ dir: '/from/flag' }, { ...h.env, APIARY_DIR: '/from/env' })).toBe('/from/flag');
    await mkdir(join(h.cwd, 'manifests'));
    expect(dirOf({})).toBe('manifests');
    expect(resolveLocations({}, h.env, h.cwd).dir).toBe(join(h.cwd, 'manifests'));
  });

  it('the per-user directory is ~/.config/apiary/manifests when $XDG_CONFIG_HOME is unset or relative (the XDG spec ignores a relative one)', async () => {
    const h = await home();
    const fallback = join(h.root, '.config', 'apiary', 'manifests');
    await mkdir(fallback, { recursive: true });
    expect(resolveLocations({}, { HOME: h.root, XDG_STATE_HOME: join(h.root, 'state') }, h.cwd).dirDisplay).toBe(fallback);
    expect(resolveLocations({}, { HOME: h.root, XDG_CONFIG_HOME: 'relative/config', XDG_STATE_HOME: join(h.root, 'state') }, h.cwd).dirDisplay).toBe(fallback);
  });
});

describe('apiary init', () => {
  const downs: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const down of downs.splice(0)) await down();
  });

  it('makes the per-user directory (0700, files 0600) with starters that validate, and a second init writes nothing', async () => {
    const h = await home();
    const env = cliEnv(h.env);
    const first = await runCli(['init'], { cwd: h.cwd, env });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`created ${h.perUser} with 2 starter manifest(s):`);
    expect((await readdir(h.perUser)).sort()).toEqual(['hello.yaml', 'memory.yaml']);
    expect((await stat(h.perUser)).mode & 0o777).toBe(0o700);
    for (const file of ['hello.yaml', 'memory.yaml']) expect((await stat(join(h.perUser, file))).mode & 0o777).toBe(0o600);
    const before = await readFile(join(h.perUser, 'hello.yaml'), 'utf8');

    // Every verb run from a folder without ./manifests now uses it.
    const validate = await runCli(['validate'], { cwd: h.cwd, env });
    expect(validate.code).toBe(0);
    expect(validate.stdout + validate.stderr).toContain('2 valid resource(s) in 2 file(s); no errors');
    const get = await runCli(['get', 'mcp', '-o', 'name'], { cwd: h.cwd, env });
    expect(get.stdout).toBe('mcpserver/hello\nmcpserver/memory\n');

    const again = await runCli(['init'], { cwd: h.cwd, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${h.perUser} already holds 2 manifest file(s); nothing written`);
    expect(await readFile(join(h.perUser, 'hello.yaml'), 'utf8')).toBe(before);
  });

  it('--empty makes the directory only; --dir makes that one instead; --git is refused', async () => {
    const h = await home();
    const env = cliEnv(h.env);
    expect((await runCli(['init', '--empty'], { cwd: h.cwd, env })).code).toBe(0);
    expect(await readdir(h.perUser)).toEqual([]);
    const named = join(h.root, 'team');
    expect((await runCli(['init', '--dir', named], { cwd: h.cwd, env })).stdout).toContain(`created ${named} with 2 starter manifest(s):`);
    expect((await readdir(named)).sort()).toEqual(['hello.yaml', 'memory.yaml']);
    const git = await runCli(['init', '--git', 'https://example.com/r.git'], { cwd: h.cwd, env });
    expect(git.code).toBe(2);
    expect(git.stderr).toContain('error: init makes a manifest directory');
  });

  it('up from any folder runs the starter hello server from the per-user directory', async () => {
    const h = await home();
    const env = cliEnv(h.env);
    expect((await runCli(['init'], { cwd: h.cwd, env })).code).toBe(0);
    const up = await runCli(['up', '-d', '--no-ui'], { cwd: h.cwd, env, timeoutMs: 60_000 });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    downs.push(() => runCli(['down'], { cwd: h.cwd, env, timeoutMs: 60_000 }));
    const ready = await runCli(['wait', 'mcp/hello', '--for=condition=Ready', '--timeout', '60s'], { cwd: h.cwd, env, timeoutMs: 70_000 });
    expect(ready.stdout + ready.stderr).toContain('mcpserver/hello condition met: Ready=True');
    const memory = await runCli(['wait', 'mcp/memory', '--for=phase=Suspended', '--timeout', '60s'], { cwd: h.cwd, env, timeoutMs: 70_000 });
    expect(memory.code).toBe(0);
  }, 120_000);
});
