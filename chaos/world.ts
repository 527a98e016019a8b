/**
 * The world the fault harness drives: a manifest directory, a state
 * directory and a real `apiary up` (the built CLI, as a user runs it) with
 * real stdio MCP servers, plus what it takes to look at all of it from
 * outside: the processes in /proc, the files, the status apiary wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyFile } from '../src/crypto/keys.js';
import { authorizationHeader, readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';

/** The checkout: one folder up from chaos/ as TypeScript, two from dist/chaos/ as built. */
const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = existsSync(join(HERE, '..', 'package.json')) ? join(HERE, '..') : join(HERE, '..', '..');
export const BIN = join(ROOT, 'bin', 'apiary');
export const TINY_SERVER = join(ROOT, 'test', 'fixtures', 'servers', 'tiny-server.mjs');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A server as the harness declares it; `rev` goes into its args so the running process shows which spec it runs. */
export interface ServerDecl {
  name: string;
  rev: number;
  /** Secret (name/key) bound to env TOKEN. */
  secret?: { name: string; key: string };
  flags?: string[];
  suspend?: boolean;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class World {
  readonly root: string;
  readonly dir: string;
  readonly stateDir: string;
  readonly keyFile: string;
  readonly controllerLog: string;
  /** Marks every server process of this run in its environment. */
  readonly runId: string;
  readonly env: NodeJS.ProcessEnv;
  controller: ChildProcess | undefined;

  private constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'manifests');
    this.stateDir = join(root, 'state');
    this.keyFile = join(root, 'master.key');
    this.controllerLog = join(root, 'controller.log');
    this.runId = root.slice(-8).replace(/[^a-zA-Z0-9]/g, 'x');
    // Only what apiary needs: no keyring here, the key file is the way out DESIGN names.
    this.env = { PATH: process.env['PATH'], HOME: process.env['HOME'], APIARY_KEY_FILE: this.keyFile, NO_COLOR: '1' };
  }

  static async create(): Promise<World> {
    const world = new World(await mkdtemp(join(tmpdir(), 'apiary-chaos-')));
    await mkdir(world.dir, { recursive: true });
    await createKeyFile(world.keyFile);
    return world;
  }

  async dispose(): Promise<void> {
    await this.stopController();
    for (const pid of Object.values(this.serverProcesses()).flat()) killGroup(pid);
    await rm(this.root, { recursive: true, force: true });
  }

  // ---- manifests ----

  serverYaml(s: ServerDecl): string {
    const args = [TINY_SERVER, '--rev', String(s.rev), ...(s.flags ?? [])].map((a) => JSON.stringify(a)).join(', ');
    const token = s.secret ? `    - name: TOKEN\n      valueFrom:\n        secretKeyRef: { name: ${s.secret.name}, key: ${s.secret.key} }\n` : '';
    return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: ${s.name}
spec:
  command: node
  args: [${args}]
  suspend: ${s.suspend === true}
  env:
    - name: CHAOS_RUN
      value: ${this.runId}
    - name: SERVER_NAME
      value: ${s.name}
${token}`;
  }

  async writeManifest(file: string, text: string): Promise<void> {
    await writeFile(join(this.dir, file), text);
  }

  /** The endpoint URLs of these servers (from status) and of the aggregate (from ports.json), those known now. */
  endpointUrls(names: readonly string[]): string[] {
    const urls = names.map((n) => this.status(n)?.url).filter((u): u is string => u !== undefined);
    try {
      const ports = JSON.parse(readFileSync(join(this.stateDir, 'ports.json'), 'utf8')) as Record<string, unknown>;
      if (typeof ports['_aggregate'] === 'number') urls.push(`http://127.0.0.1:${ports['_aggregate']}/mcp`);
    } catch {
      // damaged by the corrupt-state fault: rebuilt by the controller, the aggregate is skipped this round
    }
    return urls;
  }

  /** Writes in place, as an editor does (the controller must cope with torn reads). */
  async writeServer(s: ServerDecl): Promise<void> {
    await writeFile(join(this.dir, `${s.name}.yaml`), this.serverYaml(s));
  }

  async annotate(name: string, note: string, s: ServerDecl): Promise<void> {
    const text = this.serverYaml(s).replace(`  name: ${name}\n`, `  name: ${name}\n  annotations:\n    chaos/note: "${note}"\n`);
    await writeFile(join(this.dir, `${name}.yaml`), text);
  }

  // ---- the CLI and the controller ----

  /** The header apiary's endpoints require, for the world's MCP clients. */
  async endpointHeaders(): Promise<Record<string, string>> {
    const token = await readEndpointToken(new StateLayout(this.stateDir));
    return token === undefined ? {} : authorizationHeader(token);
  }

  cli(args: readonly string[], input = ''): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(BIN, ['--dir', this.dir, '--state-dir', this.stateDir, ...args], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    });
  }

  /** A CLI process the harness may kill midway (a secret write). */
  spawnCli(args: readonly string[], input: string): ChildProcess {
    const child = spawn(BIN, ['--dir', this.dir, '--state-dir', this.stateDir, ...args], { env: this.env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
    return child;
  }

  /** Starts `apiary up` and resolves once it holds the lock and says so in controller.json. */
  async startController(): Promise<number> {
    const log = openSync(this.controllerLog, 'a');
    const child = spawn(BIN, ['up', '--dir', this.dir, '--state-dir', this.stateDir, '--resync', '2'], { env: this.env, stdio: ['ignore', log, log] });
    closeSync(log);
    this.controller = child;
    const started = Date.now();
    for (;;) {
      const info = await readFile(join(this.stateDir, 'controller.json'), 'utf8').then(parseJson<{ pid: number }>, () => undefined);
      if (info?.pid === child.pid) return child.pid!;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the controller exited (${child.exitCode ?? child.signalCode}) before it started; see ${this.controllerLog}`);
      if (Date.now() - started > 20_000) throw new Error(`the controller did not start within 20 s; see ${this.controllerLog}`);
      await sleep(10);
    }
  }

  /** kill -9: the controller gets no chance to stop anything. */
  killController(): Promise<void> {
    return this.#endController('SIGKILL');
  }

  /** SIGTERM, as Ctrl-C does: the controller stops its servers, then exits (SIGKILL after 20 s). */
  stopController(): Promise<void> {
    return this.#endController('SIGTERM');
  }

  async #endController(signal: NodeJS.Signals): Promise<void> {
    const child = this.controller;
    this.controller = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }

  // ---- looking at the world ----

  /** This run's server processes in /proc, by SERVER_NAME (zombies excluded). */
  serverProcesses(): Record<string, number[]> {
    const found: Record<string, number[]> = {};
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let environ: string;
      try {
        if (/^\S+ \S+ Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/\(.*\)/, 'x'))) continue;
        environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      } catch {
        continue;
      }
      const vars = environ.split('\0');
      if (!vars.includes(`CHAOS_RUN=${this.runId}`)) continue;
      const name = vars.find((v) => v.startsWith('SERVER_NAME='))?.slice('SERVER_NAME='.length) ?? '?';
      (found[name] ??= []).push(Number(entry));
    }
    return found;
  }

  /** The value of `variable` in a process's environment, and its --rev argument. */
  processFacts(pid: number, variable: string): { rev: number | undefined; value: string | undefined } {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const at = args.indexOf('--rev');
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const value = env.find((v) => v.startsWith(`${variable}=`))?.slice(variable.length + 1);
      return { rev: at >= 0 ? Number(args[at + 1]) : undefined, value };
    } catch {
      return { rev: undefined, value: undefined };
    }
  }

  /** Status objects as `get -o json` prints them (through the real CLI). */
  async objects(): Promise<{ kind: string; metadata: { name: string; generation?: number }; status?: { phase?: string; observedGeneration?: number; pid?: number; url?: string } }[]> {
    const result = await this.cli(['get', 'all', '-o', 'json']);
    if (result.code !== 0) throw new Error(`get failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { items: [] }).items;
  }

  /** Reads status files directly: cheaper than the CLI, for polling. */
  status(name: string):
    | {
        phase?: string;
        observedGeneration?: number;
        pid?: number;
        url?: string;
        generation?: number;
        annotations?: Record<string, string>;
        conditions?: { type: string; status: string; reason: string }[];
        lastTermination?: { reason?: string };
      }
    | undefined {
    try {
      const record = JSON.parse(readFileSync(join(this.stateDir, 'status', 'mcpserver', `${name}.json`), 'utf8')) as {
        metadata: { generation: number; annotations?: Record<string, string> };
        status: { phase?: string; observedGeneration?: number; pid?: number; url?: string; conditions?: { type: string; status: string; reason: string }[]; lastTermination?: { reason?: string } };
        writtenBy: { pid: number };
      };
      if (record.writtenBy.pid !== this.controller?.pid) return undefined; // left by a controller that is gone
      return { ...record.status, generation: record.metadata.generation, ...(record.metadata.annotations ? { annotations: record.metadata.annotations } : {}) };
    } catch {
      return undefined;
    }
  }
}

/** The value, or undefined for text that is not (yet) whole JSON. */
function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export function rssKb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
