/**
 * Sandboxed HTTP servers (spec.sandbox with transport streamable-http):
 * what the schema and the catalog's suggestion now accept, the bubblewrap
 * command line's way in, and real servers under bubblewrap: server-everything
 * reached through apiary's endpoint while its sandbox holds, nothing left
 * listening after a stop, and a later controller that ends, never adopts, a
 * sandboxed server it finds running.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { suggestedSandbox } from '../src/catalog/install-plan.js';
import { formatManifestError } from '../src/manifests/errors.js';
import type { InstallRequest } from '../src/manifests/install.js';
import { parseManifestText } from '../src/manifests/parse.js';
import { upstreamPortKey } from '../src/mcp/ports.js';
import { ProcessRuntime } from '../src/runtime/process-runtime.js';
import type { LaunchSpec, Termination } from '../src/runtime/runtime.js';
import { probeSandbox, sandboxArgs, type SandboxSpec } from '../src/runtime/sandbox.js';
import { StateLayout } from '../src/state/layout.js';
import { systemClock } from '../src/util/clock.js';
import { harness, isAlive, nodeServer, type Harness } from './helpers/controller.js';
import { endpointClient } from './helpers/endpoint-client.js';
import { runCli, spawnUp } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { requireTool } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const require_ = createRequire(import.meta.url);
const EVERYTHING = require_.resolve('@modelcontextprotocol/server-everything/dist/index.js');
/** The node_modules folder server-everything and its dependencies load from. */
const NODE_MODULES = EVERYTHING.slice(0, EVERYTHING.indexOf('/node_modules/') + '/node_modules'.length);

const bwrap = requireTool('/usr/bin/bwrap', "apt install bubblewrap (Debian's package; user namespaces must be allowed); .ci/run installs it", () => probeSandbox(process.env).available);

const errorsOf = (text: string): string[] => parseManifestText(text, '/d/s.yaml', 's.yaml')[0]!.errors.map(formatManifestError);

describe('a sandboxed HTTP server in manifests, the catalog and the command line', () => {
  it('is accepted by the schema, and install --dry-run suggests a sandbox for an HTTP package too', () => {
    expect(errorsOf('apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: s\nspec:\n  command: node\n  transport: streamable-http\n  sandbox:\n    network: none\n')).toEqual([]);
    const request = { name: 'web', command: 'npx', args: ['-y', 'web-mcp'], transport: 'streamable-http' } as unknown as InstallRequest;
    expect(suggestedSandbox(request)).toMatchObject({ sandbox: { network: 'allow', allow: ['registry.npmjs.org:443'] } });
  });

  it('binds its ingress folder in and runs the forwarder first, serving the egress proxy and the way in', () => {
    const sandbox: SandboxSpec = { profile: 'none', read: [], write: [], network: 'none', allow: [] };
    const input = { sandbox, command: 'node', args: ['server.js'], cwd: '/srv/app', home: '/home/u', stateDir: '/state', nodePath: '/opt/node/bin/node' };
    const http = sandboxArgs({ ...input, ingress: { dir: '/state/ingress/web.1a2b3c4d', socketName: 'http.sock', port: 41234 } });
    expect(http).toEqual(expect.arrayContaining(['--bind', '/state/ingress/web.1a2b3c4d', '/run/apiary-ingress', '--ro-bind-try', '/opt/node/bin/node', '/opt/node/bin/node']));
    const command = http.slice(http.indexOf('--') + 1);
    expect(command.slice(0, 2)).toEqual(['/opt/node/bin/node', '-e']);
    expect(JSON.parse(command[3]!)).toEqual({ ingress: { socket: '/run/apiary-ingress/http.sock', port: 41234 } });
    expect(command.slice(4)).toEqual(['node', 'server.js']);
    const both = sandboxArgs({ ...input, sandbox: { ...sandbox, network: 'allow', allow: ['x.org:443'] }, egressSocket: '/state/egress/web/e.sock', ingress: { dir: '/state/ingress/web.1', socketName: 'http.sock', port: 41234 } });
    expect(JSON.parse(both[both.indexOf('--') + 4]!)).toEqual({ egress: { socket: '/run/apiary-egress.sock', port: 3128 }, ingress: { socket: '/run/apiary-ingress/http.sock', port: 41234 } });
  });
});

/**
 * The processes of a sandbox, by its process group (bubblewrap leads it, and
 * the forwarder and the server stay in it): other tests on this machine run
 * server-everything too, so its command line alone would not say whose.
 */
