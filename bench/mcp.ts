/**
 * tools/call through apiary's endpoint, against the SDK's direct stdio client
 * on the same server and against supergateway (--stateful) bridging it, with
 * 1 and 4 concurrent clients. The server is examples/hello-server.mjs (the
 * SDK's McpServer with one small tool): the figures are the transports'.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { Agent, request } from 'node:http';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createKeyFile } from '../src/crypto/keys.js';
import { authorizationHeader, readEndpointToken } from '../src/mcp/endpoint-token.js';
import { AGGREGATE_PORT_KEY, freePort } from '../src/mcp/ports.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { fmtMs, now, percentile, type Row } from './stats.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const HELLO = join(ROOT, 'examples', 'hello-server.mjs');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The SDK's Streamable HTTP client passes one AbortSignal to every fetch of a session, and
// undici keeps a listener on it per request until it is collected: over thousands of calls
// Node warns once per call past 1,500, burying the tables. It is the bench client's, not
// apiary's; lift the limit for signals created from here on.
setMaxListeners(0);

export interface Result {
  p50: number;
  p99: number;
  rps: number;
  /** CPU the bench process (the clients) spent per call. */
  clientCpuMs: number;
  /** CPU the watched process and its children (a controller and the servers it runs) spent per call, when one was given. */
  serverCpuMs?: number;
  /** calls/s in each round of inTurns, in order: two clients' rounds side by side compare turns minutes apart no more. */
  roundRps?: number[];
}

/** What measure() needs of a client: the SDK's (v1 or v2), or the lean ones below. */
export interface Caller {
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

async function measure(makeClient: () => Promise<Caller>, clients: number, callsPerClient: number, tool = 'greet'): Promise<Result> {
  const list = await Promise.all(Array.from({ length: clients }, () => makeClient()));
  const call = (c: Caller): Promise<unknown> => c.callTool({ name: tool, arguments: { name: 'bench' } });
  for (const c of list) for (let i = 0; i < 100; i++) await call(c);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    list.map(async (c) => {
      for (let i = 0; i < callsPerClient; i++) {
        const t = now();
        await call(c);
        latencies.push(now() - t);
      }
    }),
  );
  const elapsed = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(list.map((c) => c.close()));
  return summary(latencies, elapsed, (cpu.user + cpu.system) / 1000);
}

function summary(latencies: number[], elapsedMs: number, cpuMs: number, serverCpuMs?: number): Result {
  const result: Result = { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: latencies.length / (elapsedMs / 1000), clientCpuMs: cpuMs / latencies.length };
  if (serverCpuMs !== undefined) result.serverCpuMs = serverCpuMs / latencies.length;
  return result;
}

/**
 * CPU time (ms) a process and its children have used so far, from /proc (Linux): utime + stime of each, children found
 * through each thread's `children` list. Undefined where /proc cannot tell (another OS, a process gone).
 */
export function treeCpuMs(pid: number): number | undefined {
  const ticks = 100; // USER_HZ: 100 on every Linux node runs on.
  let total = 0;
  const seen = new Set<number>();
  const visit = (p: number): boolean => {
    if (seen.has(p)) return true;
    seen.add(p);
    let stat: string;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      return false;
    }
    // Fields after the command (which may hold spaces) start after the last ')': state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += ((Number(fields[11]) + Number(fields[12])) / ticks) * 1000;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return true;
    }
    for (const t of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.split(' ').filter(Boolean)) visit(Number(c));
    }
    return true;
  };
  return visit(pid) ? total : undefined;
}

const greet = (c: Caller): Promise<unknown> => c.callTool({ name: 'greet', arguments: { name: 'bench' } });

/**
 * One client of each kind, measured in turns: `rounds` rounds, each client
 * making its share of `calls` in every round. What the machine's load, or
 * the garbage one client leaves, costs falls on every kind alike, which a
 * row after row run does not give (the rows measured after the SDK's
 * clients paid for their garbage).
 */
