/**
 * `apiary import` of a client entry for a hosted server that wants an OAuth
 * login (the client logged in itself; its file holds no token): asked without
 * a token, the server answers 401 naming its metadata, so the manifest gets
 * spec.remote.auth {type: oauth}, no secret is made, and the report says to
 * connect. Real parts: oidc-provider and an MCP SDK server checking its JWTs.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from './helpers/cli.js';
import { useHostedServer } from './helpers/oauth-as.js';
import { filesUnder, workspace } from './helpers/tmp.js';

describe('importing a hosted server that logs in with OAuth', () => {
  const fixture = useHostedServer();

  it('writes auth {type: oauth} and says to connect instead of copying a token', async () => {
    const ws = await workspace();
    const home = join(ws.root, 'home');
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.claude.json'), JSON.stringify({ mcpServers: { linear: { type: 'http', url: fixture.hosted().url } } }, null, 2));
    const env = { ...ws.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };

    const imported = await runCli(['import', '--client', 'claude'], { env });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('note: it logs in with OAuth (it answers 401 naming its authorization metadata): no token is copied; connect it once with: apiary connect linear');
    const files = await filesUnder(ws.dir);
    const docs = (await Promise.all(files.map(async (f) => parseAllDocuments(await readFile(f, 'utf8')).map((d) => d.toJS() as { kind: string; spec: { remote?: unknown } })))).flat();
    expect(docs.filter((d) => d.kind === 'Secret')).toEqual([]);
    expect(docs.find((d) => d.kind === 'MCPServer')?.spec.remote).toEqual({ url: fixture.hosted().url, auth: { type: 'oauth' } });
  });
});