function groupOf(leader: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return fields[0] !== 'Z' && fields[2] === String(leader);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** server-everything itself in the sandbox bubblewrap `leader` leads (node running its index.js, not the forwarder). */
const serverIn = (leader: number): number | undefined => groupOf(leader).find((pid) => argvOf(pid)[1] === EVERYTHING);

function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** Whether something accepts a TCP connection on 127.0.0.1:port of the host. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function upstreamPort(stateDir: string, name: string): Promise<number> {
  return (JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8')) as Record<string, number>)[upstreamPortKey(name)]!;
}

/** server-everything's echo, called through apiary's endpoint for the server. */
async function echo(h: Harness, name: string, message: string): Promise<string> {
  const client = await endpointClient(h, name, 'sandbox-http-test');
  try {
    const result = await client.callTool({ name: 'echo', arguments: { message } });
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

describe.skipIf(!bwrap.available)('a sandboxed HTTP server (bubblewrap)', () => {
  it('server-everything over streamable HTTP under network none: Ready, a tool call through apiary works, the sandbox holds, and a stop leaves nothing listening', async () => {
    const h = await harness();
    const home = await tempDir('apiary-home-');
    await writeFile(join(home, 'canary.txt'), 'home canary');
    await h.write('web.yaml', nodeServer('web', [EVERYTHING, 'streamableHttp'], `  transport: streamable-http\n  sandbox:\n    network: none\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n`));
    await h.start({ HOME: home });
    await h.waitFor('web Ready', async () => findCondition((await h.status('web'))?.conditions, 'Ready')?.status === 'True', 60_000);
    expect(await echo(h, 'web', 'from the sandbox')).toBe('Echo: from the sandbox');
    // The server itself runs in a network namespace of its own, and its root shows nothing of the home.
    const pid = serverIn((await h.status('web'))!.pid!)!;
    expect(pid).toBeDefined();
    expect(readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(existsSync(join(home, 'canary.txt'))).toBe(true);
    expect(existsSync(`/proc/${pid}/root${join(home, 'canary.txt')}`)).toBe(false);
    expect(existsSync(`/proc/${pid}/root${NODE_MODULES}`)).toBe(true);
    const port = await upstreamPort(h.stateDir, 'web');
    expect((await h.status('web'))?.sandbox).toBe(`bubblewrap, profile default, network none, read 1, write 0, port ${port} forwarded in, stops with the controller`);
    expect(await connects(port)).toBe(true);
    const ingress = join(h.stateDir, 'ingress');
    const firstFolder = readdirSync(ingress);
    expect(firstFolder).toEqual([expect.stringMatching(/^web\.[0-9a-f]{8}$/)]);

    // A change restarts it (Recreate): the old process's listener goes first, so the new one has the port, and it answers.
    const firstPid = (await h.status('web'))!.pid!;
    await h.write('web.yaml', nodeServer('web', [EVERYTHING, 'streamableHttp'], `  transport: streamable-http\n  env:\n    - name: ROUND\n      value: "2"\n  sandbox:\n    network: none\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n`));
    await h.waitFor('a new process Ready', async () => {
      const status = await h.status('web');
      return status?.pid !== undefined && status.pid !== firstPid && findCondition(status.conditions, 'Ready')?.status === 'True';
    }, 60_000);
    expect(await echo(h, 'web', 'round 2')).toBe('Echo: round 2');
    const secondPid = (await h.status('web'))!.pid!;
    await h.waitFor('the first sandbox gone', async () => groupOf(firstPid).length === 0);
    // One folder, the new process's: the old one's went with it.
    expect(readdirSync(ingress)).toHaveLength(1);
    expect(readdirSync(ingress)).not.toContain(firstFolder[0]);
    await h.write('web.yaml', nodeServer('web', [EVERYTHING, 'streamableHttp'], '  transport: streamable-http\n  suspend: true\n'));
    await h.waitFor('Suspended', async () => (await h.status('web'))?.phase === 'Suspended');
    await h.waitFor('every process of the sandbox gone', async () => groupOf(secondPid).length === 0);
    expect(await connects(port)).toBe(false);
    expect(readdirSync(ingress)).toEqual([]);
  }, 90_000);
});

describe.skipIf(!bwrap.available)('a sandboxed HTTP server with network allow', () => {
  it('is served both ways by one forwarder: the egress proxy on its loopback, its port through the ingress socket', async () => {
    const h = await harness();
    await h.write('web.yaml', nodeServer('web', [EVERYTHING, 'streamableHttp'], `  transport: streamable-http\n  sandbox:\n    network: allow\n    allow: ["registry.npmjs.org:443"]\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n`));
    await h.start({ HOME: await tempDir('apiary-home-') });
    await h.waitFor('web Ready', async () => findCondition((await h.status('web'))?.conditions, 'Ready')?.status === 'True', 60_000);
    expect(await echo(h, 'web', 'both ways')).toBe('Echo: both ways');
    const forwarder = groupOf((await h.status('web'))!.pid!).find((pid) => argvOf(pid)[1] === '-e')!;
    expect(JSON.parse(argvOf(forwarder)[3]!)).toEqual({ egress: { socket: '/run/apiary-egress.sock', port: 3128 }, ingress: { socket: '/run/apiary-ingress/http.sock', port: await upstreamPort(h.stateDir, 'web') } });
  }, 60_000);
});

describe.skipIf(!bwrap.available)('a sandboxed HTTP server and the controller that started it (the built CLI)', () => {
  it('goes with a controller killed outright; the next one starts it again (never adopted): Ready, answering', async () => {
    const h = await harness();
    const env = { ...h.env, HOME: await tempDir('apiary-home-') };
    await h.write('web.yaml', nodeServer('web', [EVERYTHING, 'streamableHttp'], `  transport: streamable-http\n  sandbox:\n    network: none\n    filesystem:\n      read: [${JSON.stringify(NODE_MODULES)}]\n`));
    const first = spawnUp(['up'], env);
    expect((await runCli(['wait', 'mcpserver/web', '--for=condition=Ready', '--timeout', '60s'], { env })).code, first.output()).toBe(0);
    const recorded = (await h.status('web'))!.pid!;
    expect(serverIn(recorded)).toBeDefined();
    first.child.kill('SIGKILL');
    await first.exited;
    await h.waitFor('the sandbox gone with its controller', async () => groupOf(recorded).length === 0);
    // Its record is left behind, naming a process that is gone.
    expect(existsSync(new StateLayout(h.stateDir).processRecord('web'))).toBe(true);

    const second = spawnUp(['up'], env);
    // Ready as the second controller says (the first one's status says Ready too, of the process that went).
    await h.waitFor('a new process Ready', async () => {
      const status = await h.status('web');
      return status?.pid !== undefined && status.pid !== recorded && findCondition(status.conditions, 'Ready')?.status === 'True';
    }, 60_000);
    const restarted = (await h.status('web'))!.pid!;
    expect(serverIn(restarted)).toBeDefined();
    expect(await echo(h, 'web', 'after a crash')).toBe('Echo: after a crash');
    expect(second.output()).not.toContain('adopted running server');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // What is left of the group was SIGKILLed as the leader went: gone as soon as it is scheduled.
    await h.waitFor('the second sandbox gone', async () => groupOf(restarted).length === 0);
  }, 120_000);
});

describe.skipIf(!bwrap.available)('a later controller and a sandboxed HTTP server it finds running', () => {
  it('ends it rather than adopt it, and can start it again on the same port', async () => {
    const root = await tempDir();
    const layout = new StateLayout(root);
    const cwd = join(root, 'work');
    await mkdir(cwd);
    const port = await freePort();
    const sandbox: SandboxSpec = { profile: 'default', read: [NODE_MODULES], write: [], network: 'none', allow: [] };
    const spec: LaunchSpec = {
      name: 'web',
      command: 'node',
      args: [EVERYTHING, 'streamableHttp'],
      cwd,
      env: { PATH: process.env['PATH'] ?? '', PORT: String(port), HOME: await tempDir('apiary-home-') },
      configHash: 'h',
      generation: 1,
      attachStdio: false,
      sandbox,
      listenPort: port,
    };
    const first = new ProcessRuntime({ layout, clock: systemClock, stdinGraceMs: 100, termGraceMs: 2_000 });
    const exits: Termination[] = [];
    first.onExit((_name, t) => exits.push(t));
    const started = await first.start(spec);
    await waitFor('the first server answering through its way in', () => answers(port), 30_000);

    const second = new ProcessRuntime({ layout, clock: systemClock, stdinGraceMs: 100, termGraceMs: 2_000 });
    const report = await second.adopt();
    expect(report.adopted).toEqual([]);
    expect(report.ended).toEqual([{ name: 'web', pid: started.pid }]);
    await waitFor('the first process gone', () => !isAlive(started.pid) && exits.length === 1);
    await expect(readFile(layout.processRecord('web'))).rejects.toThrow(/ENOENT/);
    // Its listener went with it: the port is free for the second controller's process.
    expect(await connects(port)).toBe(false);
    const again = await second.start(spec);
    try {
      await waitFor('the second server answering', () => answers(port), 30_000);
    } finally {
      await second.stop('web');
    }
    expect(isAlive(again.pid)).toBe(false);
    expect(await connects(port)).toBe(false);
  }, 90_000);
});

/** A loopback port nothing listens on now. */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether an MCP server answers an HTTP request on the port (any HTTP status counts). */
async function answers(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}