export async function inTurns(
  makers: readonly (() => Promise<Caller>)[],
  calls: number,
  rounds = 6,
  call: (c: Caller) => Promise<unknown> = greet,
  /** Per client, a process whose tree's CPU is counted during that client's turns (the controller it calls). */
  watched: readonly (number | undefined)[] = [],
): Promise<Result[]> {
  const clients = await Promise.all(makers.map((make) => make()));
  for (const c of clients) for (let i = 0; i < 100; i++) await call(c);
  const taken = clients.map(() => ({ latencies: [] as number[], elapsed: 0, cpu: 0, serverCpu: 0 as number | undefined, rounds: [] as number[] }));
  // Whole cycles: every client takes every place in a round equally often.
  const cycles = Math.ceil(rounds / clients.length) * clients.length;
  for (let round = 0; round < cycles; round++) {
    // Each round starts with the next client: a turn's place in the round (after which other process's burst, how warm the
    // client's own process is) is worth several percent of calls/s, and must fall on every client alike.
    for (let k = 0; k < clients.length; k++) {
      const i = (round + k) % clients.length;
      const c = clients[i]!;
      const pid = watched[i];
      const server0 = pid === undefined ? undefined : treeCpuMs(pid);
      const cpu0 = process.cpuUsage();
      const t0 = now();
      let made = 0;
      for (let n = 0; n < calls / cycles; n++) {
        const t = now();
        await call(c);
        taken[i]!.latencies.push(now() - t);
        made++;
      }
      taken[i]!.elapsed += now() - t0;
      taken[i]!.rounds.push(made / ((now() - t0) / 1000));
      const cpu = process.cpuUsage(cpu0);
      taken[i]!.cpu += (cpu.user + cpu.system) / 1000;
      const server1 = pid === undefined ? undefined : treeCpuMs(pid);
      const t = taken[i]!;
      t.serverCpu = server0 === undefined || server1 === undefined || t.serverCpu === undefined ? undefined : t.serverCpu + (server1 - server0);
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  return taken.map((t, i) => ({ ...summary(t.latencies, t.elapsed, t.cpu, watched[i] === undefined ? undefined : t.serverCpu), roundRps: t.rounds }));
}

/**
 * A lean Streamable HTTP client: node's own http with one keep-alive
 * connection, JSON-RPC bodies, JSON answers. The SDK's client spends most of a
 * round trip in its own fetch machinery; this one shows what the endpoint
 * itself can carry.
 */
export async function leanClient(url: string, headers: Record<string, string>): Promise<Caller> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const target = new URL(url);
  let session: string | undefined;
  let id = 0;
  const post = (body: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers, ...(session ? { 'Mcp-Session-Id': session } : {}) } },
        (res) => {
          session ??= res.headers['mcp-session-id'] as string | undefined;
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => (res.statusCode === 202 ? resolve(undefined) : resolve((JSON.parse(text) as { result?: unknown }).result)));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  await post({ jsonrpc: '2.0', id: id++, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench-lean', version: '1' } } });
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return {
    callTool: ((params: { name: string; arguments?: Record<string, unknown> }) => post({ jsonrpc: '2.0', id: id++, method: 'tools/call', params })) as Caller['callTool'],
    close: async () => agent.destroy(),
  };
}

const MODERN = '2026-07-28';

/**
 * A lean client of the 2026-07-28 revision, by hand: one keep-alive
 * connection, one POST per call with the `_meta` envelope and the
 * `MCP-Protocol-Version`/`Mcp-Method`/`Mcp-Name` headers, no handshake and no
 * session. An answer may come as JSON or as an SSE stream ending with it.
 */
export async function leanModernClient(url: string, headers: Record<string, string>): Promise<Caller> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const target = new URL(url);
  const envelope = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
  let id = 0;
  const call = (params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/call', 'Mcp-Name': params.name, ...headers },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            const json = String(res.headers['content-type']).startsWith('text/event-stream') ? (text.split('\n').filter((l) => l.startsWith('data:')).pop() ?? '').slice(5) : text;
            const answer = JSON.parse(json) as { result?: unknown; error?: { message: string } };
            if (answer.error !== undefined) reject(new Error(`bench: tools/call failed: ${answer.error.message}`));
            else resolve(answer.result);
          });
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { ...params, _meta: envelope } }));
    });
  return { callTool: call, close: async () => agent.destroy() };
}

/** The SDK v2 client over Streamable HTTP, pinned to 2026-07-28 or speaking 2025 ('legacy', its default). */
export async function v2Client(url: string, headers: Record<string, string>, era: 'modern' | 'legacy'): Promise<Caller> {
  const client = new ModernClient({ name: 'bench', version: '1.0.0' }, { versionNegotiation: { mode: era === 'modern' ? { pin: MODERN } : 'legacy' } });
  await client.connect(new ModernTransport(new URL(url), { requestInit: { headers } }));
  if (era === 'modern' && client.getNegotiatedProtocolVersion() !== MODERN) throw new Error(`bench: the pinned client negotiated ${client.getNegotiatedProtocolVersion()}`);
  return client;
}

