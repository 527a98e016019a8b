import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { Controller, type ControllerOptions } from '../../src/controller/controller.js';
import { createLogger, type LogRecord } from '../../src/util/logger.js';
import { KeyStore } from '../../src/crypto/keys.js';
import { readStateView, type ObjectView, type StateView } from '../../src/state/view.js';
import type { MCPServerStatus } from '../../src/api/status.js';
import { workspace } from './tmp.js';
import { procStartTime } from '../../src/util/proc.js';
import { waitFor } from './wait.js';

export const TINY_SERVER = fileURLToPath(new URL('../fixtures/servers/tiny-server.mjs', import.meta.url));

const running: Controller[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});

export interface Harness {
  dir: string;
  stateDir: string;
  reports: string;
  keyFile: string;
  env: NodeJS.ProcessEnv;
  /** Every record the controller logged (at debug and above). */
  logs: LogRecord[];
  controller?: Controller;
  start(extraEnv?: NodeJS.ProcessEnv, options?: Partial<Pick<ControllerOptions, 'auth' | 'cluster' | 'keys' | 'git' | 'clock' | 'resyncMs' | 'access'>>): Promise<Controller>;
  write(file: string, text: string): Promise<void>;
  view(): Promise<StateView>;
  server(name: string): Promise<ObjectView | undefined>;
  status(name: string): Promise<MCPServerStatus | undefined>;
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  /**
   * A full pass made and finished: the directory re-read, every key
   * reconciled, nothing left queued. What a pass would have done (a restart,
   * a start) has been decided by then, so "it did not happen" can be checked
   * after this instead of after a sleep. Timed work (a back-off) is not waited for.
   */
  settled(): Promise<void>;
  starts(name: string): Promise<number[]>;
  report(name: string, pid: number): Promise<{ envNames: string[]; hashes: Record<string, string | null>; cwd: string; args: string[] }>;
}

/** `under`: where the workspace goes (the system's temp folder by default). */
export async function harness(options: { under?: string } = {}): Promise<Harness> {
  const ws = await workspace(options.under);
  const reports = join(ws.root, 'reports');
  await mkdir(reports, { recursive: true });
  await mkdir(ws.dir, { recursive: true });
  const h: Harness = {
    dir: ws.dir,
    stateDir: ws.stateDir,
    reports,
    keyFile: ws.keyFile,
    env: { ...ws.env },
    logs: [],
    async start(extraEnv = {}, options = {}) {
      const controller = new Controller({
        dir: ws.dir,
        stateDir: ws.stateDir,
        keys: new KeyStore({ env: { APIARY_KEY_FILE: ws.keyFile } }),
        resyncMs: 60_000,
        ...options,
        logger: createLogger((record) => h.logs.push(record), 'debug'),
        env: { ...process.env, ...extraEnv },
      });
      await controller.start();
      running.push(controller);
      h.controller = controller;
      return controller;
    },
    write: (file, text) => writeFile(join(ws.dir, file), text),
    view: () => readStateView(ws.dir, ws.stateDir),
    async server(name) {
      return (await h.view()).objects.find((o) => o.kind === 'MCPServer' && o.name === name);
    },
    async status(name) {
      return (await h.server(name))?.object.status as MCPServerStatus | undefined;
    },
    waitFor(what, probe, timeoutMs = 10_000) {
      // Polled at 25 ms: each look reads the whole state directory.
      return waitFor(what, probe, timeoutMs, { intervalMs: 25, observe: () => h.view().then((v) => v.objects.map((o) => ({ key: o.key, status: o.object.status, errors: o.errors }))) });
    },
    async settled() {
      await h.controller!.resync();
      await h.controller!.idle();
    },
    async starts(name) {
      const text = await readFile(join(reports, `${name}.starts`), 'utf8').catch(() => '');
      return text.trim().split('\n').filter(Boolean).map(Number);
    },
    async report(name, pid) {
      // The server writes its report once it has booted (not atomically: a read may catch it empty or half written).
      return h.waitFor(`report of ${name} pid ${pid}`, async () => {
        const text = await readFile(join(reports, `${name}.${pid}.json`), 'utf8').catch(() => undefined);
        try {
          return text === undefined ? undefined : JSON.parse(text);
        } catch {
          return undefined;
        }
      });
    },
  };
  return h;
}

/** An MCPServer manifest running `node ARGS...`; `extra` is more of the spec, indented two spaces. */
export function nodeServer(name: string, args: readonly string[], extra = ''): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: ${name}
spec:
  command: node
  args: [${args.map((a) => JSON.stringify(a)).join(', ')}]
${extra}`;
}

/** An MCPServer manifest running the tiny test server. */
export function tinyServer(
  name: string,
  h: Pick<Harness, 'reports'>,
  options: { args?: string[]; env?: string; hash?: string[]; extra?: string; restartPolicy?: string } = {},
): string {
  return nodeServer(name, [TINY_SERVER, ...(options.args ?? [])], `  restartPolicy: ${options.restartPolicy ?? 'Always'}
  env:
    - name: REPORT_DIR
      value: ${JSON.stringify(h.reports)}
    - name: SERVER_NAME
      value: ${name}
    - name: REPORT_HASH
      value: ${JSON.stringify((options.hash ?? []).join(','))}
${options.env ?? ''}${options.extra ?? ''}`);
}

export function secretYaml(name: string, values: Record<string, string>): string {
  const lines = Object.entries(values).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n');
  return `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n${lines}\n`;
}

/** Alive and not a zombie (an orphan's zombie lingers until PID 1 reaps it). */
export function isAlive(pid: number): boolean {
  return procStartTime(pid) !== undefined;
}

export async function listReports(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.json'));
}
