/**
 * Sandboxed servers (spec.sandbox) under Debian's bubblewrap: what the
 * schema accepts, the mounts in the order that keeps the home and the state
 * directory hidden, the egress proxy's allow list, and real servers run by
 * the controller (a probe server's view of its sandbox, server-everything
 * under the default profile, SandboxUnavailable without bubblewrap).
 */
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { formatManifestError } from '../src/manifests/errors.js';
import { parseManifestText } from '../src/manifests/parse.js';
import { EgressProxy, type EgressRefusal } from '../src/runtime/egress-proxy.js';
import { probeSandbox, sandboxArgs, type SandboxSpec } from '../src/runtime/sandbox.js';
import { StateLayout } from '../src/state/layout.js';
import { runCli } from './helpers/cli.js';
import { endpointClient } from './helpers/endpoint-client.js';
import { processesNaming } from '../chaos/git-hang.js';
import { harness, nodeServer, type Harness } from './helpers/controller.js';
import { tempDir, workspace } from './helpers/tmp.js';
import { requireTool } from './helpers/tools.js';

const PROBE = fileURLToPath(new URL('./fixtures/servers/sandbox-probe.mjs', import.meta.url));
const require_ = createRequire(import.meta.url);
const EVERYTHING = require_.resolve('@modelcontextprotocol/server-everything/dist/index.js');
/** The node_modules folder server-everything and its dependencies load from. */
const NODE_MODULES = EVERYTHING.slice(0, EVERYTHING.indexOf('/node_modules/') + '/node_modules'.length);

const bwrap = requireTool('/usr/bin/bwrap', "apt install bubblewrap (Debian's package; user namespaces must be allowed); .ci/run installs it", () => probeSandbox(process.env).available);

