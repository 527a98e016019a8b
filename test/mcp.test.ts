/**
 * Real MCP through apiary: @modelcontextprotocol/server-everything run as a
 * stdio server under the controller, reached with the official SDK client
 * at status.url.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { harness, isAlive, nodeServer, tinyServer, type Harness } from './helpers/controller.js';
import { within } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

function everything(name: string, mode: 'stdio' | 'streamableHttp' = 'stdio', extra = ''): string {
  return nodeServer(name, [EVERYTHING, mode], `${mode === 'streamableHttp' ? '  transport: streamable-http\n' : ''}${extra}`);
}

async function ready(h: Harness, name: string, notPid?: number): Promise<{ url: string; pid: number }> {
  token = await readEndpointToken(new StateLayout(h.stateDir));
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s!.pid !== notPid && s!.url ? { url: s!.url, pid: s!.pid! } : undefined;
  }, 20_000);
}

/** The endpoint token of the controller the last ready() looked at: every client sends it. */
let token: string | undefined;

function withToken(): { requestInit: RequestInit } {
  return { requestInit: { headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {} } };
}

async function connect(url: string, name = 'test'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), withToken()));
  return client;
}

describe('MCP through apiary (server-everything, SDK client)', () => {
  it('Ready means the handshake passed; tools/list and tools/call work through status.url', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const status = await h.status('everything');
    expect(status?.serverInfo?.name).toBeTruthy();
    expect(status?.tools).toBeGreaterThan(5);
    expect(findCondition(status?.conditions, 'Ready')?.reason).toBe('Initialized');

    const client = await connect(url);
    const tools = await client.listTools();
    expect(tools.tools.length).toBe(status?.tools);
    expect(tools.tools.map((t) => t.name)).toContain('echo');
    const result = await client.callTool({ name: 'echo', arguments: { message: 'through apiary' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: through apiary' }]);
    expect(client.getServerVersion()?.name).toBe(status?.serverInfo?.name);
    await client.close();
  });

  it('spec.tools: filtered tools are absent from tools/list and refused by tools/call; a change reaches clients without a restart', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything', 'stdio', '  tools:\n    allow: ["get-*", echo]\n    deny: [get-env]\n'));
    await h.start();
    const { url, pid } = await ready(h, 'everything');
    const status = await h.status('everything');
    const client = await connect(url);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).toContain('get-sum');
    expect(names).not.toContain('get-env'); // denied, though allowed by get-*
    expect(names).not.toContain('trigger-long-running-operation'); // not allowed
    expect(names.every((n) => n === 'echo' || n.startsWith('get-'))).toBe(true);
    expect(status?.tools).toBe(names.length);
    expect(status?.toolsFiltered).toContain('get-env');
    expect(status?.toolsFiltered).toContain('trigger-long-running-operation');
    expect(findCondition(status?.conditions, 'Ready')?.message).toMatch(/listed \d+ tool\(s\), \d+ filtered out by spec\.tools$/);
    const refused = await client.callTool({ name: 'get-env', arguments: {} }).catch((err: Error) => err);
    expect(String(refused)).toContain('tool "get-env" is not available: the server\'s spec.tools keeps it from clients');
    expect(((await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).content as { text: string }[])[0]!.text).toContain('3');

    // Widening the filter: clients are told their list changed, the process is the same.
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed += 1;
    });
    await h.write('e.yaml', everything('everything', 'stdio', '  tools:\n    deny: [get-env]\n'));
    await h.waitFor('list_changed', async () => changed > 0);
    const wider = (await client.listTools()).tools.map((t) => t.name);
    expect(wider).toContain('trigger-long-running-operation');
    expect(wider).not.toContain('get-env');
    expect((await h.status('everything'))?.pid).toBe(pid);
    await client.close();
  });

  it('three clients at once each get their own answers', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    const clients = await Promise.all([1, 2, 3].map((i) => connect(url, `client-${i}`)));
    const answers = await Promise.all(
      clients.flatMap((client, i) =>
        Array.from({ length: 20 }, (_, j) => client.callTool({ name: 'echo', arguments: { message: `c${i}-m${j}` } }).then((r) => [`c${i}-m${j}`, (r.content as { text: string }[])[0]!.text])),
      ),
    );
    for (const [sent, got] of answers) expect(got).toBe(`Echo: ${sent}`);
    const sums = await Promise.all(clients.map((c, i) => c.callTool({ name: 'get-sum', arguments: { a: i, b: 100 } })));
    sums.forEach((r, i) => expect(JSON.stringify(r.content)).toContain(String(100 + i)));
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a server killed mid-call: the client gets a clear error, then carries on with the restarted server', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url, pid } = await ready(h, 'everything');
    const client = await connect(url);
    // Killed once the server is working on the call: its first progress notification says so.
    let heardProgress: () => void = () => undefined;
    const working = new Promise<void>((resolve) => (heardProgress = resolve));
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 10, steps: 50 } }, undefined, { timeout: 30_000, onprogress: () => heardProgress() });
    await within('the first progress notification of the call', working);
    process.kill(pid, 'SIGKILL');
    const started = Date.now();
    await expect(call).rejects.toThrow(/stopped while handling this request/);
    expect(Date.now() - started).toBeLessThan(3000);
    const next = await ready(h, 'everything', pid);
    expect(next.url).toBe(url);
    const again = await client.callTool({ name: 'echo', arguments: { message: 'after restart' } });
    expect(again.content).toEqual([{ type: 'text', text: 'Echo: after restart' }]);
    await client.close();
  }, 30_000);

  it('a hung server (stopped with SIGSTOP) fails its pings and is restarted as Unhealthy', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything', 'stdio', '  healthCheck: { intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }\n'));
    await h.start();
    const { pid } = await ready(h, 'everything');
    process.kill(pid, 'SIGSTOP');
    const next = await ready(h, 'everything', pid);
    expect(isAlive(pid)).toBe(false);
    const s = await h.status('everything');
    expect(s?.lastTermination?.reason).toBe('Unhealthy');
    expect(s?.restartCount).toBe(1);
    expect((await h.server('everything'))?.events.find((e) => e.reason === 'Unhealthy')?.message).toMatch(/2 MCP pings in a row failed/);
    // Its stop is told as what it was, not as a deletion.
    expect((await h.server('everything'))?.events.find((e) => e.reason === 'Stopping')?.message).toMatch(new RegExp(`^stopping pid ${pid}: it failed its health checks \\(2 MCP pings in a row failed`));
    expect(h.logs.find((r) => r.msg === 'stopping server')).toMatchObject({ server: 'everything', pid, reason: 'Unhealthy' });
    expect(next.pid).not.toBe(pid);
  }, 30_000);

  it('older clients reach the same session over the legacy SSE transport at /sse', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    await client.connect(new SSEClientTransport(new URL(url.replace(/\/mcp$/, '/sse')), withToken()));
    expect((await client.callTool({ name: 'echo', arguments: { message: 'over sse' } })).content).toEqual([{ type: 'text', text: 'Echo: over sse' }]);
    await client.close();
  });

  it('refuses a foreign Origin or Host (DNS rebinding protection) and binds loopback only', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    const { port } = new URL(url);
    const post = (headers: Record<string, string>): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }));
      });
    const auth = { Authorization: `Bearer ${token}` };
    expect(await post({ ...auth, Origin: 'http://evil.example' })).toBe(403);
    expect(await post({ ...auth, Host: `evil.example:${port}` })).toBe(403);
    expect(await post({ ...auth, Origin: `http://localhost:${port}` })).toBe(200);
    expect(await post(auth)).toBe(200);
    // The bearer token is required: without it, or with another, 401.
    expect(await post({})).toBe(401);
    expect(await post({ Authorization: `Bearer ${'x'.repeat(token!.length)}` })).toBe(401);
    expect(await post({ Authorization: token! })).toBe(401);
  });

  it('authentication is on by default: 401 says how to get the token; client config carries it; --no-auth turns it off', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    expect(token).toMatch(/^[\w-]{43}$/);
    expect((statSync(join(h.stateDir, 'endpoint.token')).mode & 0o777).toString(8)).toBe('600');
    const bare = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toBe('Bearer realm="apiary"');
    expect(((await bare.json()) as { error: { message: string } }).error.message).toContain('apiary client config prints a configuration with it');
    const anonymous = new Client({ name: 'anonymous', version: '1' });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(new URL(url)))).rejects.toThrow();
    const config = JSON.parse((await runCli(['client', 'config'], { env: h.env })).stdout) as { mcpServers: Record<string, { url: string; headers: Record<string, string> }> };
    expect(config.mcpServers['everything']).toEqual({ type: 'http', url, headers: { Authorization: `Bearer ${token}` } });
    const client = await connect(url);
    expect((await client.listTools()).tools.length).toBeGreaterThan(5);
    await client.close();
    // The same token after a controller restart: a configured client keeps working.
    const before = token;
    await h.controller!.stop();
    await h.start();
    await ready(h, 'everything');
    expect(token).toBe(before);

    const open = await harness();
    await open.write('e.yaml', everything('everything'));
    await open.start({}, { auth: false });
    const { url: openUrl } = await ready(open, 'everything');
    const unauthenticated = new Client({ name: 'anonymous', version: '1' });
    await unauthenticated.connect(new StreamableHTTPClientTransport(new URL(openUrl)));
    expect((await unauthenticated.listTools()).tools.length).toBeGreaterThan(5);
    await unauthenticated.close();
  });

  it('a server that never answers the handshake is Running but not Ready, saying why', async () => {
    const h = await harness();
    await h.write('t.yaml', tinyServer('silent', h, { args: ['--no-mcp'] }));
    await h.start();
    await h.waitFor('running', async () => (await h.status('silent'))?.phase === 'Running');
    await h.settled(); // a full pass after it started: still no handshake, and status says so
    const ready = findCondition((await h.status('silent'))?.conditions, 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'Initializing', message: 'waiting for the MCP initialize handshake' });
  });

  it('a server that answers initialize but never tools/list says so once healthCheck.timeoutSeconds passes, and stays Running', async () => {
    const h = await harness();
    await h.write('t.yaml', tinyServer('halfway', h, { args: ['--no-tools-list'], extra: '  healthCheck: { timeoutSeconds: 1 }\n' }));
    await h.start();
    const ready = await h.waitFor('the tools/list timeout in status', async () => {
      const r = findCondition((await h.status('halfway'))?.conditions, 'Ready');
      return r?.message?.startsWith('no answer') === true && r;
    }, 20_000);
    expect(ready).toMatchObject({ status: 'False', reason: 'Initializing', message: 'no answer to tools/list within 1s (healthCheck.timeoutSeconds); still waiting for it' });
    expect((await h.status('halfway'))?.phase).toBe('Running');
  }, 30_000);

  it('a port already in use is a clear status message, not a crash; the URL stays the same across controller restarts', async () => {
    const h = await harness();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    await h.write('t.yaml', tinyServer('busy', h, { extra: `  port: ${taken}\n` }));
    await h.write('u.yaml', tinyServer('free', h));
    await h.start();
    const busy = await h.waitFor('port error', async () => {
      const r = findCondition((await h.status('busy'))?.conditions, 'Ready');
      return r?.reason === 'EndpointUnavailable' && r;
    });
    expect(busy.message).toBe(`port ${taken} is already in use on 127.0.0.1`);
    const { url } = await ready(h, 'free');
    blocker.close();
    await ready(h, 'busy');
    await h.controller!.stop();
    await h.start();
    expect((await ready(h, 'free')).url).toBe(url);
  }, 30_000);

  it('a deleted server leaves ports.json (its endpoint and internal port); a suspended or restarted one keeps its port', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('web', 'streamableHttp'));
    await h.write('k.yaml', tinyServer('kept', h));
    await h.write('p.yaml', tinyServer('paused', h));
    await h.start();
    await ready(h, 'web');
    const kept = await ready(h, 'kept');
    const paused = await ready(h, 'paused');
    const ports = async (): Promise<Record<string, number>> => JSON.parse(await readFile(join(h.stateDir, 'ports.json'), 'utf8').catch(() => '{}'));
    const before = await h.waitFor('every port in ports.json', async () => {
      const p = await ports();
      return ['web', 'web~upstream', 'kept', 'paused'].every((k) => k in p) && p;
    });

    await h.write('p.yaml', tinyServer('paused', h, { extra: '  suspend: true\n' }));
    await h.waitFor('paused Suspended', async () => (await h.status('paused'))?.phase === 'Suspended');
    await h.write('k.yaml', tinyServer('kept', h, { env: '    - name: AGAIN\n      value: "1"\n' }));
    expect((await ready(h, 'kept', kept.pid)).url).toBe(kept.url);
    await rm(join(h.dir, 'e.yaml'));
    await h.waitFor('web gone', async () => (await h.server('web')) === undefined);
    const after = await h.waitFor('web and web~upstream out of ports.json', async () => {
      const p = await ports();
      return !('web' in p) && !('web~upstream' in p) && p;
    });
    expect(after).toMatchObject({ kept: before['kept'], paused: before['paused'] });
    await h.write('p.yaml', tinyServer('paused', h));
    expect((await ready(h, 'paused', paused.pid)).url).toBe(paused.url);
  }, 60_000);

  it('an HTTP server listens on an internal $PORT; apiary fronts it at the stable URL with the token and spec.tools', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('web', 'streamableHttp', '  tools:\n    deny: [get-env, "trigger-*"]\n'));
    await h.start();
    const { url, pid } = await ready(h, 'web');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    // The server itself listens elsewhere: on the port apiary gave it as $PORT, not the URL's.
    const internal = Number(JSON.parse(await readFile(join(h.stateDir, 'ports.json'), 'utf8'))['web~upstream']);
    expect(internal).toBeGreaterThan(0);
    expect(internal).not.toBe(Number(new URL(url).port));
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`PORT=${internal}`);

    const anonymous = new Client({ name: 'anonymous', version: '1' });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(new URL(url)))).rejects.toThrow();
    const client = await connect(url);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).not.toContain('get-env');
    expect(names.some((n) => n.startsWith('trigger-'))).toBe(false);
    const status = await h.status('web');
    expect(status?.tools).toBe(names.length);
    expect(status?.toolsFiltered).toContain('get-env');
    await expect(client.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(/spec\.tools keeps it from clients/);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'fronted' } })).content).toEqual([{ type: 'text', text: 'Echo: fronted' }]);
    await client.close();
  });

  it('describe says plainly that an HTTP server\'s internal port is not behind apiary\'s token, and where the server listens', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('web', 'streamableHttp', '  tools:\n    deny: [get-env]\n'));
    await h.start();
    const { url } = await ready(h, 'web');
    const internal = Number(JSON.parse(await readFile(join(h.stateDir, 'ports.json'), 'utf8'))['web~upstream']);
    // server-everything listens on every interface (Express's default): the port is open beyond this machine too.
    const described = await runCli(['describe', 'mcpserver', 'web'], { env: h.env });
    expect(described.stdout).toMatch(new RegExp(`Internal port:    ${internal} \\(the server's own \\$PORT\\), listening on (::|0\\.0\\.0\\.0) \\(every interface\\)\n`));
    expect(described.stdout).toContain("                  not protected by apiary's token or spec.tools: any local user, and other machines unless a firewall stops them, can call the server there directly\n");
    // And it is so: a client with no token reaches the tool spec.tools denies.
    const direct = new Client({ name: 'direct', version: '1' });
    await direct.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${internal}/mcp`)));
    expect((await direct.listTools()).tools.map((t) => t.name)).toContain('get-env');
    await direct.close();
    expect(url).not.toContain(String(internal));
  });

  it('a server on the legacy SSE transport is fronted too: its event stream passes through, tools/list filtered on it', async () => {
    const h = await harness();
    await h.write('e.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: legacy\nspec:\n  command: node\n  args: [${JSON.stringify(EVERYTHING)}, sse]\n  transport: sse\n  tools:\n    allow: [echo]\n`);
    await h.start();
    const { url } = await ready(h, 'legacy');
    expect(url).toMatch(/\/sse$/);
    const client = new Client({ name: 'legacy-client', version: '1' });
    await client.connect(new SSEClientTransport(new URL(url), withToken()));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'over sse' } })).content).toEqual([{ type: 'text', text: 'Echo: over sse' }]);
    await expect(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(/spec\.tools/);
    await client.close();
  });

  it('client config prints what each client needs to reach the Ready servers', async () => {
    const h = await harness();
    await h.write('e.yaml', everything('everything'));
    await h.start();
    const { url } = await ready(h, 'everything');
    const claude = JSON.parse((await runCli(['client', 'config', '--client', 'claude'], { env: h.env })).stdout);
    const headers = { Authorization: `Bearer ${token}` };
    expect(claude).toEqual({ mcpServers: { everything: { type: 'http', url, headers } } });
    const vscode = JSON.parse((await runCli(['client', 'config', '--client', 'vscode'], { env: h.env })).stdout);
    expect(vscode).toEqual({ servers: { everything: { type: 'http', url, headers } } });
    const cursor = JSON.parse((await runCli(['client', 'config', '--client', 'cursor'], { env: h.env })).stdout);
    expect(cursor).toEqual({ mcpServers: { everything: { url, headers } } });
  });
});
