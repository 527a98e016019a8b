/**
 * Issue 28 items 1 and 2 for servers that speak HTTP themselves and for
 * hosted ones: what comes back from them through apiary's proxy (plain JSON
 * bodies, event streams, the SDK sessions apiary holds for the other era,
 * the aggregate's sessions) carries no secret value apiary resolved for the
 * server, and their tools are pinned as a stdio server's are. A real
 * controller, the HTTP fixture (leaky-http-server.mjs: the SDK v2's
 * createMcpHandler, or the SDK v1's 2025 transport with event streams or JSON
 * bodies), the SDK v2 client pinned to each revision, the built CLI's
 * `tools lock|approve`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as V2Client, SSEClientTransport, type Client } from '@modelcontextprotocol/client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { KeyStore } from '../src/crypto/keys.js';
import { connect } from '../src/mcp/oauth-client.js';
import { OAuthTokenStore } from '../src/state/oauth-tokens.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { startConsole } from './helpers/console.js';
import { harness, nodeServer, secretYaml, type Harness } from './helpers/controller.js';
import { logInAndConsent, startAuthServer, startProtectedServer, type AuthServer, type ProtectedServer } from './helpers/oauth-as.js';
import { freePort } from './helpers/ports.js';
import { INSTALL, requireTool } from './helpers/tools.js';
import { expectRedactedAt, LEAKED as VALUE, leaks, MARK, versionedClient } from './helpers/leaks.js';
import { RUG_PULL, toolsDrifted } from './helpers/drifting.js';

const LEAKY_HTTP = fileURLToPath(new URL('./fixtures/servers/leaky-http-server.mjs', import.meta.url));
const FORMS = ['plain', 'base64', 'url', 'split'];
const VERSIONS = ['2026-07-28', '2025-11-25'] as const;

const chromium = requireTool('chromium', INSTALL.chromium, hasChromium);

const secretEnv = '    - name: LEAKED_VALUE\n      valueFrom: { secretKeyRef: { name: github, key: token } }\n';

function httpServer(name: string, args: string[], env = secretEnv, extra = ''): string {
  return nodeServer(name, [LEAKY_HTTP, ...args], `  transport: streamable-http\n  env:\n${env}${extra}`);
}

async function ready(h: Harness, name: string, otherPid?: number): Promise<string> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url && s.tools !== undefined && (otherPid === undefined || s.pid !== otherPid) ? s.url : undefined;
  }, 20_000);
}

async function client(url: string, h: Harness, version: string): Promise<Client> {
  return versionedClient(url, (await readEndpointToken(new StateLayout(h.stateDir)))!, version);
}

/** Each form of the leak, and (where the server streams) its progress notification, at `url` in both revisions. */
async function expectNoLeak(h: Harness, url: string, tool: string, progress: boolean): Promise<void> {
  for (const version of VERSIONS) {
    const c = await client(url, h, version);
    expect(c.getNegotiatedProtocolVersion()).toBe(version);
    await expectRedactedAt(c, tool, version, FORMS, progress);
    await c.close();
  }
}

async function redactedEvents(h: Harness, name: string): Promise<{ type: string; message: string }[]> {
  return h.waitFor('the SecretRedacted event', async () => {
    const found = ((await h.server(name))?.events ?? []).filter((e) => e.reason === 'SecretRedacted');
    return found.length > 0 ? found : undefined;
  });
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill();
});

