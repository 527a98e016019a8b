/**
 * Defects found in the security review of the bubblewrap sandbox
 * (sandbox.ts), shown by running Debian's bubblewrap with the argv apiary
 * builds.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeSandbox, sandboxArgs } from '../src/runtime/sandbox.js';
import { tempDir } from './helpers/tmp.js';
import { requireTool } from './helpers/tools.js';

const bwrap = requireTool('/usr/bin/bwrap', "apt install bubblewrap (Debian's package; user namespaces must be allowed); .ci/run installs it", () => probeSandbox(process.env).available);

/** The node apiary runs on, at `path` (a hard link where the file system allows it, else a copy). */
function nodeAt(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  try {
    linkSync(process.execPath, path);
  } catch {
    copyFileSync(process.execPath, path);
  }
}

describe.skipIf(!bwrap.available)('security review: the sandbox', () => {
  it("keeps the user's home hidden when node is installed right under it (n with N_PREFIX=~): node's prefix was granted whole, the home with it", async () => {
    const root = await tempDir();
    const home = join(root, 'u');
    const work = join(root, 'work');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    mkdirSync(work);
    writeFileSync(join(home, '.ssh', 'id_canary'), 'CANARY-SSH-KEY');
    // ~/bin/node, and npm's npx as npm installs it: a link into ~/lib/node_modules/npm.
    nodeAt(join(home, 'bin', 'node'));
    mkdirSync(join(home, 'lib', 'node_modules', 'npm', 'bin'), { recursive: true });
    writeFileSync(join(home, 'lib', 'node_modules', 'npm', 'bin', 'npx-cli.js'), "console.log('npx runs');\n");
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(home, 'bin', 'npx'));
    const node = join(home, 'bin', 'node');
    const read = `try { console.log(require('node:fs').readFileSync(${JSON.stringify(join(home, '.ssh', 'id_canary'))}, 'utf8')) } catch (e) { console.log('hidden', e.code) }`;
    const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const argv = sandboxArgs({ sandbox: { profile: 'default', read: [], write: [], network: 'none', allow: [] }, command: node, args, cwd: work, home, stateDir: join(root, 'state'), nodePath: node });
      return spawnSync('/usr/bin/bwrap', argv, { encoding: 'utf8', timeout: 20_000 });
    };
    const canary = run(['-e', read]);
    expect(canary.stdout.trim(), canary.stderr).toBe('hidden ENOENT');
    // What node needs of its prefix is still there: node itself, and npx through its link into npm.
    const npx = run([join(home, 'bin', 'npx')]);
    expect(npx.stdout.trim(), npx.stderr).toBe('npx runs');
  }, 30_000);
});
