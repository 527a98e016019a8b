/** `apiary add NAME --url URL --oauth`: a hosted server that logs in with OAuth, written with spec.remote.auth and the way to connect it. */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planInstall } from '../src/manifests/install.js';
import { runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';

describe('apiary add --oauth', () => {
  it('writes spec.remote.auth {type: oauth} and says to connect; the install command a plan shows carries it', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    const added = await runCli(['add', 'linear', '--url', 'https://mcp.example.com/mcp', '--oauth'], { env: ws.env });
    expect({ code: added.code, stderr: added.stderr }).toEqual({ code: 0, stderr: '' });
    expect(added.stdout).toContain('it logs in with OAuth: connect it once with: apiary connect linear');
    const manifest = parse(await readFile(join(ws.dir, 'mcpserver-linear.yaml'), 'utf8')) as { spec: unknown };
    expect(manifest.spec).toEqual({ remote: { url: 'https://mcp.example.com/mcp', auth: { type: 'oauth' } } });
    const plan = planInstall({ name: 'linear', command: '', remote: { url: 'https://mcp.example.com/mcp', auth: { type: 'oauth' } } }, []);
    expect(plan.command).toBe('apiary add linear --url https://mcp.example.com/mcp --oauth');
    expect((await runCli(['add', 'x', '--oauth', '--', 'node', 'x.js'], { env: ws.env })).stderr).toContain('--oauth is for a hosted server (--url)');
  });
});