describe('no secret leaves in a response from an HTTP or hosted server', () => {
  it.each([
    ['a 2026-07-28 server (2025 clients served by apiary)', [], true],
    ['a 2025 server whose answers are event streams (passed through)', ['--legacy'], true],
    ['a 2025 server whose answers are JSON bodies (passed through)', ['--legacy', '--json'], false],
  ] as const)('%s: at its endpoint and the aggregate, in both revisions', async (_what, args, progress) => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('leaky.yaml', httpServer('leaky', [...args]));
    const controller = await h.start();
    const url = await ready(h, 'leaky');
    await expectNoLeak(h, url, 'leak', progress);
    await expectNoLeak(h, controller.aggregateUrl!, 'leaky__leak', progress);
    // The tool's description quotes the value: not in status or the console's detail, nor in the listing kept for tools lock.
    expect(leaks(JSON.stringify(await h.status('leaky')))).toEqual([]);
    const detail = (await (await startConsole(h)).request('GET', '/api/v1/mcpservers/leaky/detail')).body;
    expect(detail).toContain('Returns the secret it was given');
    expect(leaks(detail)).toEqual([]);
    const kept = await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'leaky.json'), 'utf8').catch(() => undefined));
    expect(leaks(kept)).toEqual([]);
    expect(kept).toContain(MARK);
    const events = await redactedEvents(h, 'leaky');
    // At most once a minute per server and key, however many answers held it.
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('Warning');
    expect(events[0]!.message).toContain('secret "github" key "token"');
    expect(leaks(JSON.stringify(events))).toEqual([]);
  }, 90_000);

  it('a server on the 2024 HTTP+SSE transport: its event stream is redacted event by event, and at the aggregate', async () => {
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('leaky.yaml', httpServer('leaky', ['--sse']).replace('transport: streamable-http', 'transport: sse'));
    const controller = await h.start();
    const url = await ready(h, 'leaky');
    expect(url).toMatch(/\/sse$/);
    const token = (await readEndpointToken(new StateLayout(h.stateDir)))!;
    const c = new V2Client({ name: 'http-trust-test', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await c.connect(new SSEClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    for (const form of FORMS) {
      const text = JSON.stringify(await c.callTool({ name: 'leak', arguments: { form } }));
      expect(leaks(text), form).toEqual([]);
      expect(text, form).toContain(MARK);
    }
    await c.close();
    // (The SDK v1's HTTP+SSE server sends no progress to a v2 client: every answer is an event of the stream already.)
    await expectNoLeak(h, controller.aggregateUrl!, 'leaky__leak', false);
  }, 90_000);

  it('a hosted server that echoes its own API key (a header secret) gets it replaced, at its endpoint and the aggregate', async () => {
    const port = await freePort();
    await hostedFixture(port);
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('hosted.yaml', hostedManifest(port));
    const controller = await h.start();
    const url = await ready(h, 'hosted');
    await expectNoLeak(h, url, 'leak', true);
    await expectNoLeak(h, controller.aggregateUrl!, 'hosted__leak', true);
    const events = await redactedEvents(h, 'hosted');
    expect(events[0]!.message).toContain('secret "github" key "token"');
  }, 90_000);
});

const cli = (h: Harness, ...args: string[]) => runCli(['--dir', h.dir, '--state-dir', h.stateDir, 'tools', ...args], { env: h.env });

function pinned(env: Record<string, string> = {}): string {
  const lines = Object.entries({ LEAKED_VALUE: 'unused', ...env }).map(([name, value]) => `    - name: ${name}\n      value: ${JSON.stringify(value)}\n`).join('');
  return httpServer('drift', ['--legacy'], lines);
}

/** The fixture as a hosted server on `port`, that wants its API key in X-Api-Key; resolves once it listens. */
async function hostedFixture(port: number, env: Record<string, string> = {}): Promise<ChildProcess> {
  const server = spawn(process.execPath, [LEAKY_HTTP, '--legacy'], { env: { ...process.env, PORT: String(port), LEAKED_VALUE: VALUE, REQUIRE_HEADER: 'X-Api-Key', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d: Buffer) => d.toString().includes('leaky-http on') && resolve());
    server.once('exit', (code) => reject(new Error(`the hosted fixture exited (${code}) before it listened`)));
  });
  return server;
}

function hostedManifest(port: number, extra = ''): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: hosted
spec:
  remote:
    url: http://127.0.0.1:${port}/mcp
    headers:
      - name: X-Api-Key
        value: $(KEY)
  env:
    - name: KEY
      valueFrom: { secretKeyRef: { name: github, key: token } }
