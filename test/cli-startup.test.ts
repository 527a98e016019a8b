/**
 * Issue 25 item 6, what a verb loads: the built CLI is a main bundle and, in
 * dist/vendor/, the dependencies only some verbs need (the Kubernetes client,
 * the MCP SDKs), each read the first time a module requires it. --version
 * reads the main bundle alone; get and validate start from a V8 start-up
 * snapshot the build makes (and answer exactly as the bundle does); up reads
 * the MCP SDKs' file and serves a real client through it. The time it saves is
 * a bench row (`npm run bench -- cli`), not a test.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { APIARY_VERSION } from '../src/util/version.js';
import { ROOT, runCli, spawnUp } from './helpers/cli.js';
import { harness } from './helpers/controller.js';
import { tempDir } from './helpers/tmp.js';
import { needsScript } from './helpers/tools.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const DIST = join(ROOT, 'dist');
/**
 * The node that built the start-up snapshot. bin/apiary uses the snapshot only
 * when that node is the first on PATH, and CI builds once (Node 20) and runs
 * the suite under Node 22 and 24 with the same build: these tests put the
 * builder first on PATH, as the user who built it has it.
 */
const BUILDER = existsSync(join(DIST, 'apiary.blob.node')) ? readFileSync(join(DIST, 'apiary.blob.node'), 'utf8').trim() : undefined;
const WITH_BUILDER: NodeJS.ProcessEnv = BUILDER === undefined ? {} : { PATH: `${dirname(BUILDER)}:${process.env['PATH'] ?? ''}` };

/**
 * A preload (NODE_OPTIONS=--require) that notes which bundle files the
 * launcher reads, in order, one file per process that runs it (the launcher
 * itself, read by node's loader, aside); the servers up starts inherit the
 * preload and note nothing. A process started from the start-up snapshot
 * notes "snapshot" first and, last, the argv[1] apiary saw.
 */
const TRACER = `
const fs = require('node:fs');
const path = require('node:path');
const fromSnapshot = process.execArgv.some((arg) => arg.startsWith('--snapshot-blob'));
if (fromSnapshot || (process.argv[1] && process.argv[1].endsWith('launch.cjs'))) {
  const read = fs.readFileSync;
  const seen = fromSnapshot ? ['snapshot'] : [];
  if (fromSnapshot) process.on('exit', () => seen.push('argv1=' + process.argv[1]));
  fs.readFileSync = function (file, ...rest) {
    const name = typeof file === 'string' ? path.relative(${JSON.stringify(DIST)}, file) : '';
    if (name.endsWith('.cjs') && !name.startsWith('src' + path.sep) && !name.startsWith('..')) seen.push(name);
    return read.call(this, file, ...rest);
  };
  process.on('exit', () => fs.writeFileSync(path.join(process.env.TRACE_DIR, String(process.pid)), seen.join('\\n')));
}
`;

async function tracer(): Promise<{ env: NodeJS.ProcessEnv; read: () => Promise<string[][]> }> {
  const dir = await tempDir('apiary-trace-');
  const preload = join(dir, 'tracer.cjs');
  const out = join(dir, 'out');
  await writeFile(preload, TRACER);
  await mkdir(out);
  return {
    env: { NODE_OPTIONS: `--require ${preload}`, TRACE_DIR: out },
    read: async () => Promise.all((await readdir(out)).map(async (f) => (await readFile(join(out, f), 'utf8')).split('\n').filter((l) => l !== ''))),
  };
}

const LAUNCHER = join(DIST, 'src', 'cli', 'launch.cjs');

