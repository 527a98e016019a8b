/**
 * One client flooding a server (64 calls always in flight, from a process of
 * its own) while another calls the same server. The server spends 5 ms of CPU
 * on each call and works through its stdin in order, as most stdio servers
 * do: what a call waits for is the requests queued at the server ahead of it.
 *
 * - through apiary's endpoint for the server: the probe pings, the flooder
 *   lists tools;
 * - through an aggregate endpoint, side by side with mcp-hub's unified
 *   endpoint in the same run: the probe and the flooder are two clients of
 *   the aggregate, and both make a tools/call of the server's `noop` (an
 *   aggregate answers a ping itself, and mcp-hub answers tools/list from a
 *   cache, so neither would reach the server).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ROOT, sleep, TINY_SERVER, World } from '../chaos/world.js';
import { AGGREGATE_PORT_KEY, freePort } from '../src/mcp/ports.js';
import { fmtMs, percentile, ratioNote, type Row } from './stats.js';

const FLOODER = fileURLToPath(new URL('./flooder.js', import.meta.url));
const IN_FLIGHT = 64;
const FLOOD_MS = 4_000;
/** Longer through the aggregates: a call beside the flood may take a third of a second there, and the p99 wants more than 8 of them. */
const AGGREGATE_FLOOD_MS = 8_000;
const BUSY_MS = '5';
/** The server's flags, the same for apiary and mcp-hub: 5 ms of CPU per listing and per call. */
const SERVER_FLAGS = ['--busy-list', BUSY_MS, '--busy-call', BUSY_MS];
/** The tool as both aggregates name it: server, two underscores, tool. */
const TOOL = 'busy__noop';

interface Beside {
  idle: number[];
  during: number[];
  /** What the flooder printed: how many calls it made. */
  floodCalls: string;
}

/**
 * Times `call` 50 times on an idle server, then again while a flooder process
 * (`flooderArgs` after URL N MS) keeps 64 calls in flight, from 1 s into the
 * flood (FLOOD_MS, or `floodMs`) until just before its end.
 */
async function besideFlood(call: () => Promise<unknown>, url: string, flooderArgs: readonly string[], token = '', floodMs = FLOOD_MS): Promise<Beside> {
  const timed = async (until: number, max: number): Promise<number[]> => {
    const times: number[] = [];
    while (times.length < max && Date.now() < until) {
      const started = performance.now();
      await call();
      if (Date.now() < until) times.push(performance.now() - started);
      await sleep(10);
    }
    return times;
  };
  const idle = await timed(Infinity, 50);
  const flooder = spawn(process.execPath, [FLOODER, url, String(IN_FLIGHT), String(floodMs), ...flooderArgs], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, APIARY_ENDPOINT_TOKEN: token },
  });
  let out = '';
  flooder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise((resolve) => flooder.on('exit', resolve));
  const floodEnds = Date.now() + floodMs;
  await sleep(1_000);
  const during = await timed(floodEnds - 100, 1_000);
  await done;
  return { idle, during, floodCalls: out.trim() || 'no' };
}

const p50p99 = (samples: readonly number[]): string => `p50 ${fmtMs(percentile(samples, 50))} / p99 ${fmtMs(percentile(samples, 99))}`;

/** The aggregate endpoint's URL, from the port apiary recorded for it. */
async function aggregateUrl(world: World): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const ports = await readFile(join(world.stateDir, 'ports.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => ({}) as Record<string, unknown>);
    const port = ports[AGGREGATE_PORT_KEY];
    if (typeof port === 'number') return `http://127.0.0.1:${port}/mcp`;
    await sleep(25);
  }
  throw new Error('bench: the aggregate never got a port');
}

/** Connects `client` and waits until the aggregate lists the server's tool (it lists members as they come up). */
async function untilTool(client: Client, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if ((await client.listTools()).tools.some((t) => t.name === TOOL)) return;
    await sleep(25);
  }
  throw new Error(`bench: ${what} never listed ${TOOL}`);
}

/** The same measure through apiary's aggregate endpoint: the probe and the flooder are two clients of it. */
async function apiaryAggregate(world: World, headers: Record<string, string>): Promise<Beside> {
  const url = await aggregateUrl(world);
  const probe = new Client({ name: 'probe', version: '1' });
  await probe.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  try {
    await untilTool(probe, "apiary's aggregate");
    return await besideFlood(() => probe.callTool({ name: TOOL, arguments: {} }), url, ['--call', TOOL], headers['Authorization']?.slice('Bearer '.length), AGGREGATE_FLOOD_MS);
  } finally {
    await probe.close();
  }
}

