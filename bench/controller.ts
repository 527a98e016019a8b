/**
 * The controller's figures (issue: step 3), measured against real processes.
 * Edit -> new process, against mcp-hub, is in rollout.ts.
 *
 * "Spawned" is measured by the server itself: its command is a tiny sh
 * wrapper that writes a nanosecond timestamp the moment it starts, then execs
 * a real stdio MCP server (examples/hello-server.mjs). Both apiary and
 * mcp-hub run that same command, so node's boot time is not in either figure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller } from '../src/controller/controller.js';
import { silentLogger } from '../src/util/logger.js';
import { KeyStore } from '../src/crypto/keys.js';
import { loadDirectory } from '../src/manifests/loader.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { epochMs, newStamp, sleep, until } from './stamps.js';
import { fmtMs, now, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const HELLO = join(ROOT, 'examples', 'hello-server.mjs');
/** The server's command: a sh wrapper that stamps its start, then the bundled hello MCP server. */
export const STAMP = 'date +%s%N > "$STAMP_DIR/$$.stamp"; exec node "$HELLO"';
export const HELLO_SERVER = HELLO;




export function serverManifest(name: string, stampDir: string, extra = '', edit = 0): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: ${name}
spec:
  command: /bin/sh
  args: ["-c", ${JSON.stringify(STAMP)}]
  env:
    - name: STAMP_DIR
      value: ${JSON.stringify(stampDir)}
    - name: HELLO
      value: ${JSON.stringify(HELLO)}
    - name: EDIT
      value: "${edit}"
${extra}`;
}

interface Up {
  child: ChildProcess;
  stop(): Promise<void>;
}

function startUp(dir: string, stateDir: string, keyFile: string): Up {
  const child = spawn(BIN, ['up', '--dir', dir, '--state-dir', stateDir], {
    env: { ...process.env, APIARY_KEY_FILE: keyFile },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function workspace(): Promise<{ root: string; dir: string; stateDir: string; stamps: string; keyFile: string }> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-'));
  const dir = join(root, 'manifests');
  const stamps = join(root, 'stamps');
  await mkdir(dir, { recursive: true });
  await mkdir(stamps, { recursive: true });
  const keyFile = join(root, 'key');
  const { createKeyFile } = await import('../src/crypto/keys.js');
  await createKeyFile(keyFile);
  return { root, dir, stateDir: join(root, 'state'), stamps, keyFile };
}

async function statusOf(stateDir: string, name: string): Promise<{ phase: string; pid?: number } | undefined> {
  const record = await new StatusStore(new StateLayout(stateDir)).read('MCPServer', name);
  return record?.status as { phase: string; pid?: number } | undefined;
}

async function secretRestoredToSpawn(rounds: number): Promise<number[]> {
  const ws = await workspace();
  const secretFile = join(ws.dir, 'secret.yaml');
  const secret = 'apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: token }\nstringData: { value: bench-not-secret }\n';
  await writeFile(secretFile, secret);
  await writeFile(join(ws.dir, 'stuck.yaml'), serverManifest('stuck', ws.stamps, '    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: token, key: value }\n'));
  const up = startUp(ws.dir, ws.stateDir, ws.keyFile);
  const seen = new Set<string>();
  const samples: number[] = [];
  try {
    await until('first spawn', () => newStamp(ws.stamps, seen));
    for (let i = 0; i < rounds; i++) {
      const { pid } = (await until('running', async () => {
        const s = await statusOf(ws.stateDir, 'stuck');
        return s?.phase === 'Running' && s.pid ? s : undefined;
      }))!;
      await rm(secretFile);
      await sleep(100);
      process.kill(pid!, 'SIGKILL');
      await until('stuck', async () => ((await statusOf(ws.stateDir, 'stuck'))?.phase === 'Stuck' ? true : undefined));
      await sleep(50);
      const t0 = epochMs();
      await writeFile(secretFile, secret);
      samples.push((await until('spawn after restore', () => newStamp(ws.stamps, seen))) - t0);
    }
  } finally {
    await up.stop();
    await rm(ws.root, { recursive: true, force: true });
  }
  return samples;
}

async function writeManyResources(dir: string, stamps: string, count: number, suspended: boolean): Promise<void> {
  const half = count / 2;
  for (let i = 0; i < half; i++) {
    await writeFile(join(dir, `secret-${i}.yaml`), `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: s-${i} }\nstringData: { k: v${i} }\n`);
    await writeFile(
      join(dir, `server-${i}.yaml`),
      serverManifest(`srv-${i}`, stamps, `    - name: K\n      valueFrom:\n        secretKeyRef: { name: s-${i}, key: k }\n${suspended ? '  suspend: true\n' : ''}`),
    );
  }
}

async function thousand(): Promise<Row[]> {
  const ws = await workspace();
  await writeManyResources(ws.dir, ws.stamps, 1000, true);
  const loads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = now();
    const result = await loadDirectory(ws.dir);
    loads.push(now() - t);
    if (result.resources.length !== 1000 || result.errors.length > 0) throw new Error('bench: 1000-manifest load went wrong');
  }
  const tCli = now();
  const validate = spawn(BIN, ['validate', ws.dir], { stdio: 'ignore' });
  await new Promise((r) => validate.on('exit', r));
  const cliMs = now() - tCli;

  const controller = new Controller({ dir: ws.dir, stateDir: ws.stateDir, keys: new KeyStore({ env: { APIARY_KEY_FILE: ws.keyFile } }), logger: silentLogger, resyncMs: 3_600_000 });
  const tStart = now();
  await controller.start();
  await controller.idle();
  const startMs = now() - tStart;
  const resyncs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = now();
    await controller.resync();
    await controller.idle();
    resyncs.push(now() - t);
  }
  await controller.stop();

  const up = startUp(ws.dir, ws.stateDir, ws.keyFile);
  await until('1000 statuses', async () => ((await new StatusStore(new StateLayout(ws.stateDir)).list()).length >= 1000 ? true : undefined), 60_000, 100);
  await sleep(2000);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${up.child.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  await up.stop();
  await rm(ws.root, { recursive: true, force: true });
  return [
    { measure: '1,000 manifests: cold load + validate (in process)', result: `${fmtMs(percentile(loads, 50))} p50`, target: '<= 1 s', note: `5 runs; \`apiary validate\` as a process: ${fmtMs(cliMs)} wall` },
    { measure: '1,000 resources: controller start to idle', result: fmtMs(startMs), note: '500 suspended servers + 500 secrets' },
    { measure: '1,000 resources: no-op resync', result: `${fmtMs(percentile(resyncs, 50))} p50, ${fmtMs(Math.max(...resyncs))} max`, target: '<= 100 ms', note: '10 runs: stat every file, reconcile every key, write nothing' },
    { measure: 'controller RSS with 1,000 resources', result: `${rss.toFixed(0)} MB`, target: '<= 150 MB', note: '`apiary up`, servers suspended' },
  ];
}