const SERVER = (sandbox: string, extra = ''): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: s\nspec:\n  command: node\n${extra}  sandbox:\n${sandbox}`;
const errorsOf = (text: string): string[] => parseManifestText(text, '/d/s.yaml', 's.yaml')[0]!.errors.map(formatManifestError);

describe('spec.sandbox in manifests', () => {
  it('accepts paths absolute or under ~, host:port allow lists with network allow', () => {
    expect(errorsOf(SERVER('    filesystem:\n      read: [/data, "~/.config/x", "~"]\n      write: [/tmp/out]\n    network: allow\n    allow: ["api.github.com:443", "127.0.0.1:8080", "[::1]:80"]\n'))).toEqual([]);
    expect(errorsOf(SERVER('    profile: none\n'))).toEqual([]);
  });

  it('refuses relative and climbing paths, a bad host:port, and an allow list without network allow or without hosts', () => {
    expect(errorsOf(SERVER('    filesystem:\n      read: [data, "~/a/../../b", "/x/./y", "~user/x"]\n'))).toEqual([
      's.yaml:9:14: spec.sandbox.filesystem.read[0]: must be an absolute path or one under ~/, without "." or ".." segments; got "data"',
      's.yaml:9:20: spec.sandbox.filesystem.read[1]: must be an absolute path or one under ~/, without "." or ".." segments; got "~/a/../../b"',
      's.yaml:9:35: spec.sandbox.filesystem.read[2]: must be an absolute path or one under ~/, without "." or ".." segments; got "/x/./y"',
      's.yaml:9:45: spec.sandbox.filesystem.read[3]: must be an absolute path or one under ~/, without "." or ".." segments; got "~user/x"',
    ]);
    expect(errorsOf(SERVER('    network: allow\n    allow: ["github.com", "x.com:0", "a b:1"]\n')).map((e) => e.replace(/^s\.yaml:\d+:\d+: /, ''))).toEqual([
      expect.stringMatching(/^spec\.sandbox\.allow\[0\]: must be host:port/),
      expect.stringMatching(/^spec\.sandbox\.allow\[1\]: must be host:port/),
      expect.stringMatching(/^spec\.sandbox\.allow\[2\]: must be host:port/),
    ]);
    expect(errorsOf(SERVER('    allow: ["github.com:443"]\n'))).toEqual([expect.stringContaining('spec.sandbox.allow: allow needs network: allow')]);
    expect(errorsOf(SERVER('    network: allow\n'))).toEqual([expect.stringContaining('spec.sandbox.allow: network allow needs the hosts it may reach')]);
  });
});

describe('a suggested sandbox for catalog installs (install --dry-run)', () => {
  it('shows one under the manifest by the runner (npx, uvx), none for a container, and the suggestion validates once uncommented', async () => {
    const ws = await workspace();
    const npm = await runCli(['install', 'memory', '--dry-run'], { env: ws.env });
    expect(npm.code, npm.stderr).toBe(0);
    expect(npm.stdout).toContain('# Suggested spec.sandbox (not written; add it under spec to run the server under bubblewrap): npx fetches the package from registry.npmjs.org');
    const suggested = npm.stdout.split('\n').filter((line) => line.startsWith('#   ')).map((line) => `  ${line.slice(4)}`).join('\n');
    const manifest = `${npm.stdout.split('\n').filter((line) => !line.startsWith('#')).join('\n').trimEnd()}\n${suggested}\n`;
    expect(parseManifestText(manifest, '/d/memory.yaml', 'memory.yaml')[0]!.errors.map(formatManifestError)).toEqual([]);
    const parsed = parseManifestText(manifest, '/d/memory.yaml', 'memory.yaml')[0]!.resource;
    expect(parsed?.kind === 'MCPServer' && parsed.manifest.spec).toMatchObject({ sandbox: { network: 'allow', allow: ['registry.npmjs.org:443'] } });
    const python = JSON.parse((await runCli(['install', 'time', '--dry-run', '-o', 'json'], { env: ws.env })).stdout) as { suggestedSandbox: unknown };
    expect(python.suggestedSandbox).toMatchObject({ sandbox: { network: 'allow', allow: ['pypi.org:443', 'files.pythonhosted.org:443'], filesystem: { write: ['~/.cache/uv', '~/.local/share/uv'] } } });
    const container = await runCli(['install', 'github', '--dry-run', '--allow-missing'], { env: ws.env });
    expect(container.stdout).toContain('# No sandbox suggested: a container isolates the server already');
  }, 30_000);
});

describe('the bubblewrap command line', () => {
  const sandbox: SandboxSpec = { profile: 'default', read: ['/srv/root'], write: ['~/out'], network: 'none', allow: [] };
  const input = { sandbox, command: 'node', args: ['server.js'], cwd: '/srv/root/app', home: '/home/u', stateDir: '/srv/root/state', nodePath: '/opt/node/bin/node' };

  it('applies mounts parents first: the home and the state directory stay hidden under a granted parent, a path declared inside them is visible', () => {
    const args = sandboxArgs(input);
    const at = (...mount: string[]): number => args.findIndex((_, i) => mount.every((m, j) => args[i + j] === m));
    expect(at('--ro-bind-try', '/srv/root', '/srv/root')).toBeGreaterThan(-1);
    // The state directory is under a granted folder: a tmpfs covers it, after the grant.
    expect(at('--tmpfs', '/srv/root/state')).toBeGreaterThan(at('--ro-bind-try', '/srv/root', '/srv/root'));
    expect(at('--tmpfs', '/home/u')).toBeGreaterThan(-1);
    expect(at('--bind-try', '/home/u/out', '/home/u/out')).toBeGreaterThan(at('--tmpfs', '/home/u'));
    expect(at('--bind-try', '/home/u/.npm', '/home/u/.npm')).toBeGreaterThan(at('--tmpfs', '/home/u'));
    expect(at('--ro-bind-try', '/opt/node', '/opt/node')).toBeGreaterThan(-1);
    expect(args).toEqual(expect.arrayContaining(['--unshare-user', '--unshare-pid', '--unshare-net', '--die-with-parent', '--proc', '/proc', '--dev', '/dev']));
    expect(args).not.toContain('--new-session');
    expect(args.slice(args.indexOf('--chdir'), args.indexOf('--chdir') + 2)).toEqual(['--chdir', '/srv/root/app']);
    expect(args.slice(-3)).toEqual(['--', 'node', 'server.js']);
  });

  it('grants nothing of the system with profile none, and runs the egress forwarder first with network allow', () => {
    const none = sandboxArgs({ ...input, sandbox: { ...sandbox, profile: 'none', read: [], write: [] } });
    expect(none.filter((a) => a.startsWith('--') && a.includes('bind'))).toEqual([]);
    const allow = sandboxArgs({ ...input, sandbox: { ...sandbox, network: 'allow', allow: ['api.github.com:443'] }, egressSocket: '/state/egress/s/egress-1.sock' });
    expect(allow).toEqual(expect.arrayContaining(['--bind-try', '/state/egress/s/egress-1.sock', '/run/apiary-egress.sock']));
    const command = allow.slice(allow.indexOf('--') + 1);
    expect(command.slice(0, 2)).toEqual(['/opt/node/bin/node', '-e']);
    expect(JSON.parse(command[3]!)).toEqual({ egress: { socket: '/run/apiary-egress.sock', port: 3128 } });
    expect(command.slice(4)).toEqual(['node', 'server.js']);
  });
});

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A plain HTTP server on a free loopback port, standing for a host on the internet. */
async function httpHost(body: string): Promise<number> {
  const server = createServer((req, res) => res.end(`${body} ${req.url}`));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** Sends one proxy request over a unix socket: CONNECT host:port, or GET an absolute URL. */
function throughSocket(socketPath: string, method: 'CONNECT' | 'GET', target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: target });
    req.on('connect', (res, socket) => {
      socket.write(`GET /tunnelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      let body = '';
      socket.on('data', (chunk: Buffer) => (body += chunk.toString()));
      socket.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the egress proxy', () => {
  it('lets through only the allowed host:port, by CONNECT and by absolute-form GET; a refusal is 403 and reported with the server and host', async () => {
    const allowed = await httpHost('allowed');
    const other = await httpHost('other');
    const refusals: EgressRefusal[] = [];
    const proxy = new EgressProxy((r) => refusals.push(r));
    const socket = await proxy.serve('probe', join(await tempDir(), 'egress'), [`127.0.0.1:${allowed}`]);
    try {
      const tunnel = await throughSocket(socket, 'CONNECT', `127.0.0.1:${allowed}`);
      expect(tunnel.status).toBe(200);
      expect(tunnel.body).toContain('allowed /tunnelled');
      expect(await throughSocket(socket, 'GET', `http://127.0.0.1:${allowed}/plain`)).toMatchObject({ status: 200, body: 'allowed /plain' });
      const refused = await throughSocket(socket, 'CONNECT', `127.0.0.1:${other}`).catch((err: unknown) => ({ status: -1, body: String(err) }));
      expect(refused.status).toBe(403);
      expect(await throughSocket(socket, 'GET', `http://127.0.0.1:${other}/`)).toMatchObject({ status: 403, body: expect.stringContaining(`127.0.0.1:${other} is not in spec.sandbox.allow of server probe`) });
      expect(refusals).toEqual([
        { server: 'probe', target: `127.0.0.1:${other}`, method: 'CONNECT' },
        { server: 'probe', target: `127.0.0.1:${other}`, method: 'GET' },
      ]);
    } finally {
      await proxy.closeAll();
    }
  });
});

