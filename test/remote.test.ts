/**
 * A hosted server (spec.remote): apiary runs no process, fronts the server's
 * URL at its own endpoint with its own token, and adds the headers the
 * manifest declares, their values from secrets. The "hosted" server here is
 * the MCP SDK's own server over Streamable HTTP, refusing requests without
 * its bearer key.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hostedYaml } from '../chaos/hosted.js';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { readEvents, startConsole } from './helpers/console.js';
import { harness, secretYaml } from './helpers/controller.js';
import { filesUnder } from './helpers/tmp.js';

let hosted: Server | undefined;
afterEach(async () => {
  const server = hosted;
  hosted = undefined;
  if (server === undefined) return;
  // The controller's probe may still hold a keep-alive connection (its afterEach runs later).
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A stateless MCP server that answers only `Authorization: Bearer <key>`, recording what it was sent. */
async function hostedServer(key: string): Promise<{ url: string; seen: string[]; headerNames: string[] }> {
  const seen: string[] = [];
  const headerNames: string[] = [];
  hosted = createServer((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    headerNames.push(...Object.keys(req.headers));
    if (req.headers.authorization !== `Bearer ${key}`) return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"unauthorized"}');
    const server = new McpServer({ name: 'hosted', version: '9.9.9' });
    server.registerTool('shout', { description: 'Upper-cases a word', inputSchema: { word: z.string() } }, async ({ word }) => ({ content: [{ type: 'text', text: word.toUpperCase() }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    void server.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => hosted!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(hosted.address() as { port: number }).port}/mcp`, seen, headerNames };
}


describe('a hosted server (spec.remote)', () => {
  it('is fronted at apiary\'s URL with apiary\'s token; the key from a secret goes to the server and nowhere else', async () => {
    const { url, seen } = await hostedServer('k-remote-canary');
    const h = await harness();
    await h.write('secret.yaml', secretYaml('hosted', { key: 'k-remote-canary' }));
    await h.write('hosted.yaml', hostedYaml(url));
    await h.start();
    const status = await h.waitFor('hosted Ready', async () => {
      const s = await h.status('hosted');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s;
    });
    expect(status.phase).toBe('Running');
    expect(status.pid).toBeUndefined();
    expect(findCondition(status.conditions, 'Ready')?.message).toBe(`hosted 9.9.9 at ${new URL(url).host} answered initialize and listed 1 tool(s)`);
    expect(status.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(status.url).not.toBe(url);

    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new Client({ name: 'remote-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(status.url!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const answer = await client.callTool({ name: 'shout', arguments: { word: 'hello' } });
    expect(answer.content).toEqual([{ type: 'text', text: 'HELLO' }]);
    await client.close();
    // A 2026-07-28 client's requests reach it with the same key (apiary's own session with the server).
    const modern = new ModernClient({ name: 'remote-test-2026', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await modern.connect(new ModernTransport(new URL(status.url!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect((await modern.callTool({ name: 'shout', arguments: { word: 'modern' } })).content).toEqual([{ type: 'text', text: 'MODERN' }]);
    await modern.close();
    // The hosted server only ever saw its own key, never apiary's token.
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set(['Bearer k-remote-canary']));
    // describe shows where the header's value comes from, not the value.
    const described = await runCli(['describe', 'mcpserver', 'hosted'], { env: h.env });
    expect(described.stdout).toContain(`Remote:           ${url} (streamable-http)`);
    expect(described.stdout).toContain('  Header:           Authorization: Bearer <HOSTED_KEY>');
    expect(described.stdout).not.toContain('k-remote-canary');

    // The key rotated: the next request carries the new one, no new port, no restart.
    const before = seen.length;
    await h.write('secret.yaml', secretYaml('hosted', { key: 'k-rotated' }));
    await h.waitFor('the new key used', async () => seen.slice(before).includes('Bearer k-rotated'), 15_000);
    expect((await h.status('hosted'))?.url).toBe(status.url);
  });

  it('without its secret it is Stuck, naming it; a manifest with both command and remote is refused', async () => {
    const { url } = await hostedServer('k');
    const h = await harness();
    await h.write('hosted.yaml', hostedYaml(url));
    await h.start();
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' && s;
    });
    expect(stuck.message).toBe('secret "hosted" not found (needed for env HOSTED_KEY)');
    await h.write('both.yaml', hostedYaml(url).replace('name: hosted\nspec:\n', 'name: both\nspec:\n  command: node\n'));
    const validate = await runCli(['validate'], { env: h.env });
    expect(validate.stdout + validate.stderr).toContain('set either command (a server apiary runs) or remote (a hosted one apiary fronts), not both');
  });

  it('a secret that would put a line break into a header is SecretValueInvalid, naming secret and key; nothing is sent with it', async () => {
    const { url, headerNames } = await hostedServer('k');
    const h = await harness();
    await h.write('secret.yaml', secretYaml('hosted', { key: 'k-crlf-canary\r\nX-Injected: yes' }));
    await h.write('hosted.yaml', hostedYaml(url));
    await h.start();
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('hosted');
      return s?.phase === 'Stuck' && s;
    });
    const message = 'secret "hosted" key "key" holds a line break, which an HTTP header cannot carry (needed for env HOSTED_KEY, used in header Authorization)';
    expect(findCondition(stuck.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretValueInvalid', message });
    expect(findCondition(stuck.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretValueInvalid' });
    expect(headerNames).not.toContain('x-injected');
    expect(JSON.stringify(h.logs)).not.toContain('k-crlf-canary');

    // Mended, it connects on its own.
    await h.write('secret.yaml', secretYaml('hosted', { key: 'k' }));
    await h.waitFor('Ready', async () => findCondition((await h.status('hosted'))?.conditions, 'Ready')?.status === 'True');
  });

  it('validate refuses a header value HTTP cannot carry, written in the header or in the spec.env literal it names', async () => {
    const h = await harness();
    await h.write('literal.yaml', hostedYaml('https://example.com/mcp', 'Bearer a\r\nX-Injected: yes').replace('name: hosted\n', 'name: literal\n'));
    await h.write('via-env.yaml', hostedYaml('https://example.com/mcp', 'Bearer $(PLAIN)').replace('name: hosted\n', 'name: via-env\n').replace('  env:\n', '  env:\n    - name: PLAIN\n      value: "a\\nb"\n'));
    const result = await runCli(['validate', h.dir], { env: h.env });
    expect(result.code).toBe(1);
    const out = result.stdout + result.stderr;
    expect(out).toMatch(/literal\.yaml:\d+:\d+: spec\.remote\.headers\[0\]\.value: must be one line of text that HTTP can carry: no line break, NUL or other control character, nothing past U\+00FF/);
    expect(out).toMatch(/via-env\.yaml:\d+:\d+: spec\.remote\.headers\[0\]\.value: holds a line break once its \$\(VAR\) is replaced by spec\.env's value/);
  });

  it('validate refuses a spec.remote.url that does not parse, as written or with spec.env\'s literals in it', async () => {
    const h = await harness();
    await h.write('port.yaml', hostedYaml('https://example.com:99999/mcp').replace('name: hosted\n', 'name: port\n'));
    await h.write('host.yaml', hostedYaml('https://$(HOST)/mcp').replace('name: hosted\n', 'name: host\n').replace('  env:\n', '  env:\n    - name: HOST\n      value: "bad host"\n'));
    // A secret may make it whole: that is checked when the secret is resolved.
    await h.write('secret-port.yaml', hostedYaml('https://example.com:$(HOSTED_KEY)/mcp').replace('name: hosted\n', 'name: secret-port\n'));
    const result = await runCli(['validate', h.dir], { env: h.env });
    expect(result.code).toBe(1);
    const out = result.stdout + result.stderr;
    expect(out).toMatch(/port\.yaml:\d+:\d+: spec\.remote\.url: is not a valid URL;/);
    expect(out).toMatch(/host\.yaml:\d+:\d+: spec\.remote\.url: is not a valid URL once its \$\(VAR\) is replaced by spec\.env's value/);
    expect(out).not.toContain('secret-port.yaml');
  });

  it('a password written into spec.remote.url: validate warns at the field; get -o json and describe show it as ***; $(VAR)s in its place are no warning', async () => {
    const h = await harness();
    await h.write('written.yaml', hostedYaml('https://me:written-pass-4f1e@mcp.example.com/mcp').replace('name: hosted\n', 'name: written\n'));
    await h.write('bound.yaml', hostedYaml('https://$(HOSTED_KEY)@mcp.example.com/mcp').replace('name: hosted\n', 'name: bound\n'));
    const validate = await runCli(['validate', h.dir], { env: h.env });
    const warned = `${validate.stdout}${validate.stderr}`;
    expect(warned).toMatch(/written\.yaml:\d+:\d+: spec\.remote\.url: credentials in the URL are readable by anyone who reads this file/);
    expect(warned).not.toMatch(/bound\.yaml:\d+:\d+: spec\.remote\.url: credentials/);
    for (const args of [['get', 'mcpserver', 'written', '-o', 'json'], ['get', 'mcpserver', 'written', '-o', 'yaml'], ['describe', 'mcpserver', 'written']]) {
      const r = await runCli([...args, '--dir', h.dir, '--state-dir', h.stateDir], { env: h.env });
      expect(r.stdout).toContain('https://***@mcp.example.com/mcp');
      expect(`${r.stdout}${r.stderr}`).not.toContain('written-pass-4f1e');
    }
  });

  it('canary: a secret in the URL or in a header is in no status, describe, get -o json, console answer or feed, even when the server echoes it', async () => {
    // A hosted server that refuses every request, quoting the URL it was asked for (as some error pages do).
    hosted = createServer((req, res) => void res.writeHead(401, { 'Content-Type': 'text/plain' }).end(`unknown key in ${req.url}`));
    await new Promise<void>((r) => hosted!.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(hosted.address() as { port: number }).port}/mcp`;
    const h = await harness();
    await h.write('secret.yaml', secretYaml('hosted', { key: 'url-canary-5c1f', crlf: 'header-canary-77e2\r\nX-Injected: yes' }));
    await h.write('in-url.yaml', `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: in-url
spec:
  remote:
    url: ${base}?api_key=$(KEY)
  env:
    - name: KEY
      valueFrom:
        secretKeyRef: { name: hosted, key: key }
`);
    await h.write('in-header.yaml', hostedYaml(base).replace('name: hosted\n', 'name: in-header\n').replace('key: key }', 'key: crlf }'));
    await h.start();
    const connecting = await h.waitFor('in-url Connecting after a refusal', async () => {
      const ready = findCondition((await h.status('in-url'))?.conditions, 'Ready');
      return ready?.reason === 'Connecting' && ready.message.includes('unknown key in') && ready;
    });
    // The message names the server as the manifest writes it: origin and path, $(VAR) unexpanded, no query.
    expect(connecting.message).toMatch(new RegExp(`^waiting for the MCP handshake at ${base.replace(/[.?]/g, '\\$&')} \\(`));
    await h.waitFor('in-header Stuck', async () => (await h.status('in-header'))?.phase === 'Stuck');

    const c = await startConsole(h);
    const seen: [string, string][] = [];
    for (const args of [['get', 'mcpservers', '-o', 'json'], ['get', 'mcpservers', '-o', 'yaml'], ['describe', 'mcpserver', 'in-url'], ['describe', 'mcpserver', 'in-header']]) {
      const r = await runCli(args, { env: h.env });
      seen.push([args.join(' '), r.stdout + r.stderr]);
    }
    for (const path of ['/api/v1/mcpservers', '/api/v1/mcpservers/in-url', '/api/v1/mcpservers/in-url/detail', '/api/v1/mcpservers/in-header', '/api/v1/mcpservers/in-header/detail']) {
      seen.push([path, (await c.request('GET', path)).body]);
    }
    seen.push(['watch', (await readEvents(c.port, c.server.apiToken, '/api/v1/watch', (e) => e.some((x) => x.type === 'BOOKMARK'))).raw]);
    seen.push(['logs', JSON.stringify(h.logs)]);
    for (const file of await filesUnder(h.stateDir)) seen.push([file, await readFile(file, 'utf8')]);
    expect(seen.find(([, text]) => text.includes('unknown key in /mcp?api_key=[redacted]'))?.[0]).toBeDefined();
    for (const [where, text] of seen) {
      expect(text.includes('url-canary-5c1f'), `the URL's secret in ${where}`).toBe(false);
      expect(text.includes('header-canary-77e2'), `the header's secret in ${where}`).toBe(false);
    }
  });
});

describe('apiary add --url', () => {
  it("writes a hosted server whose header takes a secret asked for on stdin and sealed, never echoed; it is Ready and answers through apiary", async () => {
    const { url, seen } = await hostedServer('k-add-canary-41');
    const h = await harness();
    const added = await runCli(['add', 'hosted', '--url', url, '--header', 'Authorization=Bearer $(TOKEN)', '--secret', 'TOKEN'], { env: h.env, input: 'k-add-canary-41\n' });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^secret\/token created \(sealed\)\nmcpserver\/hosted created \(.+\)\n$/);
    for (const file of await filesUnder(h.dir)) expect(await readFile(file, 'utf8'), file).not.toContain('k-add-canary');
    const manifests = (await Promise.all((await filesUnder(h.dir)).map((f) => readFile(f, 'utf8')))).join('\n');
    expect(manifests).toMatch(/remote:\n\s+url: .+\n\s+headers:\n\s+- name: Authorization\n\s+value: Bearer \$\(TOKEN\)/);
    expect(manifests).toMatch(/encryptedData:\n\s+TOKEN: apiary:v1:/);

    await h.start();
    const status = await h.waitFor('hosted Ready', async () => {
      const s = await h.status('hosted');
      return findCondition(s?.conditions, 'Ready')?.status === 'True' && s;
    });
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const client = new Client({ name: 'add-url-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(status.url!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect((await client.callTool({ name: 'shout', arguments: { word: 'added' } })).content).toEqual([{ type: 'text', text: 'ADDED' }]);
    await client.close();
    expect(new Set(seen)).toEqual(new Set(['Bearer k-add-canary-41']));
  });

  it('refuses a header naming a variable nothing declares, a credential written out in a header, and a command beside --url; writes nothing', async () => {
    const h = await harness();
    const undeclared = await runCli(['add', 'hosted', '--url', 'https://mcp.example.com/mcp', '--header', 'Authorization=Bearer $(TOKEN)'], { env: h.env });
    expect(undeclared.code).toBe(2);
    expect(undeclared.stderr).toContain('header Authorization refers to $(TOKEN), which no variable declares: add --secret TOKEN (its value sealed) or --env TOKEN=VALUE');
    const plain = await runCli(['add', 'hosted', '--url', 'https://mcp.example.com/mcp', '--header', 'Authorization: Bearer ghp_plain-canary'], { env: h.env });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("header Authorization holds its value in plain text, which would be written into the manifest; seal it instead: --header 'Authorization=Bearer $(AUTHORIZATION)' --secret AUTHORIZATION");
    expect(plain.stderr).not.toContain('ghp_plain-canary');
    const both = await runCli(['add', 'hosted', '--url', 'https://mcp.example.com/mcp', '--', 'node', 'server.js'], { env: h.env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give either a command after -- or --url for a hosted server, not both');
    expect(await filesUnder(h.dir)).toEqual([]);
  });
});
