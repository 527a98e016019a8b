import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { startConsole } from './helpers/console.js';
import { harness } from './helpers/controller.js';
import { gitRepositoryYaml } from './helpers/git.js';
import { workspace } from './helpers/tmp.js';

// The refusal to write into a directory that follows git is made by each front door (CLI verb,
// console route), not by the file edits below them: every writer is listed here so none is missed.
// The repository is never fetched (the source is suspended, and the CLI verbs start no controller).
const SOURCE = gitRepositoryYaml('https://example.com/team/servers.git', { interval: '1h', suspend: true });
const REFUSED = 'follows git repository https://example.com/team/servers.git (GitRepository "origin"): the manifests that run are the repository\'s, so nothing is written here';
/** With a document beside the GitRepository the source is invalid, and the refusal names no URL. */
const REFUSED_INVALID = "follows a git repository (a GitRepository is declared in it): the manifests that run are the repository's, so nothing is written here";
const SERVER = 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: a\nspec:\n  command: node\n';
const CATALOG = ['--catalog', fileURLToPath(new URL('./fixtures/catalog', import.meta.url)), '--no-bundled'];

describe('a directory that follows git is written by no verb', () => {
  it('refuses every CLI writer, and leaves the directory as it was', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'source.yaml'), SOURCE);
    // Declared beside the source (an error a controller reports), so suspend and resume get past their name check.
    await writeFile(join(ws.dir, 'server.yaml'), SERVER);
    const verbs: { args: string[]; input?: string }[] = [
      { args: ['apply', '-f', '-'], input: SERVER },
      { args: ['delete', 'mcpserver', 'a'] },
      { args: ['secret', 'set', 'api', 'token'], input: 'value' },
      { args: ['secret', 'delete', 'api'] },
      { args: ['secret', 'reseal'] },
      { args: ['seal', join(ws.dir, 'source.yaml')] },
      { args: ['suspend', 'a'] },
      { args: ['resume', 'a'] },
      { args: ['key', 'rotate'] },
      { args: ['recipients', 'add', 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] },
      { args: ['recipients', 'remove', 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] },
      { args: ['add', 'a', '--', 'node', 'server.js'] },
      { args: ['install', 'weather', '--version', '1.0.0', ...CATALOG, '--allow-missing', '--yes'] },
      { args: ['tools', 'approve', 'a'] },
      { args: ['tools', 'lock'] },
    ];
    for (const verb of verbs) {
      const result = await runCli(verb.args, { env: ws.env, ...(verb.input !== undefined ? { input: verb.input } : {}) });
      expect(result.stderr, verb.args.join(' ')).toContain(REFUSED_INVALID);
      expect(result.code, verb.args.join(' ')).toBe(1);
    }
    expect((await readdir(ws.dir)).sort()).toEqual(['server.yaml', 'source.yaml']);
    expect(await readFile(join(ws.dir, 'source.yaml'), 'utf8')).toBe(SOURCE);
    expect(await readFile(join(ws.dir, 'server.yaml'), 'utf8')).toBe(SERVER);
  });

  it('answers every console writer 409 GitSourced', async () => {
    const h = await harness();
    await writeFile(join(h.dir, 'source.yaml'), SOURCE);
    const c = await startConsole(h);
    const writes = [
      await c.request('POST', '/api/v1/secrets', { body: { name: 'api', key: 'token', value: 'v' } }),
      await c.request('DELETE', '/api/v1/secrets/api', { body: {} }),
      await c.request('POST', '/api/v1/secrets/api/seal', { body: {} }),
      await c.request('POST', '/api/v1/mcpservers/a/suspend', { body: {} }),
      await c.request('POST', '/api/v1/mcpservers/a/resume', { body: {} }),
      await c.request('DELETE', '/api/v1/mcpservers/a', { body: {} }),
      await c.request('POST', '/api/v1/install', { body: { name: 'a', command: 'node', args: [] } }),
      await c.request('POST', '/api/v1/mcpservers/a/tools-approve', { body: {} }),
      await c.request('POST', '/api/v1/mcpservers/a/tools-approve', { body: { tool: 'echo' } }),
    ];
    for (const refused of writes) {
      expect(refused.status, refused.body).toBe(409);
      expect(refused.json()['reason']).toBe('GitSourced');
      expect(refused.json()['message']).toContain(REFUSED);
    }
    expect(await readdir(h.dir)).toEqual(['source.yaml']);
    // The drift view says why it offers no Approve, in the same words.
    const drift = await c.request('GET', '/api/v1/mcpservers/a/tools-drift');
    expect(drift.status, drift.body).toBe(200);
    expect(drift.json()['approveRefused']).toContain(REFUSED);
  });
});