/** Every process whose command line names the probe server (bwrap's, the forwarder's, the server's). */
const probeProcesses = (): number[] => processesNaming(PROBE);

async function ready(h: Harness, name: string, timeoutMs = 30_000): Promise<void> {
  await h.waitFor(`${name} Ready`, async () => findCondition((await h.status(name))?.conditions, 'Ready')?.status === 'True', timeoutMs);
}

const clientOf = (h: Harness, name: string): Promise<Client> => endpointClient(h, name, 'sandbox-test');

async function call(client: Client, tool: string, args: Record<string, unknown>): Promise<string> {
  const result = await client.callTool({ name: tool, arguments: args });
  return (result.content as { text: string }[])[0]!.text;
}

/** A controller whose user has a home of its own (with a canary in it), and a probe server sandboxed as `sandbox` says. */
async function probeSetup(sandbox: (paths: { home: string; data: string; out: string }) => string, args: string[] = []): Promise<{ h: Harness; home: string; data: string; out: string }> {
  const h = await harness();
  const home = await tempDir('apiary-home-');
  await writeFile(join(home, 'canary.txt'), 'home canary');
  const data = join(dirname(h.dir), 'data');
  const out = join(dirname(h.dir), 'out');
  await mkdir(data);
  await mkdir(out);
  await writeFile(join(data, 'declared.txt'), 'declared data');
  await mkdir(h.stateDir, { recursive: true, mode: 0o700 });
  await writeFile(join(h.stateDir, 'canary.txt'), 'state canary');
  await h.write('keys.yaml', 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: keys\nstringData:\n  token: plain-canary\n');
  await h.write('probe.yaml', nodeServer('probe', [PROBE, ...args], `  sandbox:\n${sandbox({ home, data, out })}`));
  // A proxy the user set for everything else: a sandboxed server gets apiary's or none.
  await h.start({ HOME: home, HTTPS_PROXY: 'http://proxy.example:8080' });
  await ready(h, 'probe');
  return { h, home, data, out };
}

describe.skipIf(!bwrap.available)('a sandboxed server (bubblewrap)', () => {
  it('cannot read the home or the state directory, reads what is declared, writes only its write paths, and reaches no port with network none', async () => {
    const hostPort = await httpHost('host');
    const { h, home, data, out } = await probeSetup(({ data, out }) => `    filesystem:\n      read: [${JSON.stringify(dirname(PROBE))}, ${JSON.stringify(data)}]\n      write: [${JSON.stringify(out)}]\n`);
    const client = await clientOf(h, 'probe');
    try {
      // Outside, the canaries are there to read; inside, neither exists.
      expect(await readFile(join(home, 'canary.txt'), 'utf8')).toBe('home canary');
      expect(await call(client, 'cat', { path: join(home, 'canary.txt') })).toBe('error ENOENT');
      expect(await call(client, 'cat', { path: join(h.stateDir, 'canary.txt') })).toBe('error ENOENT');
      expect(await call(client, 'cat', { path: join(h.stateDir, 'processes', 'probe.json') })).toBe('error ENOENT');
      expect(await call(client, 'cat', { path: join(data, 'declared.txt') })).toBe('declared data');
      // The working directory is granted, its Secret manifests are not (unreadable); the server's own manifest is there.
      expect(await call(client, 'cat', { path: join(h.dir, 'probe.yaml') })).toContain('kind: MCPServer');
      expect(await readFile(join(h.dir, 'keys.yaml'), 'utf8')).toContain('plain-canary');
      expect(await call(client, 'cat', { path: join(h.dir, 'keys.yaml') })).toBe('error EACCES');
      // Read-only where only reading was granted (the working directory too), and nowhere else to write but /tmp (private) and out.
      expect(await call(client, 'write', { path: join(data, 'x.txt'), text: 'x' })).toBe('error EROFS');
      expect(await call(client, 'write', { path: join(h.dir, 'x.yaml'), text: 'x' })).toBe('error EROFS');
      expect(await call(client, 'write', { path: join(home, 'x.txt'), text: 'x' })).toBe('written');
      await expect(readFile(join(home, 'x.txt'))).rejects.toThrow(/ENOENT/); // the home inside is a private tmpfs
      expect(await call(client, 'write', { path: join(out, 'result.txt'), text: 'from the sandbox' })).toBe('written');
      expect(await readFile(join(out, 'result.txt'), 'utf8')).toBe('from the sandbox');
      // The host's loopback is another namespace's: nothing listens on the sandbox's own.
      expect(await call(client, 'connect', { host: '127.0.0.1', port: hostPort })).toBe('error ECONNREFUSED');
      expect(await call(client, 'env', { name: 'HTTPS_PROXY' })).toBe('<unset>');
      expect(await call(client, 'env', { name: 'HOME' })).toBe(home);
      const status = await h.status('probe');
      expect(status?.sandbox).toBe('bubblewrap, profile default, network none, read 2, write 1');
      const described = await runCli(['describe', 'mcpserver', 'probe'], { env: h.env });
      expect(described.stdout).toMatch(/Sandbox:\s+bubblewrap, profile default, network none, read 2, write 1/);
      expect(described.stdout).toMatch(/Sandbox:\s+profile default, network none/);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('reaches an allowed host through the egress proxy and nothing else; a refusal is in the server log and an EgressDenied event', async () => {
    const allowed = await httpHost('allowed');
    const other = await httpHost('other');
    const { h } = await probeSetup(() => `    filesystem:\n      read: [${JSON.stringify(dirname(PROBE))}]\n    network: allow\n    allow: ["127.0.0.1:${allowed}"]\n`);
    const client = await clientOf(h, 'probe');
    try {
      for (const [name, value] of [['HTTPS_PROXY', 'http://127.0.0.1:3128'], ['http_proxy', 'http://127.0.0.1:3128'], ['NO_PROXY', ''], ['NODE_USE_ENV_PROXY', '1']]) {
        expect(await call(client, 'env', { name: name! })).toBe(value);
      }
      expect(await call(client, 'fetch', { url: `http://127.0.0.1:${allowed}/through-proxy` })).toBe('200 allowed /through-proxy');
      expect(await call(client, 'tunnel', { host: '127.0.0.1', port: allowed })).toBe('200');
      expect(await call(client, 'tunnel', { host: '127.0.0.1', port: other })).toBe('403');
      expect(await call(client, 'fetch', { url: `http://127.0.0.1:${other}/` })).toMatch(/^403 apiary egress proxy: 127\.0\.0\.1:\d+ is not in spec\.sandbox\.allow of server probe/);
      // A program that ignores the proxy variables reaches nothing, the allowed host included.
      expect(await call(client, 'connect', { host: '127.0.0.1', port: allowed })).toBe('error ECONNREFUSED');
      const log = await h.waitFor('the refusal in the log', async () => {
        const text = await readFile(new StateLayout(h.stateDir).logFile('probe'), 'utf8');
        return text.includes(`refused CONNECT 127.0.0.1:${other}`) ? text : undefined;
      });
      expect(log).toContain(`apiary egress proxy: refused CONNECT 127.0.0.1:${other}: not in spec.sandbox.allow of server probe (403)`);
      // Refused twice (a tunnel, then a fetch): one Warning event names the server's target, at most once a minute.
      const denied = await h.waitFor('the EgressDenied event', async () => {
        const events = ((await h.server('probe'))?.events ?? []).filter((e) => e.reason === 'EgressDenied');
        return events.length > 0 ? events : undefined;
      });
      await h.settled();
      expect(((await h.server('probe'))?.events ?? []).filter((e) => e.reason === 'EgressDenied')).toHaveLength(1);
      expect(denied[0]).toMatchObject({ type: 'Warning', message: `the sandbox's egress proxy refused 127.0.0.1:${other}: it is not in spec.sandbox.allow (each refusal is in the server's log)` });
      expect((await h.status('probe'))?.sandbox).toBe(`bubblewrap, profile default, network allow (127.0.0.1:${allowed}), read 1, write 0`);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('a server replaced at once (Recreate) reaches the allowed host again: the old egress socket going does not take the new one with it', async () => {
    const allowed = await httpHost('allowed');
    const sandbox = `    filesystem:\n      read: [${JSON.stringify(dirname(PROBE))}]\n    network: allow\n    allow: ["127.0.0.1:${allowed}"]\n`;
    const { h } = await probeSetup(() => sandbox);
    const first = (await h.status('probe'))!.pid!;
    await h.write('probe.yaml', nodeServer('probe', [PROBE], `  strategy:\n    type: Recreate\n  env:\n    - name: ROUND\n      value: "2"\n  sandbox:\n${sandbox}`));
    await h.waitFor('a new process Ready', async () => {
      const status = await h.status('probe');
      return status?.pid !== undefined && status.pid !== first && findCondition(status.conditions, 'Ready')?.status === 'True';
    });
    await h.settled();
    const client = await clientOf(h, 'probe');
    try {
      expect(await call(client, 'fetch', { url: `http://127.0.0.1:${allowed}/again` })).toBe('200 allowed /again');
    } finally {
      await client.close();
    }
  }, 60_000);

  it('stops whole: the server, its forwarder and bubblewrap leave with a stop (they stay in the process group apiary signals), and the egress socket goes', async () => {
    const allowed = await httpHost('allowed');
    // A server that stays when its stdin closes: only the group's SIGTERM ends it.
    const { h } = await probeSetup(() => `    filesystem:\n      read: [${JSON.stringify(dirname(PROBE))}]\n    network: allow\n    allow: ["127.0.0.1:${allowed}"]\n`, ['--ignore-stdin']);
    const pid = (await h.status('probe'))!.pid!;
    const sockets = (): string[] => readdirSync(join(h.stateDir, 'egress', 'probe')).filter((f) => f.endsWith('.sock'));
    expect(probeProcesses().length).toBeGreaterThanOrEqual(3); // bwrap (outside and as init inside), the forwarder, the server
    expect(sockets()).toHaveLength(1);
    await h.write('probe.yaml', nodeServer('probe', [PROBE], '  suspend: true\n'));
    await h.waitFor('Suspended', async () => (await h.status('probe'))?.phase === 'Suspended');
    await h.waitFor('every process of the sandbox gone', async () => probeProcesses().length === 0 && !existsSync(`/proc/${pid}`));
    await h.waitFor('the egress socket closed', async () => sockets().length === 0);
  }, 60_000);

  it('runs server-everything under the default profile (Ready, a tool call works)', async () => {
    const h = await harness();
    await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio'], `  sandbox:\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n`));
    await h.start({ HOME: await tempDir('apiary-home-') });
    await ready(h, 'everything');
    const client = await clientOf(h, 'everything');
    try {
      expect(await call(client, 'echo', { message: 'sandboxed' })).toBe('Echo: sandboxed');
    } finally {
      await client.close();
    }
  }, 60_000);
});

/** Spawn to Ready of server-everything, from its status: the process's start and the Ready condition's transition. */
async function everythingSpawnToReadyMs(sandboxed: boolean): Promise<number> {
  const h = await harness();
  const sandbox = sandboxed ? `  sandbox:\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n` : '';
  await h.write('everything.yaml', nodeServer('everything', [EVERYTHING, 'stdio'], sandbox));
  const controller = await h.start({ HOME: await tempDir('apiary-home-') });
  await ready(h, 'everything');
  const status = (await h.status('everything'))!;
  const readyAt = Date.parse(findCondition(status.conditions, 'Ready')!.lastTransitionTime);
  await controller.stop();
  return readyAt - Date.parse(status.startedAt!);
}

describe.skipIf(!bwrap.available)('what the sandbox costs', () => {
  it('spawn to Ready of server-everything, bare and sandboxed, alternated (median of 5 each)', async () => {
    const bare: number[] = [];
    const sandboxed: number[] = [];
    for (let round = 0; round < 5; round++) {
      bare.push(await everythingSpawnToReadyMs(false));
      sandboxed.push(await everythingSpawnToReadyMs(true));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[2]!;
    const ratio = median(sandboxed) / median(bare);
    process.stderr.write(`sandbox cost: spawn to Ready of server-everything ${median(bare)} ms bare, ${median(sandboxed)} ms sandboxed (x${ratio.toFixed(2)}); bare ${bare.join('/')}, sandboxed ${sandboxed.join('/')}\n`);
    // Generous: the machine's cores are shared; the figure is what the README quotes, the bound only catches a sandbox gone wrong.
    expect(ratio).toBeLessThan(4);
  }, 120_000);
});

describe('where bubblewrap cannot run', () => {
  it('a server that asks for a sandbox is Stuck with SandboxUnavailable and the way out, and never started', async () => {
    const h = await harness();
    await h.write('probe.yaml', nodeServer('probe', [PROBE], '  sandbox:\n    network: none\n'));
    const saved = process.env['APIARY_BWRAP'];
    process.env['APIARY_BWRAP'] = join(tmpdir(), 'apiary-no-such-bwrap');
    try {
      await h.start();
      const status = await h.waitFor('Stuck', async () => {
        const s = await h.status('probe');
        return s?.phase === 'Stuck' ? s : undefined;
      });
      const ready = findCondition(status.conditions, 'Ready');
      expect(ready?.reason).toBe('SandboxUnavailable');
      expect(ready?.message).toMatch(/cannot run \(ENOENT\); install bubblewrap .*enable unprivileged user namespaces.*or remove spec\.sandbox/);
      expect(findCondition(status.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'SandboxUnavailable' });
      expect(findCondition(status.conditions, 'SecretsResolved')?.status).toBe('True');
      expect(status.pid).toBeUndefined();
      await h.settled();
      await expect(readFile(new StateLayout(h.stateDir).logFile('probe'))).rejects.toThrow(/ENOENT/); // never started at all
      expect((await h.status('probe'))?.restartCount).toBe(0);
    } finally {
      if (saved === undefined) delete process.env['APIARY_BWRAP'];
      else process.env['APIARY_BWRAP'] = saved;
    }
  }, 30_000);
});
