/**
 * Rollouts (step 8), side by side with mcp-hub --watch in one run:
 *
 * - manifest edit -> new process spawned, for two servers (one that exits
 *   when its stdin closes, one that leaves only on SIGTERM, as servers that
 *   hold a timer, a pool or a socket do), each edit made while the previous
 *   process is still booting (150 ms after it spawned) and once it is idle
 *   (1.5 s after). "Spawned" is the moment the process itself writes a
 *   timestamp, before it execs node, for both tools.
 * - calls failed while the manifest is edited 20 times under load from three
 *   SDK clients: RollingUpdate (the default) and Recreate, in the same run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { findCondition, type MCPServerStatus } from '../src/api/status.js';
import { createKeyFile } from '../src/crypto/keys.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { epochMs, newStamp, sleep, until } from './stamps.js';
import { fmtMs, percentile, ratioNote, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const HELLO = join(ROOT, 'examples', 'hello-server.mjs');
const STAMP = 'date +%s%N > "$STAMP_DIR/$$.stamp"; exec node "$SERVER"';

type ServerKind = 'exits on stdin EOF' | 'exits on SIGTERM only';
type When = 'booting' | 'idle';
const GAP_MS: Record<When, number> = { booting: 150, idle: 1_500 };



interface Workspace {
  root: string;
  dir: string;
  stateDir: string;
  stamps: string;
  keyFile: string;
  /** The server script for each kind: hello-server, or hello-server kept alive past stdin EOF. */
  script: Record<ServerKind, string>;
}

async function workspace(): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-rollout-'));
  const dir = join(root, 'manifests');
  const stamps = join(root, 'stamps');
  await mkdir(dir, { recursive: true });
  await mkdir(stamps, { recursive: true });
  const keyFile = join(root, 'key');
  await createKeyFile(keyFile);
  const hold = join(root, 'hold.mjs');
  // A real MCP server that, like many, holds a timer: stdin closing does not end it, SIGTERM does.
  await writeFile(hold, `import ${JSON.stringify(pathToFileURL(HELLO).href)};\nsetInterval(() => {}, 1 << 30);\n`);
  return { root, dir, stateDir: join(root, 'state'), stamps, keyFile, script: { 'exits on stdin EOF': HELLO, 'exits on SIGTERM only': hold } };
}

function manifest(ws: Workspace, kind: ServerKind, edit: number, strategy = ''): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: roll
spec:
  command: /bin/sh
  args: ["-c", ${JSON.stringify(STAMP)}]
  env:
    - name: STAMP_DIR
      value: ${JSON.stringify(ws.stamps)}
    - name: SERVER
      value: ${JSON.stringify(ws.script[kind])}
    - name: EDIT
      value: "${edit}"
