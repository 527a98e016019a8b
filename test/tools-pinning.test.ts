/**
 * Pinned tool definitions end to end (issue 28 item 1): a real controller, a
 * stdio server whose `echo` description changes with its environment, the
 * built CLI's `tools lock|diff|approve`, and the SDK client at the server's
 * endpoint and at the aggregate.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, type Harness } from './helpers/controller.js';
import { driftManifest, driftReady, RUG_PULL, toolsDrifted } from './helpers/drifting.js';

const manifest = driftManifest;

async function client(url: string, h: Harness): Promise<Client> {
  const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
  const c = new Client({ name: 'pinning-test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return c;
}

const cli = (h: Harness, ...args: string[]) => runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', ...args], { env: h.env });

const readyPid = (h: Harness, other?: number): Promise<number> => driftReady(h, other);

describe('pinned tool definitions', () => {
  it('withholds a tool whose description changed after the lock, names it in ToolsDrifted, diffs it, and approve restores it', async () => {
    const h = await harness();
    await h.write('drift.yaml', manifest());
    const controller = await h.start();
    const first = await readyPid(h);
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));

    const locked = await cli(h, 'lock');
    expect(locked.stderr).toBe('');
    expect(locked.code).toBe(0);
    expect(locked.stdout).toContain('1 server(s), 2 tool(s) pinned');
    const lockText = await readFile(join(h.dir, 'tools.lock.yaml'), 'utf8');
    expect(lockText).toContain('description: Echoes its input\n');
    // Stable: locking the same tools again writes the same bytes (it is not even rewritten).
    expect((await cli(h, 'lock', 'drift')).stdout).toMatch(/^unchanged: /);
    expect(await readFile(join(h.dir, 'tools.lock.yaml'), 'utf8')).toBe(lockText);
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');

    // The rug pull: the same server, restarted with another description for echo and a new tool.
    await h.write('drift.yaml', manifest({ ECHO_DESCRIPTION: RUG_PULL, EXTRA_TOOL: '1' }));
    await readyPid(h, first);
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('changed: echo; new: exfiltrate');
    expect(drifted.message).toContain('withheld');
    const event = await h.waitFor('a Warning event', async () => (await h.server('drift'))?.events.find((e) => e.reason === 'ToolsDrifted'));
    expect(event).toMatchObject({ type: 'Warning', message: drifted.message });

    const url = (await h.status('drift'))!.url!;
    const c = await client(url, h);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['add']);
    await expect(c.callTool({ name: 'echo', arguments: { text: 'hi' } })).rejects.toThrow(/tool "echo" is withheld: mcpserver\/drift's tools differ from tools\.lock\.yaml \(changed: echo; new: exfiltrate\)/);
    await expect(c.callTool({ name: 'exfiltrate', arguments: {} })).rejects.toThrow(/withheld/);
    expect((await c.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).content).toEqual([{ type: 'text', text: '5' }]);
    // The aggregate endpoint withholds them too.
    const all = await client(controller.aggregateUrl!, h);
    expect((await all.listTools()).tools.map((t) => t.name)).toEqual(['drift__add']);
    await expect(all.callTool({ name: 'drift__echo', arguments: { text: 'hi' } })).rejects.toThrow(/withheld/);
    await all.close();

    const diff = await cli(h, 'diff', 'drift');
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('-Echoes its input\n');
    expect(diff.stdout).toContain(`+${RUG_PULL}\n`);
    expect(diff.stdout).toContain('+description:\n+Reads a file');

    const approved = await cli(h, 'approve', 'drift', 'echo');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain('still: tools differ from tools.lock.yaml (new: exfiltrate)');
    await h.waitFor('echo listed again', async () => {
      const names = (await c.listTools()).tools.map((t) => t.name);
      return names.includes('echo') && !names.includes('exfiltrate');
    });
    expect((await c.callTool({ name: 'echo', arguments: { text: 'back' } })).content).toEqual([{ type: 'text', text: 'back' }]);
    expect(await readFile(join(h.dir, 'tools.lock.yaml.apiary-backup'), 'utf8')).toBe(lockText);

    await cli(h, 'approve', 'drift');
    await h.waitFor('ToolsDrifted False after approving all', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['add', 'echo', 'exfiltrate']);
    await c.close();
  }, 90_000);

  it('onDrift Warn lists the changed tool and only reports; a server without an entry is not judged', async () => {
    const h = await harness();
    await h.write('drift.yaml', manifest({}, '  tools:\n    onDrift: Warn\n'));
    await h.start();
    const first = await readyPid(h);
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
    expect(findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')).toBeUndefined();
    expect((await cli(h, 'lock', 'drift')).code).toBe(0);
    await h.write('drift.yaml', manifest({ ECHO_DESCRIPTION: RUG_PULL }, '  tools:\n    onDrift: Warn\n'));
    await readyPid(h, first);
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('onDrift: Warn');
    const c = await client((await h.status('drift'))!.url!, h);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['add', 'echo']);
    expect((await c.callTool({ name: 'echo', arguments: { text: 'warned' } })).content).toEqual([{ type: 'text', text: 'warned' }]);
    await c.close();
  }, 90_000);

  it('judges what a running server lists again (a change without a restart): the changed tool is withheld from the next list', async () => {
    const h = await harness();
    const descriptionFile = join(h.reports, 'echo-description.txt');
    await h.write('drift.yaml', manifest({ DESCRIPTION_FILE: descriptionFile }));
    await h.start();
    const pid = await readyPid(h);
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
    expect((await cli(h, 'lock', 'drift')).code).toBe(0);
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
    const c = await client((await h.status('drift'))!.url!, h);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['add', 'echo']);

    await writeFile(descriptionFile, RUG_PULL);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['add']);
    await expect(c.callTool({ name: 'echo', arguments: { text: 'hi' } })).rejects.toThrow(/withheld/);
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('changed: echo');
    expect((await h.status('drift'))?.pid).toBe(pid);
    await h.waitFor('the new listing kept', async () => (await readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8')).includes('id_rsa'));
    const diff = await cli(h, 'diff', 'drift');
    expect(diff.stdout).toContain(`+${RUG_PULL}`);
    await c.close();
  }, 90_000);
});
