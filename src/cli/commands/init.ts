/**
 * `apiary init`: the per-user manifest directory ($XDG_CONFIG_HOME/apiary/manifests)
 * with a starter manifest or two, so an installed apiary has somewhere to
 * keep servers that every verb finds from any folder.
 */
import type { Command } from 'commander';
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { ApiaryError } from '../../errors.js';
import { ensureDir, MANIFEST_WRITE, writeFileAtomic } from '../../util/atomic.js';
import { isDirectory, userManifestDir } from '../../util/config-home.js';
import { apiaryPackageDir } from '../../util/package-dir.js';
import type { CliContext } from '../context.js';

export interface Starter {
  file: string;
  about: string;
  text: string;
}

export interface InitResult {
  dir: string;
  /** The starter files written; none when the directory already held manifests. */
  written: string[];
  /** Manifests the directory already held (nothing is added to a directory in use). */
  existing: number;
}

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the per-user manifest directory ($XDG_CONFIG_HOME/apiary/manifests, else ~/.config/apiary/manifests) with starter manifests; with --dir or $APIARY_DIR, that directory instead')
    .option('--empty', 'create the directory without starter manifests')
    .action(async (opts: { empty?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<{ dir?: string; git?: string }>();
      if (globals.git !== undefined) throw new ApiaryError('Usage', 'init makes a manifest directory; --git follows a repository instead, so there is nothing to make');
      const named = globals.dir ?? ctx.env['APIARY_DIR'];
      const dir = named !== undefined ? resolve(named) : userManifestDir(ctx.env);
      const packageDir = apiaryPackageDir();
      const starters = opts.empty === true || packageDir === undefined ? [] : starterManifests(packageDir, ctx.env);
      const result = await initManifestDir(dir, starters);
      report(ctx, result, starters, named === undefined);
    });
}

/** Makes `dir` (0700) and writes the starters, unless it already holds a manifest: a directory in use is never added to. */
export async function initManifestDir(dir: string, starters: readonly Starter[]): Promise<InitResult> {
  const existing = isDirectory(dir) ? await countManifests(dir) : 0;
  await ensureDir(dir);
  if (existing > 0) return { dir, written: [], existing };
  const written: string[] = [];
  for (const starter of starters) {
    await writeFileAtomic(join(dir, starter.file), starter.text, MANIFEST_WRITE);
    written.push(starter.file);
  }
  return { dir, written, existing };
}

async function countManifests(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((name) => /\.ya?ml$/.test(name)).length;
}

/**
 * hello runs at once with nothing but Node.js (the example server shipped in
 * apiary's package, by its absolute path); memory is a real server from npm,
 * suspended so that nothing is downloaded until the user resumes it.
 */
export function starterManifests(packageDir: string, env: NodeJS.ProcessEnv): Starter[] {
  const example = join(packageDir, 'examples', 'hello-server.mjs');
  const memoryFile = join(dataHome(env), 'apiary', 'memory.jsonl');
  return [
    {
      file: 'hello.yaml',
      about: 'a small MCP server shipped with apiary (runs at once)',
      text: [
        '# A small MCP server shipped with apiary (its examples/ folder): tools greet and whoami.',
        '# Replace it with your own servers: apiary add, apiary install, or a manifest of your own.',
        'apiVersion: apiary.dev/v1alpha1',
        'kind: MCPServer',
        'metadata:',
        '  name: hello',
        'spec:',
        '  command: node',
        `  args: [${JSON.stringify(example)}]`,
        '  transport: stdio',
        '  env:',
        '    - name: GREETING',
        '      value: Hello',
        '',
      ].join('\n'),
    },
    {
      file: 'memory.yaml',
      about: 'the reference memory server from npm (suspended: apiary resume memory)',
      text: [
        '# The reference memory server (a knowledge graph kept in a file), run with npx.',
        '# Suspended, so nothing is downloaded until you run: apiary resume memory',
        'apiVersion: apiary.dev/v1alpha1',
        'kind: MCPServer',
        'metadata:',
        '  name: memory',
        'spec:',
        '  suspend: true',
        '  command: npx',
        '  args: ["-y", "@modelcontextprotocol/server-memory"]',
        '  transport: stdio',
        '  env:',
        '    - name: MEMORY_FILE_PATH',
        `      value: ${JSON.stringify(memoryFile)}`,
        '',
      ].join('\n'),
    },
  ];
}

function dataHome(env: NodeJS.ProcessEnv): string {
  const configured = env['XDG_DATA_HOME'];
  return configured !== undefined && isAbsolute(configured) ? configured : join(env['HOME'] || homedir(), '.local', 'share');
}

function report(ctx: CliContext, result: InitResult, starters: readonly Starter[], perUser: boolean): void {
  const { io } = ctx;
  if (result.existing > 0) {
    io.out(`${result.dir} already holds ${result.existing} manifest file(s); nothing written`);
  } else {
    io.out(`created ${result.dir}${result.written.length > 0 ? ` with ${result.written.length} starter manifest(s):` : ''}`);
    for (const starter of starters.filter((s) => result.written.includes(s.file))) io.out(`  ${starter.file.padEnd(12)} ${starter.about}`);
  }
  // ./manifests wins over the per-user directory: say so where it would surprise.
  if (perUser && isDirectory(resolve('manifests'))) {
    io.out(`note: ./manifests exists here, so verbs run from this folder use it; pass --dir ${result.dir} to use this one`);
  }
  io.out('next:');
  io.out('  apiary up                  run its servers in this terminal (Ctrl-C stops them)');
  io.out('  apiary service install     run them at every login, restarted on failure');
  io.out('  apiary add, apiary install add servers; apiary get shows them');
}