/** Waits until mcp-hub says it is ready with the server connected (its /api/health). */
async function hubReady(port: number, gone: () => boolean): Promise<void> {
  for (let i = 0; i < 800 && !gone(); i++) {
    const health = await fetch(`http://localhost:${port}/api/health`).then((r) => r.json() as Promise<{ state?: string; servers?: { status?: string }[] }>, () => undefined);
    if (health?.state === 'ready' && health.servers?.[0]?.status === 'connected') return;
    await sleep(25);
  }
  throw new Error(gone() ? 'bench: mcp-hub exited before it was ready' : 'bench: mcp-hub was not ready with the server connected within 20 s');
}

/** The same measure through mcp-hub's unified endpoint (HTTP+SSE at /mcp), one mcp-hub process with the same server. */
async function mcpHubAggregate(): Promise<Beside> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-fairness-'));
  const config = join(root, 'mcp-servers.json');
  await writeFile(config, JSON.stringify({ mcpServers: { busy: { command: process.execPath, args: [TINY_SERVER, ...SERVER_FLAGS] } } }));
  const port = await freePort();
  // HOME in the temp folder: mcp-hub keeps its workspace cache and logs under it.
  const hub = spawn(process.execPath, [join(ROOT, 'node_modules', 'mcp-hub', 'dist', 'cli.js'), '--port', String(port), '--config', config], { stdio: 'ignore', env: { ...process.env, HOME: root } });
  const exited = new Promise((resolve) => hub.on('exit', resolve));
  const url = `http://localhost:${port}/mcp`;
  const probe = new Client({ name: 'probe', version: '1' });
  try {
    await hubReady(port, () => hub.exitCode !== null);
    await probe.connect(new SSEClientTransport(new URL(url)));
    await untilTool(probe, 'mcp-hub');
    return await besideFlood(() => probe.callTool({ name: TOOL, arguments: {} }), url, ['--call', TOOL, '--sse'], '', AGGREGATE_FLOOD_MS);
  } finally {
    await probe.close();
    hub.kill('SIGTERM');
    await exited;
    await rm(root, { recursive: true, force: true });
  }
}

export async function benchFairness(): Promise<Row[]> {
  const world = await World.create();
  let direct: Beside;
  let aggregate: Beside;
  try {
    await world.writeServer({ name: 'busy', rev: 1, flags: SERVER_FLAGS });
    await world.startController();
    let url: string | undefined;
    for (let i = 0; i < 400 && (url = world.status('busy')?.url) === undefined; i++) await sleep(25);
    if (url === undefined) throw new Error('bench: the server never got a URL');
    const probe = new Client({ name: 'probe', version: '1' });
    const headers = await world.endpointHeaders();
    await probe.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    direct = await besideFlood(() => probe.ping(), url, [], headers['Authorization']?.slice('Bearer '.length));
    await probe.close();
    aggregate = await apiaryAggregate(world, headers);
  } finally {
    await world.dispose();
  }
  let hub: Beside | undefined;
  let hubError = '';
  try {
    hub = await mcpHubAggregate();
  } catch (err) {
    hubError = (err as Error).message;
  }
  const peer = (pick: (b: Beside) => number[]): string =>
    hub === undefined ? `mcp-hub: ${hubError}` : `mcp-hub's /mcp ${p50p99(pick(hub))}; ${ratioNote(percentile(pick(hub), 50), percentile(pick(aggregate), 50))}`;
  return [
    { measure: 'ping, server idle', result: p50p99(direct.idle) },
    {
      measure: `ping beside one client with ${IN_FLIGHT} calls in flight`,
      result: p50p99(direct.during),
      note: `${direct.during.length} pings; the flooder made ${direct.floodCalls} calls (server: 5 ms each); it may have 8 at the server at once`,
    },
    { measure: 'tools/call through the aggregate endpoint, server idle', result: `apiary ${p50p99(aggregate.idle)}`, note: peer((b) => b.idle) },
    {
      measure: `tools/call through the aggregate endpoint beside another aggregate client with ${IN_FLIGHT} calls in flight`,
      result: `apiary ${p50p99(aggregate.during)}`,
      note:
        `${AGGREGATE_FLOOD_MS / 1_000} s flood: ${aggregate.during.length} calls, the flooder made ${aggregate.floodCalls} (server: 5 ms each, tools/call both); ` +
        `mcp-hub: ${hub === undefined ? 'n/a' : `${hub.during.length} calls, its flooder made ${hub.floodCalls}`}; ${peer((b) => b.during)}`,
    },
  ];
}
