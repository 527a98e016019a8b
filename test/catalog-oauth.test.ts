/**
 * A registry entry whose hosted endpoint logs in with OAuth installs as a
 * remote MCPServer with spec.remote.auth {type: oauth} (its scopes kept), no
 * token asked for or written, and the install says to connect it. The
 * official server.json has no field for this (registry issue #25), so the
 * entry declares it on the remote as apiary's spec does: "auth": {"type": "oauth"}.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';

const ENTRY = {
  name: 'io.example/linear',
  description: 'Issues, hosted, behind an OAuth login',
  version: '1.0.0',
  remotes: [
    {
      type: 'streamable-http',
      url: 'https://mcp.example.com/mcp',
      auth: { type: 'oauth', scopes: ['read', 'write'] },
      // A header for those who paste a token instead: with the login it is not asked for.
      headers: [{ name: 'Authorization', value: 'Bearer {API_KEY}', isSecret: true, variables: { API_KEY: { isRequired: true, isSecret: true } } }],
    },
  ],
};

describe('a catalog entry whose remote logs in with OAuth', () => {
  it('installs with spec.remote.auth {type: oauth}, asks for no token, and says to connect', async () => {
    const ws = await workspace();
    const file = join(ws.root, 'linear.server.json');
    await writeFile(file, JSON.stringify(ENTRY));
    const source = ['--catalog', file, '--no-bundled'];
    const show = await runCli(['catalog', 'show', 'linear', ...source], { env: ws.env });
    expect(show.stdout).toContain('Remote:        streamable-http https://mcp.example.com/mcp (OAuth login: apiary connect)');

    const installed = await runCli(['install', 'linear', '--yes', ...source], { env: ws.env });
    expect({ code: installed.code, stderr: installed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(installed.stdout).toContain('mcpserver/linear created');
    expect(installed.stdout).toContain('it logs in with OAuth: connect it once with: apiary connect linear');
    const [doc] = parseAllDocuments(await readFile(join(ws.dir, 'mcpserver-linear.yaml'), 'utf8')).map((d) => d.toJS() as { spec: unknown });
    expect(doc!.spec).toEqual({ remote: { url: 'https://mcp.example.com/mcp', transport: 'streamable-http', auth: { type: 'oauth', scopes: ['read', 'write'] } } });
  });
});