${strategy}`;
}

function startUp(ws: Workspace): () => Promise<void> {
  const child = spawn(BIN, ['up', '--dir', ws.dir, '--state-dir', ws.stateDir, '--no-ui'], { env: { ...process.env, APIARY_KEY_FILE: ws.keyFile }, stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

async function editToSpawnApiary(kind: ServerKind, when: When, edits: number): Promise<number[]> {
  const ws = await workspace();
  const file = join(ws.dir, 'roll.yaml');
  await writeFile(file, manifest(ws, kind, 0));
  const stop = startUp(ws);
  const seen = new Set<string>();
  const samples: number[] = [];
  try {
    let last = await until('first spawn', () => newStamp(ws.stamps, seen));
    await sleep(1_500);
    for (let i = 1; i <= edits; i++) {
      await sleep(Math.max(0, last + GAP_MS[when] - epochMs()));
      const t0 = epochMs();
      await writeFile(file, manifest(ws, kind, i));
      last = await until(`spawn after edit ${i}`, () => newStamp(ws.stamps, seen));
      samples.push(last - t0);
    }
  } finally {
    await stop();
    await rm(ws.root, { recursive: true, force: true });
  }
  return samples;
}

async function editToSpawnMcpHub(kind: ServerKind, when: When, edits: number): Promise<number[]> {
  const ws = await workspace();
  const config = join(ws.root, 'mcp-servers.json');
  const write = (edit: number): Promise<void> =>
    writeFile(config, JSON.stringify({ mcpServers: { roll: { command: '/bin/sh', args: ['-c', STAMP], env: { STAMP_DIR: ws.stamps, SERVER: ws.script[kind], EDIT: String(edit) } } } }));
  await write(0);
  const port = 39000 + Math.floor(Math.random() * 1000);
  const hub = spawn(process.execPath, [join(ROOT, 'node_modules', 'mcp-hub', 'dist', 'cli.js'), '--port', String(port), '--config', config, '--watch'], {
    stdio: 'ignore',
    env: { ...process.env, HOME: ws.root },
  });
  const seen = new Set<string>();
  const samples: number[] = [];
  try {
    let last = await until('mcp-hub first spawn', () => newStamp(ws.stamps, seen));
    await sleep(1_500);
    for (let i = 1; i <= edits; i++) {
      await sleep(Math.max(0, last + GAP_MS[when] - epochMs()));
      const t0 = epochMs();
      await write(i);
      last = await until(`mcp-hub spawn after edit ${i}`, () => newStamp(ws.stamps, seen), 15_000);
      samples.push(last - t0);
    }
  } finally {
    hub.kill('SIGTERM');
    await new Promise((r) => hub.on('exit', r));
    await rm(ws.root, { recursive: true, force: true });
  }
  return samples;
}

/** Three SDK clients calling `greet` without pause while the manifest is edited `rollouts` times; returns calls and failures. */
async function callsDuringRollouts(strategy: 'RollingUpdate' | 'Recreate', rollouts: number): Promise<{ ok: number; failed: number; ms: number }> {
  const ws = await workspace();
  const file = join(ws.dir, 'roll.yaml');
  const extra = `  strategy:\n    type: ${strategy}\n`;
  await writeFile(file, manifest(ws, 'exits on stdin EOF', 0, extra));
  const stop = startUp(ws);
  const store = new StatusStore(new StateLayout(ws.stateDir));
  const rolled = (generation: number): Promise<MCPServerStatus> =>
    until(
      `generation ${generation} serving`,
      async () => {
        const record = await store.read('MCPServer', 'roll');
        const status = record?.status as MCPServerStatus | undefined;
        const ready = findCondition(status?.conditions, 'Ready');
        return record?.metadata.generation === generation && ready?.status === 'True' && ready.observedGeneration === generation ? status : undefined;
      },
      30_000,
      10,
    );
  try {
    const first = await rolled(1);
    const token = (await readEndpointToken(new StateLayout(ws.stateDir))) ?? '';
    const clients = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const client = new Client({ name: `bench-${i}`, version: '1' });
        await client.connect(new StreamableHTTPClientTransport(new URL(first.url!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
        return client;
      }),
    );
    let running = true;
    const counts = { ok: 0, failed: 0 };
    const load = clients.map(async (client) => {
      while (running) {
        try {
          await client.callTool({ name: 'greet', arguments: { name: 'bench' } });
          counts.ok++;
        } catch {
          counts.failed++;
          await sleep(5);
        }
      }
    });
    const t0 = epochMs();
    for (let i = 1; i <= rollouts; i++) {
      await writeFile(file, manifest(ws, 'exits on stdin EOF', i, extra));
      await rolled(i + 1);
    }
    const ms = epochMs() - t0;
    running = false;
    await Promise.all(load);
    await Promise.all(clients.map((c) => c.close()));
    return { ...counts, ms };
  } finally {
    await stop();
    await rm(ws.root, { recursive: true, force: true });
  }
}

export async function benchRollout(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const kind of ['exits on stdin EOF', 'exits on SIGTERM only'] as const) {
    for (const when of ['booting', 'idle'] as const) {
      const apiary = await editToSpawnApiary(kind, when, 20);
      let hub: number[] | undefined;
      let hubError: string | undefined;
      try {
        hub = await editToSpawnMcpHub(kind, when, 15);
      } catch (err) {
        hubError = (err as Error).message;
      }
      const a50 = percentile(apiary, 50);
      const ratio = hub === undefined ? `mcp-hub: ${hubError}` : ratioNote(percentile(hub, 50), a50);
      rows.push({
        measure: `edit -> new process spawned: server ${kind}, edit while it is ${when}`,
        result: `apiary p50 ${fmtMs(a50)} / p99 ${fmtMs(percentile(apiary, 99))}`,
        target: 'p50 <= 50 ms',
        note: `${apiary.length} edits; mcp-hub --watch ${hub ? `p50 ${fmtMs(percentile(hub, 50))} / p99 ${fmtMs(percentile(hub, 99))} (${hub.length} edits)` : 'n/a'}; ${ratio}`,
      });
    }
  }
  for (const strategy of ['RollingUpdate', 'Recreate'] as const) {
    const r = await callsDuringRollouts(strategy, 20);
    rows.push({
      measure: `calls failed during 20 rollouts under load: ${strategy}${strategy === 'RollingUpdate' ? ' (default)' : ''}`,
      result: `${r.failed} of ${r.ok + r.failed}`,
      ...(strategy === 'RollingUpdate' ? { target: '0' } : {}),
      note: `3 SDK clients calling greet without pause; 20 edits, each waited for until the new generation serves (${fmtMs(r.ms)} in all)`,
    });
  }
  return rows;
}
