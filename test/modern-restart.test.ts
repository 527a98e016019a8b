/**
 * Issue 24 item 4, no session to lose: the SDK v2 client pinned to
 * 2026-07-28 keeps calling server-everything (a 2025 stdio server) through
 * its endpoint and through the aggregate, with the same client objects,
 * after the controller (the built CLI) is killed with -9 and started again,
 * and while a manifest edit rolls the server. Beside it, what a 2025 client's
 * session meets after the same kill.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { AGGREGATE_PORT_KEY } from '../src/mcp/ports.js';
import { StateLayout } from '../src/state/layout.js';
import { spawnUp, type UpProcess } from './helpers/cli.js';
import { harness, isAlive, type Harness } from './helpers/controller.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN = '2026-07-28';

function everything(name: string, generation = ''): string {
  const env = generation === '' ? '' : `  env:\n    - name: ROLL\n      value: ${JSON.stringify(generation)}\n`;
  return `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: ${JSON.stringify([EVERYTHING, 'stdio'])}\n${env}`;
}

/** The server Ready with a process other than `not`: its URL and pid. */
async function ready(h: Harness, name: string, not?: number): Promise<{ url: string; pid: number }> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    const ok = findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url !== undefined && s.pid !== undefined && s.pid !== not;
    return ok ? { url: s.url!, pid: s.pid! } : undefined;
  }, 30_000);
}

async function aggregateUrl(h: Harness): Promise<string> {
  const ports = JSON.parse(await readFile(join(h.stateDir, 'ports.json'), 'utf8')) as Record<string, number>;
  return `http://127.0.0.1:${ports[AGGREGATE_PORT_KEY]}/mcp`;
}

function auth(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

async function modernClient(url: string, token: string): Promise<ModernClient> {
  const client = new ModernClient({ name: 'restart-test', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers: auth(token) } }));
  expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
  return client;
}

/** The text server-everything's echo answers. */
async function echo(client: Pick<ModernClient, 'callTool'> | Client, tool: string, message: string): Promise<string> {
  const result = (await client.callTool({ name: tool, arguments: { message } })) as { content?: { type: string; text?: string }[]; isError?: boolean };
  if (result.isError === true) throw new Error(`${tool} answered an error: ${JSON.stringify(result.content)}`);
  return result.content?.[0]?.text ?? '';
}

function up(h: Harness): UpProcess {
  return spawnUp(['up', '--no-ui'], h.env);
}

describe('a 2026-07-28 client has no session to lose', () => {
  it('the same client objects keep calling, at the endpoint and the aggregate, after kill -9 of the controller and a new up; a 2025 session is gone', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('e'));
    const first = up(h);
    const before = await ready(h, 'e');
    const aggregate = await aggregateUrl(h);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;

    const endpointClient = await modernClient(before.url, token);
    const aggregateClient = await modernClient(aggregate, token);
    const legacy = new Client({ name: 'legacy-test', version: '1' });
    await legacy.connect(new StreamableHTTPClientTransport(new URL(before.url), { requestInit: { headers: auth(token) } }));
    expect(await echo(endpointClient, 'echo', 'one')).toBe('Echo: one');
    expect(await echo(aggregateClient, 'e__echo', 'one')).toBe('Echo: one');
    expect(await echo(legacy, 'echo', 'one')).toBe('Echo: one');

    first.child.kill('SIGKILL');
    await first.exited;
    // While no controller runs, a call fails (nothing listens); it leaves the client as it was.
    await expect(echo(endpointClient, 'echo', 'down')).rejects.toThrow();
    const second = up(h);
    const after = await ready(h, 'e', before.pid);
    // The URLs and the token survive: ports.json and endpoint.token are in the state directory.
    expect(after.url).toBe(before.url);
    expect(await aggregateUrl(h)).toBe(aggregate);
    expect(isAlive(before.pid)).toBe(false);

    expect(await echo(endpointClient, 'echo', 'two')).toBe('Echo: two');
    expect(await echo(aggregateClient, 'e__echo', 'two')).toBe('Echo: two');
    // The 2025 session lived in the killed controller: its id is unknown to the new one, which answers
    // 404 (the 2025 spec's "initialize again"); the SDK v1 client throws it to the caller instead of
    // initializing again on its own, on this call and the next.
    for (const n of ['two', 'three']) {
      const lost = await echo(legacy, 'echo', n).then(() => undefined, (error: unknown) => error as { code?: number; message: string });
      expect(lost?.code).toBe(404);
      expect(lost?.message).toContain('unknown or expired session: initialize again');
    }
    // A new connect (a new session) is what brings it back.
    const reconnected = new Client({ name: 'legacy-test', version: '1' });
    await reconnected.connect(new StreamableHTTPClientTransport(new URL(after.url), { requestInit: { headers: auth(token) } }));
    expect(await echo(reconnected, 'echo', 'four')).toBe('Echo: four');
    await Promise.all([endpointClient.close(), aggregateClient.close(), reconnected.close(), legacy.close().catch(() => undefined)]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 120_000);

  it('no call fails while a manifest edit rolls the server, at the endpoint and at the aggregate', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('e'));
    const controller = up(h);
    const before = await ready(h, 'e');
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const endpointClient = await modernClient(before.url, token);
    const aggregateClient = await modernClient(await aggregateUrl(h), token);

    let rolled = false;
    const failures: string[] = [];
    let calls = 0;
    const keepCalling = async (client: ModernClient, tool: string): Promise<void> => {
      while (!rolled) {
        const n = calls++;
        try {
          expect(await echo(client, tool, `call ${n}`)).toBe(`Echo: call ${n}`);
        } catch (error) {
          failures.push(`${tool} #${n}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    };
    const callers = [keepCalling(endpointClient, 'echo'), keepCalling(aggregateClient, 'e__echo')];
    await h.waitFor('calls under way', async () => calls >= 10, 20_000);
    // A new environment is a new configuration: a rollout (the new process Ready before the old one goes).
    await h.write('e.yaml', everything('e', '2'));
    await ready(h, 'e', before.pid);
    await h.waitFor('the old process gone', async () => !isAlive(before.pid), 30_000);
    const atRoll = calls;
    await h.waitFor('calls on the new process', async () => calls >= atRoll + 10, 20_000);
    rolled = true;
    await Promise.all(callers);
    expect(failures).toEqual([]);
    await Promise.all([endpointClient.close(), aggregateClient.close()]);
    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
  }, 120_000);
});