async function httpClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

async function stdioClient(): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [HELLO], stderr: 'ignore' }));
  return client;
}

/** `extra`: more manifests for the directory (a Gateway, policies), as YAML. */
export async function withApiary<T>(fn: (url: string, headers: Record<string, string>, aggregateUrl: string, stateDir: string, pid: number | undefined) => Promise<T>, extra = ''): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-mcp-'));
  const dir = join(root, 'manifests');
  await mkdir(dir);
  await createKeyFile(join(root, 'key'));
  if (extra !== '') await writeFile(join(dir, 'access.yaml'), extra);
  await writeFile(join(dir, 'hello.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: hello }\nspec:\n  command: ${JSON.stringify(process.execPath)}\n  args: [${JSON.stringify(HELLO)}]\n`);
  const stateDir = join(root, 'state');
  const up = spawn(join(ROOT, 'bin', 'apiary'), ['up', '--dir', dir, '--state-dir', stateDir], { env: { ...process.env, APIARY_KEY_FILE: join(root, 'key') }, stdio: 'ignore' });
  try {
    const store = new StatusStore(new StateLayout(stateDir));
    let url: string | undefined;
    for (let i = 0; i < 300 && url === undefined; i++) {
      const s = (await store.read('MCPServer', 'hello'))?.status as { url?: string; conditions?: { type: string; status: string }[] } | undefined;
      if (s?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) url = s.url;
      else await sleep(100);
    }
    if (url === undefined) throw new Error('bench: apiary never became Ready');
    // Measured as users run it: with the endpoint's bearer token (authentication is on by default).
    const token = await readEndpointToken(new StateLayout(stateDir));
    const aggregatePort = (JSON.parse(await readFile(join(stateDir, 'ports.json'), 'utf8')) as Record<string, number>)[AGGREGATE_PORT_KEY];
    return await fn(url, token === undefined ? {} : authorizationHeader(token), `http://127.0.0.1:${aggregatePort}/mcp`, stateDir, up.pid);
  } finally {
    await stop(up);
    await rm(root, { recursive: true, force: true });
  }
}

async function withSupergateway<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const port = await freePort();
  const gateway = spawn(
    process.execPath,
    [join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js'), '--stdio', `${process.execPath} ${HELLO}`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'],
    { stdio: 'ignore' },
  );
  try {
    const url = `http://127.0.0.1:${port}/mcp`;
    for (let i = 0; i < 100; i++) {
      try {
        await (await httpClient(url)).close();
        break;
      } catch {
        await sleep(100);
      }
    }
    return await fn(url);
  } finally {
    await stop(gateway);
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function row(measure: string, r: Result, base?: Result, target?: string): Row {
  const added = base ? `; +${fmtMs(r.p50 - base.p50)} p50 over direct stdio` : '';
  return { measure, result: `p50 ${fmtMs(r.p50)} / p99 ${fmtMs(r.p99)}, ${r.rps.toFixed(0)} calls/s`, ...(target ? { target } : {}), note: `${added.slice(2)}` };
}

/**
 * tools/call at a stdio server's endpoint with the SDK v2 client in each era
 * and with a lean client of each era, one client each, in one apiary,
 * measured in turns.
 */
async function eraRows(direct: Result): Promise<Row[]> {
  const calls = 3000;
  const [modern, legacy, lean, leanLegacy] = (await withApiary((url, headers) =>
    inTurns([() => v2Client(url, headers, 'modern'), () => v2Client(url, headers, 'legacy'), () => leanModernClient(url, headers), () => leanClient(url, headers)], calls),
  )) as [Result, Result, Result, Result];
  const viaModern = row('tools/call, 1 client: through apiary, SDK v2 client pinned to 2026-07-28', modern, direct, 'no slower than 2025-11-25');
  viaModern.note = `${viaModern.note}; ${share(modern, direct)} of direct stdio's calls/s; ${(modern.rps / legacy.rps).toFixed(2)}x the calls/s of the same client in 2025-11-25, p50 ${(modern.p50 / legacy.p50).toFixed(2)}x (client CPU ${fmtMs(modern.clientCpuMs)} per call, ${fmtMs(legacy.clientCpuMs)} in 2025-11-25)`;
  const viaLegacy = row('tools/call, 1 client: through apiary, SDK v2 client in 2025-11-25 (legacy)', legacy, direct);
  viaLegacy.note = `${viaLegacy.note}; ${share(legacy, direct)} of direct stdio's calls/s`;
  const viaLean = row('tools/call, 1 client: through apiary, lean 2026-07-28 client (node:http keep-alive, envelope + headers)', lean, direct, 'added p50 <= 0.3 ms');
  viaLean.note = `${viaLean.note}; ${share(lean, direct)} of direct stdio's calls/s; ${(lean.rps / leanLegacy.rps).toFixed(2)}x the calls/s of the lean 2025 client, p50 ${(lean.p50 / leanLegacy.p50).toFixed(2)}x (client CPU ${fmtMs(lean.clientCpuMs)} per call)`;
  const viaLeanLegacy = row('tools/call, 1 client: through apiary, lean 2025 client (node:http keep-alive, one session)', leanLegacy, direct);
  viaLeanLegacy.note = `${viaLeanLegacy.note}; ${share(leanLegacy, direct)} of direct stdio's calls/s (client CPU ${fmtMs(leanLegacy.clientCpuMs)} per call)`;
  return [viaModern, viaLegacy, viaLean, viaLeanLegacy];
}

/** `npm run bench -- mcp-eras`: only the rows that compare the revisions, against direct stdio in the same run. */
export async function benchMcpEras(): Promise<Row[]> {
  const direct = await measure(stdioClient, 1, 3000);
  return [row('tools/call, 1 client: direct stdio (SDK)', direct), ...(await eraRows(direct))];
}

export async function benchMcp(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const clients of [1, 4]) {
    const calls = clients === 1 ? 3000 : 1500;
    const direct = await measure(stdioClient, clients, calls);
    const [apiary, aggregate, lean] = await withApiary(async (url, headers, aggregateUrl) => [
      await measure(() => httpClient(url, headers), clients, calls),
      await measure(() => httpClient(aggregateUrl, headers), clients, calls, 'hello__greet'),
      await measure(() => leanClient(url, headers), clients, calls),
    ]);
    const supergateway = await withSupergateway((url) => measure(() => httpClient(url), clients, calls));
    rows.push(row(`tools/call, ${clients} client(s): direct stdio (SDK)`, direct));
    const viaApiary = row(`tools/call, ${clients} client(s): through apiary`, apiary, direct, clients === 1 ? 'added p50 <= 1 ms; >= 1,000 calls/s' : undefined);
    viaApiary.note = `${viaApiary.note}; ${share(apiary, direct)} of direct stdio's calls/s; the SDK's HTTP client itself spends ${fmtMs(apiary.clientCpuMs)} of CPU per call (its stdio client ${fmtMs(direct.clientCpuMs)})`;
    rows.push(viaApiary);
    const viaLean = row(`tools/call, ${clients} client(s): through apiary, lean HTTP client (node:http keep-alive)`, lean, direct, clients === 1 ? '>= 50% of direct stdio' : undefined);
    viaLean.note = `${viaLean.note}; ${share(lean, direct)} of direct stdio's calls/s (client CPU ${fmtMs(lean.clientCpuMs)} per call)`;
    rows.push(viaLean);
    const viaAggregate = row(`tools/call, ${clients} client(s): through apiary's aggregate endpoint`, aggregate, direct);
    const delta = aggregate.p50 - apiary.p50;
    viaAggregate.note = `${viaAggregate.note}; ${delta >= 0 ? '+' : '-'}${fmtMs(Math.abs(delta))} p50 against the server's own endpoint`;
    rows.push(viaAggregate);
    const sg = row(`tools/call, ${clients} client(s): supergateway --stateful`, supergateway, direct);
    sg.note = `${sg.note}; apiary does ${(apiary.rps / supergateway.rps).toFixed(1)}x its calls/s`;
    rows.push(sg);
    if (clients === 1) rows.push(...(await eraRows(direct)));
  }
  return rows;
}

function share(r: Result, base: Result): string {
  return `${Math.round((100 * r.rps) / base.rps)}%`;
}

/**
 * The median over rounds of one controller's calls/s over another's in the same round (their turns seconds apart): what a
 * burst of other work costs one turn falls on one round's ratio only, where it moves the totals' ratio by its whole size.
 */
export function roundShare(on: Result, off: Result): string {
  const a = on.roundRps ?? [];
  const b = off.roundRps ?? [];
  const ratios = a.map((x, i) => x / b[i]!).filter((r) => Number.isFinite(r)).sort((x, y) => x - y);
  if (ratios.length === 0) return 'n/a';
  const mid = ratios.length / 2;
  const median = ratios.length % 2 === 1 ? ratios[Math.floor(mid)]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
  return `${(100 * (median - 1)).toFixed(1)}%`;
}