/** The same command line run from the bundle (as without a snapshot), with `env` beside the test's own. */
function runBundle(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(BUILDER ?? process.execPath, [LAUNCHER, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8' });
}

/** What a run from the snapshot answered is what the bundle answers: exit code, stdout and stderr. */
function expectBundleAnswer(snapshot: { code: number | null; stdout: string; stderr: string }, args: readonly string[], env: NodeJS.ProcessEnv = {}): void {
  const bundle = runBundle(args, env);
  expect({ code: snapshot.code, stdout: snapshot.stdout, stderr: snapshot.stderr }, args.join(' ')).toEqual({ code: bundle.status, stdout: bundle.stdout, stderr: bundle.stderr });
}
/** script(1), for a pseudo-terminal. */
const terminal = needsScript();

describe('the built CLI loads what a verb needs', () => {
  it('the Kubernetes client and the MCP SDKs are files of their own, which --version among options does not read; get, validate and --version start from the snapshot and read no bundle file', async () => {
    expect(existsSync(join(DIST, 'vendor', 'kubernetes.cjs'))).toBe(true);
    expect(existsSync(join(DIST, 'vendor', 'mcp.cjs'))).toBe(true);
    expect(existsSync(join(DIST, 'apiary.blob'))).toBe(true);
    // Nor zod's messages in other languages (German's "Eingabe", input), which no verb shows.
    expect(readFileSync(join(DIST, 'apiary.cjs'), 'latin1')).not.toContain('Eingabe');
    // Nor the parts of zod no module of apiary names (its compiler, for one): zod's namespace is imported as a namespace.
    for (const bundle of ['apiary.cjs', 'apiary-snapshot.cjs']) expect(readFileSync(join(DIST, bundle), 'latin1')).not.toContain('z.compile does not support');
    // Nor zod at all in the snapshot's heap: its get and validate check documents with the lite schemas
    // (src/api/lite-schema.ts) and load zod's path, a file of its own, only for a document those refuse.
    expect(readFileSync(join(DIST, 'apiary-snapshot.cjs'), 'latin1')).not.toContain('_zod');
    expect(readFileSync(join(DIST, 'apiary-snapshot-zod.cjs'), 'latin1')).toContain('_zod');
    // Nor the yaml package: manifests are read by src/manifests/yaml-lite.ts there; the package is a file of its own.
    expect(readFileSync(join(DIST, 'apiary-snapshot.cjs'), 'latin1')).not.toContain('Implicit keys need to be on a single line');
    expect(readFileSync(join(DIST, 'apiary-snapshot-yaml.cjs'), 'latin1')).toContain('Implicit keys need to be on a single line');
    // Nor, in that file, the zod schemas made for metadata only: the ones clones were made from (their parent
    // link) and describe's clones (with the description registered); the main bundle keeps both.
    for (const metadata of [/_zod\.parent\s*=\s*inst\b/, /globalRegistry\.add\(cl,\s*\{\s*description\s*\}\)/]) {
      expect(readFileSync(join(DIST, 'apiary-snapshot-zod.cjs'), 'latin1')).not.toMatch(metadata);
      expect(readFileSync(join(DIST, 'apiary.cjs'), 'latin1')).toMatch(metadata);
    }
    const state = await tempDir();
    const cases: [string[], string[]][] = [
      [['--dir', 'manifests', '--version'], ['apiary.cjs']],
      [['--version'], ['snapshot', `argv1=${LAUNCHER}`]],
      [['get', '--dir', 'manifests', '--state-dir', state], ['snapshot', `argv1=${LAUNCHER}`]],
      [['validate', 'manifests'], ['snapshot', `argv1=${LAUNCHER}`]],
    ];
    for (const [args, read] of cases) {
      const trace = await tracer();
      const result = await runCli(args, { env: { ...WITH_BUILDER, ...trace.env } });
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(await trace.read(), args.join(' ')).toEqual([read]);
    }
  });

  it('get and validate from the snapshot answer as the bundle does, with the environment of the run (not of the build)', async () => {
    const dir = await tempDir();
    const state = join(dir, 'state');
    const manifests = join(dir, 'manifests');
    await mkdir(manifests);
    await writeFile(join(manifests, 'a.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\n  labels: { team: x }\nspec:\n  command: node\n  args: ["server.js"]\n`);
    await writeFile(join(manifests, 'bad.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: Bad\nspec:\n  command: node\n  restartPolicy: Sometimes\n`);
    // The directory and the state directory only from the environment, which the snapshot's build did not have.
    const env = { APIARY_DIR: manifests, APIARY_STATE_DIR: state };
    for (const args of [['get'], ['get', 'mcpservers', '-o', 'json', '-l', 'team=x'], ['validate', manifests], ['validate', '-o', 'json', manifests], ['get', 'nope']]) {
      const trace = await tracer();
      const snapshot = await runCli(args, { env: { ...env, ...WITH_BUILDER, ...trace.env } });
      expect((await trace.read())[0]?.[0], args.join(' ')).toBe('snapshot');
      expectBundleAnswer(snapshot, args, env);
    }
    const listed = await runCli(['get', 'mcpservers', '-o', 'json'], { env });
    expect(JSON.parse(listed.stdout).items.map((i: { metadata: { name: string } }) => i.metadata.name)).toContain('a');
  });

  it('get and validate from the snapshot read a command line as commander does: their own parser the plain forms, commander the rest', { timeout: 120_000 }, async () => {
    const dir = await tempDir();
    const state = join(dir, 'state');
    const manifests = join(ROOT, 'manifests');
    const lines = [
      ['get'], ['get', 'all'], ['get', 'mcpservers'], ['get', 'secrets', 'hello-credentials'], ['get', 'mcp', 'hello', '-o', 'json'], ['get', '-o', 'yaml', 'mcpservers'],
      ['get', '--output=name'], ['get', '-o', 'wide', '-l', 'app=hello'], ['get', '--selector=app=hello', 'mcpservers'], ['get', '-l', 'app!=hello', '-o', 'name'], ['get', 'nope'], ['get', 'mcpservers', 'nope'],
      ['get', 'hello', 'x'], ['get', ''], ['get', '-l', 'bad selector!'],
      // commander's: help, bad choices, unknown, repeated or attached options, "--", one positional too many, a dash value, a missing value.
      ['get', '--help'], ['get', '-h'], ['get', '-o', 'bogus'], ['get', '--output=bogus'], ['get', '--nope'], ['get', '-o', 'json', '-o', 'yaml'], ['get', '-ojson'], ['get', '--', 'mcpservers'],
      ['get', 'a', 'b', 'c'], ['get', '-l', '-x'], ['get', '-o'], ['get', '--watch=yes'],
      ['validate'], ['validate', manifests], ['validate', '-o', 'json', manifests], ['validate', manifests, '--output', 'json'], ['validate', '--output=text'], ['validate', join(dir, 'missing')],
      ['validate', '--help'], ['validate', '-o', 'yaml'], ['validate', 'a', 'b'], ['validate', '-l', 'x'], ['validate', '--decrypt=1'],
    ];
    for (const line of lines) {
      for (const args of [[...line, '--dir', manifests, '--state-dir', state], ['--dir', manifests, ...line, `--state-dir=${state}`]]) {
        const trace = await tracer();
        const snapshot = await runCli(args, { env: { ...WITH_BUILDER, ...trace.env } });
        if (args[0] !== '--dir') expect((await trace.read())[0]?.[0], args.join(' ')).toBe('snapshot');
        expectBundleAnswer(snapshot, args);
      }
    }
  });

  it('validate and get from the snapshot give the bundle\'s output and exit code for every invalid fixture, loading zod\'s path only then', { timeout: 180_000 }, async () => {
    const invalid = join(ROOT, 'test', 'fixtures', 'manifests', 'invalid');
    const files = (await readdir(invalid)).filter((f) => f.endsWith('.yaml')).sort();
    expect(files.length).toBeGreaterThan(25);
    const state = await tempDir();
    const cases = [...files.flatMap((f) => [['validate', join(invalid, f)], ['validate', '-o', 'json', join(invalid, f)]]), ['validate', invalid], ['get', '--dir', invalid, '--state-dir', state], ['get', 'mcpservers', '-o', 'yaml', '--dir', invalid, '--state-dir', state]];
    let withZod = 0;
    for (const args of cases) {
      const trace = await tracer();
      const snapshot = await runCli(args, { env: { ...WITH_BUILDER, ...trace.env } });
      const read = (await trace.read())[0] ?? [];
      expect(read[0], args.join(' ')).toBe('snapshot');
      expectBundleAnswer(snapshot, args);
      if (read.includes('apiary-snapshot-zod.cjs')) withZod++;
    }
    // zod's path was read for the documents the lite schemas refused (a YAML syntax error, say, never reaches a
    // schema); for valid ones it is not (the test above).
    expect(withZod).toBeGreaterThan(40);
  });

  it('reads the valid fixtures without the yaml package, as the bundle does, and loads it for a YAML error and for -o yaml', { timeout: 120_000 }, async () => {
    const fixtures = join(ROOT, 'test', 'fixtures', 'manifests');
    const state = await tempDir();
    const cases: { args: string[]; yaml: boolean }[] = [
      ...['valid', 'access', 'rate-limits'].flatMap((dir) => [
        { args: ['validate', join(fixtures, dir)], yaml: false },
        { args: ['validate', '-o', 'json', join(fixtures, dir)], yaml: false },
        { args: ['get', '-o', 'json', '--dir', join(fixtures, dir), '--state-dir', state], yaml: false },
      ]),
      { args: ['validate', join(fixtures, 'invalid', '01-yaml-syntax.yaml')], yaml: true },
      { args: ['get', 'mcpservers', '-o', 'yaml', '--dir', join(fixtures, 'valid'), '--state-dir', state], yaml: true },
    ];
    for (const { args, yaml } of cases) {
      const trace = await tracer();
      const snapshot = await runCli(args, { env: { ...WITH_BUILDER, ...trace.env } });
      const read = (await trace.read())[0] ?? [];
      expect(read[0], args.join(' ')).toBe('snapshot');
      expect(read.includes('apiary-snapshot-yaml.cjs'), `${args.join(' ')}: the yaml package loaded`).toBe(yaml);
      expectBundleAnswer(snapshot, args);
    }
  });

  it('writes a long answer whole through a pipe, and stops quietly when the reader goes (get | head -1)', { timeout: 60_000 }, async () => {
    // More than a pipe holds (64 KiB): 1,500 servers, ~130 KB of table.
    const dir = await tempDir();
    const state = await tempDir();
    const server = (i: number): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: server-${String(i).padStart(5, '0')}-with-a-longish-name\nspec:\n  command: node\n`;
    await writeFile(join(dir, 'all.yaml'), Array.from({ length: 1500 }, (_, i) => server(i)).join('---\n'));
    const args = ['get', 'mcpservers', '--dir', dir, '--state-dir', state];
    const whole = await runCli(args, { env: WITH_BUILDER });
    const bundle = runBundle(args);
    expect(whole.stdout.length).toBeGreaterThan(100_000);
    expect({ code: whole.code, stdout: whole.stdout }).toEqual({ code: bundle.status, stdout: bundle.stdout });
    // The reader is gone before the answer is written (as head's is once it has its line): it has nowhere to go.
    const child = spawn(join(ROOT, 'bin', 'apiary'), args, { cwd: ROOT, env: { ...process.env, ...WITH_BUILDER }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|Error/);
  });

  it.skipIf(!terminal.available)('on a terminal, prints what the bundle prints, colours included', { timeout: 60_000 }, async () => {
    const state = await tempDir();
    const fixtures = join(ROOT, 'test', 'fixtures', 'manifests');
    const onTerminal = (command: string): string => {
      const run = spawnSync('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, ...WITH_BUILDER, NO_COLOR: undefined, TERM: 'xterm' }, encoding: 'utf8' });
      return `${run.stdout}(exit ${run.status})`;
    };
    for (const args of [`get --dir manifests --state-dir ${state}`, `validate ${join(fixtures, 'valid')}`, `validate ${join(fixtures, 'invalid', '05-name-uppercase.yaml')}`]) {
      const snapshot = onTerminal(`${join(ROOT, 'bin', 'apiary')} ${args}`);
      expect(snapshot, args).toMatch(args.startsWith('get') ? /NAME/ : /valid|error/);
      expect(snapshot, args).toBe(onTerminal(`${BUILDER ?? process.execPath} ${LAUNCHER} ${args}`));
    }
    // Colour, which only a terminal gets: the warning get gives for a state directory no controller has written.
    expect(onTerminal(`${join(ROOT, 'bin', 'apiary')} get --dir manifests --state-dir ${state}`)).toContain('\u001b[33mwarning:');
    // With pending deprecations on, the terminal is not asked through process.binding (node would warn of it).
    const pending = spawnSync(join(ROOT, 'bin', 'apiary'), ['get', '--dir', 'manifests', '--state-dir', state], { cwd: ROOT, env: { ...process.env, ...WITH_BUILDER, NODE_PENDING_DEPRECATION: '1' }, encoding: 'utf8' });
    expect(pending.stderr).not.toContain('DeprecationWarning');
    expect(pending.stdout).toContain('NAME');
  });

  it('bin/apiary starts without the snapshot when the node on PATH is not the one that made it, or has changed since', async () => {
    // A copy of the built CLI with its snapshot, whose files the test may age.
    const copy = await tempDir();
    await mkdir(join(copy, 'bin'));
    await mkdir(join(copy, 'dist', 'src', 'cli'), { recursive: true });
    await cp(join(ROOT, 'bin', 'apiary'), join(copy, 'bin', 'apiary'));
    for (const file of ['apiary.cjs', 'apiary.blob', 'apiary.blob.node', join('src', 'cli', 'launch.cjs')]) await cp(join(DIST, file), join(copy, 'dist', file), { preserveTimestamps: true });
    await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const run = async (env: NodeJS.ProcessEnv = {}): Promise<string[][]> => {
      const trace = await tracer();
      const options = [trace.env['NODE_OPTIONS'], env['NODE_OPTIONS']].filter((o) => o !== undefined).join(' ');
      const result = spawnSync(join(copy, 'bin', 'apiary'), ['validate', join(ROOT, 'manifests')], { env: { ...process.env, ...WITH_BUILDER, ...trace.env, ...env, NODE_OPTIONS: options }, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain('2 valid resource(s)');
      return trace.read();
    };
    // From the copy: argv[1] is the copy's launcher (apiary finds its package from it).
    expect(await run()).toEqual([['snapshot', `argv1=${join(copy, 'dist', 'src', 'cli', 'launch.cjs')}`]]);
    // Another node first on PATH (a script that runs this one is another file): the launcher runs, and
    // the tracer sees it read nothing of the checkout's dist (only the copy's).
    const other = await tempDir();
    await writeFile(join(other, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
    expect(await run({ PATH: `${other}:${process.env['PATH']}` })).toEqual([[]]);
    // The same node, replaced by a newer file since the snapshot was made.
    await utimes(join(copy, 'dist', 'apiary.blob.node'), new Date(0), new Date(0));
    expect(await run()).toEqual([[]]);
    // A V8 flag in NODE_OPTIONS (node would refuse the snapshot: exit 14); node's own options such as a preload keep it.
    await utimes(join(copy, 'dist', 'apiary.blob.node'), new Date(), new Date());
    expect(await run({ NODE_OPTIONS: '--max-old-space-size=4096 --no-warnings' })).toEqual([[]]);
    expect(await run({ NODE_OPTIONS: '--expose-gc' })).toEqual([[]]);
    expect((await run({ NODE_OPTIONS: '--no-warnings --trace-warnings' }))[0]?.[0]).toBe('snapshot');
    // No snapshot at all.
    await rm(join(copy, 'dist', 'apiary.blob.node'));
    expect(await run()).toEqual([[]]);
  });

  it('up reads the MCP SDKs from their file, once, and a 2026-07-28 client calls a server through the endpoint', async () => {
    const h = await harness();
    await h.write('e.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: e\nspec:\n  command: node\n  args: ${JSON.stringify([EVERYTHING, 'stdio'])}\n`);
    const trace = await tracer();
    const controller = spawnUp(['up', '--no-ui'], { ...h.env, ...trace.env });
    const url = await h.waitFor('e Ready', async () => {
      const s = await h.status('e');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' ? s?.url : undefined;
    }, 30_000);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new Client({ name: 'startup-test', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const answer = (await client.callTool({ name: 'echo', arguments: { message: 'vendored' } })) as { content?: { text?: string }[] };
    expect(answer.content?.[0]?.text).toBe('Echo: vendored');
    await client.close();
    controller.child.kill('SIGTERM');
    expect(await controller.exited, controller.output()).toBe(0);
    // The Kubernetes client's file too, today: the controller imports the cluster backend whatever the runtime.
    const [read, ...others] = await trace.read();
    expect(others).toEqual([]);
    expect(read![0]).toBe('apiary.cjs');
    expect(read!.filter((f) => f === 'vendor/mcp.cjs')).toHaveLength(1);
  });

  it('get orders names as kubectl does, by code unit, in any locale (Lithuanian collation puts y beside i)', async () => {
    const dir = await tempDir();
    const server = (name: string): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: ["server.js"]\n`;
    await writeFile(join(dir, 'servers.yaml'), `${server('ya')}---\n${server('ja')}`);
    const result = await runCli(['get', 'mcpservers', '--dir', dir, '--state-dir', join(dir, 'state')], { env: { LC_ALL: 'lt_LT.UTF-8', LANG: 'lt_LT.UTF-8' } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n').slice(1, 3).map((line) => line.split(' ')[0])).toEqual(['ja', 'ya']);
  });

  it('up leaves the bundle\'s code cache to a short verb, and caches the MCP SDKs\' file; validate then caches the bundle', async () => {
    // A copy of the built CLI, so that no other test's verb makes the cache meanwhile.
    const copy = await tempDir();
    await mkdir(join(copy, 'dist', 'src', 'cli'), { recursive: true });
    await cp(join(DIST, 'apiary.cjs'), join(copy, 'dist', 'apiary.cjs'));
    await cp(join(DIST, 'src', 'cli', 'launch.cjs'), join(copy, 'dist', 'src', 'cli', 'launch.cjs'));
    await cp(join(DIST, 'vendor'), join(copy, 'dist', 'vendor'), { recursive: true, filter: (f) => !f.endsWith('.v8cache') });
    await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const caches = async (): Promise<string[]> => [
      ...(await readdir(join(copy, 'dist'))).filter((f) => f.endsWith('.v8cache')).map((f) => f.replace(/\.v[\d.]+-\w+\.v8cache$/, '')),
      ...(await readdir(join(copy, 'dist', 'vendor'))).filter((f) => f.endsWith('.v8cache')).map((f) => `vendor/${f.replace(/\.v[\d.]+-\w+\.v8cache$/, '')}`),
    ];
    const launcher = join(copy, 'dist', 'src', 'cli', 'launch.cjs');

    const h = await harness();
    await h.write('e.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: e\nspec:\n  command: node\n  args: ${JSON.stringify([EVERYTHING, 'stdio'])}\n`);
    const controller = spawn(process.execPath, [launcher, 'up', '--no-ui'], { env: { ...process.env, ...h.env }, stdio: 'ignore' });
    const exited = new Promise((resolve) => controller.on('exit', resolve));
    await h.waitFor('e Ready', async () => findCondition((await h.status('e'))?.conditions, 'Ready')?.status === 'True', 30_000);
    controller.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect((await caches()).sort()).toEqual(['vendor/chokidar.cjs', 'vendor/kubernetes.cjs', 'vendor/mcp.cjs']);

    const validate = spawn(process.execPath, [launcher, 'validate', join(ROOT, 'manifests')], { stdio: 'ignore' });
    expect(await new Promise((resolve) => validate.on('exit', resolve))).toBe(0);
    expect((await caches()).sort()).toEqual(['apiary.cjs', 'vendor/chokidar.cjs', 'vendor/kubernetes.cjs', 'vendor/mcp.cjs']);
  });

  it('bin/apiary finds the built CLI through a link in another folder (as npm -g makes), by a relative path and by name from its folder', async () => {
    const links = await tempDir();
    await symlink(join(ROOT, 'bin', 'apiary'), join(links, 'apiary'));
    const runs = [
      spawnSync(join(links, 'apiary'), ['--version'], { encoding: 'utf8' }),
      spawnSync('sh', ['bin/apiary', '--version'], { cwd: ROOT, encoding: 'utf8' }),
      spawnSync('sh', ['apiary', '--version'], { cwd: join(ROOT, 'bin'), encoding: 'utf8' }),
      // -V, and --version among other options (commander's, not the snapshot's), print the same.
      spawnSync('sh', ['bin/apiary', '-V'], { cwd: ROOT, encoding: 'utf8' }),
      spawnSync('sh', ['bin/apiary', '--dir', 'manifests', '--version'], { cwd: ROOT, encoding: 'utf8' }),
    ];
    for (const run of runs) expect([run.status, run.stdout.trim(), run.stderr]).toEqual([0, APIARY_VERSION, '']);
  });
});