${extra}`;
}

describe('pinned tool definitions of an HTTP server', () => {
  it('withholds a tool whose description changed after the lock, names it in ToolsDrifted, and approve restores it', async () => {
    const h = await harness();
    await h.write('drift.yaml', pinned());
    const controller = await h.start();
    await ready(h, 'drift');
    const first = (await h.status('drift'))!.pid;
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));

    const locked = await cli(h, 'lock', 'drift');
    expect(locked.stderr).toBe('');
    expect(locked.stdout).toContain('1 server(s), 2 tool(s) pinned');
    expect(await readFile(join(h.dir, 'tools.lock.yaml'), 'utf8')).toContain('description: Echoes its input\n');
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');

    await h.write('drift.yaml', pinned({ ECHO_DESCRIPTION: RUG_PULL, EXTRA_TOOL: '1' }));
    const url = await ready(h, 'drift', first);
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('changed: echo; new: exfiltrate');
    expect(drifted.message).toContain('withheld');
    for (const version of VERSIONS) {
      const c = await client(url, h, version);
      expect((await c.listTools()).tools.map((t) => t.name), version).toEqual(['leak']);
      const refused = await c.callTool({ name: 'echo', arguments: { text: 'hi' } }).then(JSON.stringify, (err: Error) => err.message);
      expect(refused, version).toMatch(/tool "echo" is withheld: mcpserver\/drift's tools differ from tools\.lock\.yaml \(changed: echo; new: exfiltrate\)/);
      await c.close();
      const all = await client(controller.aggregateUrl!, h, version);
      expect((await all.listTools()).tools.map((t) => t.name), version).toEqual(['drift__leak']);
      const refusedThere = await all.callTool({ name: 'drift__exfiltrate', arguments: { path: '/' } }).then(JSON.stringify, (err: Error) => err.message);
      expect(refusedThere, version).toMatch(/withheld/);
      await all.close();
    }

    const diff = await cli(h, 'diff', 'drift');
    expect(diff.stdout).toContain(`+${RUG_PULL}\n`);
    expect((await cli(h, 'approve', 'drift')).code).toBe(0);
    await h.waitFor('ToolsDrifted False after approving', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');
    for (const version of VERSIONS) {
      const c = await client(url, h, version);
      expect((await c.listTools()).tools.map((t) => t.name).sort(), version).toEqual(['echo', 'exfiltrate', 'leak']);
      expect((await c.callTool({ name: 'echo', arguments: { text: 'back' } })).content, version).toEqual([{ type: 'text', text: 'back' }]);
      await c.close();
    }
  }, 120_000);

  it('a hosted server is judged too: after a lock, its tools changed behind the same URL are withheld once apiary probes it again', async () => {
    const port = await freePort();
    const first = await hostedFixture(port);
    const h = await harness();
    await h.write('s.yaml', secretYaml('github', { token: VALUE }));
    await h.write('hosted.yaml', hostedManifest(port, '  healthCheck: { intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 }\n'));
    await h.start();
    const url = await ready(h, 'hosted');
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'hosted.json'), 'utf8').catch(() => undefined));
    expect((await cli(h, 'lock', 'hosted')).stdout).toContain('1 server(s), 2 tool(s) pinned');
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('hosted'))?.conditions, 'ToolsDrifted')?.status === 'False');

    first.kill();
    await new Promise((resolve) => first.once('exit', resolve));
    await hostedFixture(port, { ECHO_DESCRIPTION: RUG_PULL });
    const drifted = await toolsDrifted(h, 'hosted', 20_000);
    expect(drifted.message).toContain('changed: echo');
    const c = await client(url, h, '2025-11-25');
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['leak']);
    const refused = await c.callTool({ name: 'echo', arguments: { text: 'hi' } }).then(JSON.stringify, (err: Error) => err.message);
    expect(refused).toMatch(/tool "echo" is withheld: mcpserver\/hosted's tools differ/);
    expect((await cli(h, 'approve', 'hosted', 'echo')).code).toBe(0);
    await h.waitFor('echo listed again', async () => (await c.listTools()).tools.some((t) => t.name === 'echo'));
    await c.close();
  }, 90_000);

  it.each([
    ['a 2025 server (clients passed through, 2026-07-28 clients over apiary\'s session)', ['--legacy']],
    ['a 2026-07-28 server (2025 clients over apiary\'s session)', []],
  ] as const)('judges what %s lists to a client, without a restart or list_changed: the changed tool is withheld from that list on', async (_what, args) => {
    const h = await harness();
    const descriptionFile = join(h.reports, 'echo-description.txt');
    await h.write('drift.yaml', httpServer('drift', [...args], `    - name: DESCRIPTION_FILE\n      value: ${JSON.stringify(descriptionFile)}\n`));
    const controller = await h.start();
    const url = await ready(h, 'drift');
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
    expect((await cli(h, 'lock', 'drift')).code).toBe(0);
    await h.waitFor('ToolsDrifted False', async () => findCondition((await h.status('drift'))?.conditions, 'ToolsDrifted')?.status === 'False');

    await writeFile(descriptionFile, RUG_PULL);
    // The aggregate's own sessions with the server first: what they list is judged there too.
    for (const version of VERSIONS) {
      const all = await client(controller.aggregateUrl!, h, version);
      expect((await all.listTools()).tools.map((t) => t.name), `aggregate ${version}`).toEqual(['drift__leak']);
      await all.close();
    }
    for (const version of VERSIONS) {
      const c = await client(url, h, version);
      expect((await c.listTools()).tools.map((t) => t.name), version).toEqual(['leak']);
      const refused = await c.callTool({ name: 'echo', arguments: { text: 'hi' } }).then(JSON.stringify, (err: Error) => err.message);
      expect(refused, version).toMatch(/tool "echo" is withheld/);
      await c.close();
    }
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('changed: echo');
    await h.waitFor('the new listing kept', async () => (await readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8')).includes('id_rsa'));
  }, 90_000);

  it('onDrift Warn: the changed tool stays listed and callable, ToolsDrifted only reports it', async () => {
    const h = await harness();
    const descriptionFile = join(h.reports, 'echo-description.txt');
    await h.write('drift.yaml', httpServer('drift', ['--legacy'], `    - name: DESCRIPTION_FILE\n      value: ${JSON.stringify(descriptionFile)}\n`, '  tools:\n    onDrift: Warn\n'));
    await h.start();
    const url = await ready(h, 'drift');
    await h.waitFor('the listed tools kept', () => readFile(join(h.stateDir, 'tools', 'drift.json'), 'utf8').catch(() => undefined));
    expect((await cli(h, 'lock', 'drift')).code).toBe(0);
    await writeFile(descriptionFile, RUG_PULL);
    const c = await client(url, h, '2025-11-25');
    expect((await c.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'leak']);
    expect((await c.callTool({ name: 'echo', arguments: { text: 'warned' } })).content).toEqual([{ type: 'text', text: 'warned' }]);
    await c.close();
    const drifted = await toolsDrifted(h, 'drift');
    expect(drifted.message).toContain('changed: echo');
    expect(drifted.message).toContain('onDrift: Warn');
  }, 90_000);
});

describe.skipIf(!chromium.available)("a hosted server apiary logs in to (spec.remote.auth)", () => {
  let as: AuthServer | undefined;
  let hosted: ProtectedServer | undefined;
  afterAll(async () => {
    await hosted?.close();
    await as?.close();
  });

  it('that echoes the access token apiary sends it gets it replaced, in both revisions', async () => {
    as = await startAuthServer();
    hosted = await startProtectedServer(as.issuer, { echoToken: true });
    const h = await harness();
    await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: ${hosted.url}\n    auth:\n      type: oauth\n`);
    await h.start();
    const store = new OAuthTokenStore(new StateLayout(h.stateDir), () => new KeyStore({ env: { APIARY_KEY_FILE: h.keyFile } }).get());
    const browser = await launchChromium();
    try {
      await connect({ name: 'hosted', serverUrl: hosted.url, settings: {}, store, open: async (url) => logInAndConsent(await browser.newPage(), url), timeoutMs: 30_000 });
    } finally {
      await browser.close();
    }
    const url = await ready(h, 'hosted');
    // The token apiary sends now (a refresh may have replaced the one connect sealed).
    const sent = (await store.grant('hosted'))?.accessToken.reveal();
    expect(sent).toBeDefined();
    for (const version of VERSIONS) {
      const c = await client(url, h, version);
      const text = JSON.stringify(await c.callTool({ name: 'token', arguments: {} }));
      expect(text.includes(sent!), version).toBe(false);
      expect(text, version).toContain('sent: [redacted: secret spec.remote.auth/access_token]');
      await c.close();
    }
  }, 120_000);
});