export async function hundredServers(light: boolean): Promise<Row> {
  const ws = await workspace();
  const light_ = `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: NAME }\nspec:\n  command: sleep\n  args: ["3600"]\n`;
  for (let i = 0; i < 100; i++) await writeFile(join(ws.dir, `s${i}.yaml`), light ? light_.replace('NAME', `s${i}`) : serverManifest(`s${i}`, ws.stamps));
  const t0 = now();
  const up = startUp(ws.dir, ws.stateDir, ws.keyFile);
  const store = new StatusStore(new StateLayout(ws.stateDir));
  await until('100 running', async () => {
    const records = await store.list('MCPServer');
    return records.length === 100 && records.every((r) => (r.status as { phase: string }).phase === 'Running') ? true : undefined;
  }, 60_000, 250); // polling 100 status files costs CPU the servers are fighting for: 250 ms is enough precision
  const allRunning = now() - t0;
  if (light) {
    await up.stop();
    await rm(ws.root, { recursive: true, force: true });
    return {
      measure: '100 `sleep` processes: cold start -> all Running',
      result: fmtMs(allRunning),
      note: "the controller's own cost: no server boot competing for the 2 cores",
    };
  }
  // How long until every one of them is a booted MCP server (node loaded, stdio transport up).
  await until('100 booted', async () => {
    const logs = await Promise.all(Array.from({ length: 100 }, (_, i) => readFile(join(ws.stateDir, 'logs', `s${i}.log`), 'utf8').catch(() => '')));
    return logs.every((l) => l.includes('apiary-hello: ready')) ? true : undefined;
  }, 120_000, 100);
  const allBooted = now() - t0;
  await up.stop();
  await rm(ws.root, { recursive: true, force: true });
  return {
    measure: '100 small servers: cold start -> all Running',
    result: fmtMs(allRunning),
    target: '<= 10 s',
    note: `from spawning \`apiary up\`; 100 node MCP servers booting at once saturate both cores (all ready after ${fmtMs(allBooted)})`,
  };
}

export async function benchController(): Promise<Row[]> {
  const rows: Row[] = [];
  const restored = await secretRestoredToSpawn(20);
  rows.push({ measure: 'secret file restored -> stuck server spawned', result: `p50 ${fmtMs(percentile(restored, 50))}`, target: '<= 100 ms', note: `${restored.length} rounds; p99 ${fmtMs(percentile(restored, 99))}` });
  rows.push(...(await thousand()));
  rows.push(await hundredServers(false));
  rows.push(await hundredServers(true));
  return rows;
}
