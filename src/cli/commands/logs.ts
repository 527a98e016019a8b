import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { followFile } from '../../state/follow.js';
import { ApiaryError } from '../../errors.js';
import { StateLayout } from '../../state/layout.js';
import { StatusStore } from '../../state/status-store.js';
import type { MCPServerStatus } from '../../api/status.js';
import type { CliContext } from '../context.js';
import { escapeTerminalLines } from '../escape.js';

export function registerLogs(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description("print a server's output (stdout and stderr), or with --controller the log of a controller started with up -d")
    .argument('[NAME]', 'server name')
    .option('-f, --follow', 'keep printing new output')
    .option('--tail <N>', 'only the last N lines')
    .option('-p, --previous', 'the output of the previous run')
    .option('--next', 'the output of the new process of a rolling update (one starting, or the last that failed to take over)')
    .option('--timestamps', 'prefix each line with when apiary saw it (within a quarter second)')
    .option('--controller', "the background controller's own log (its lines carry their time)")
    .action(async (name: string | undefined, opts: { follow?: boolean; tail?: string; previous?: boolean; next?: boolean; timestamps?: boolean; controller?: boolean }, cmd: Command) => {
      const layout = new StateLayout(ctx.locations(cmd).stateDir);
      if (opts.controller === true) {
        if (name !== undefined) throw new ApiaryError('Usage', 'use either NAME or --controller, not both');
        if (opts.timestamps === true) throw new ApiaryError('Usage', '--timestamps is for servers: every controller log line carries its own time');
      } else if (name === undefined) {
        throw new ApiaryError('Usage', 'name a server (apiary logs NAME), or use --controller');
      }
      if (opts.next === true && (opts.previous === true || name === undefined)) throw new ApiaryError('Usage', '--next is for a server, and not with --previous');
      if (opts.next === true && opts.timestamps === true) throw new ApiaryError('Usage', '--timestamps is not kept for a rolling update\'s new process until it takes over');
      const path =
        name === undefined
          ? opts.previous ? layout.previousControllerLogFile : layout.controllerLogFile
          : opts.previous ? layout.previousLogFile(name) : opts.next ? layout.nextLogFile(name) : layout.logFile(name);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) {
        const whose = name === undefined ? 'the controller (it writes a log only when started with up -d)' : `mcpserver/${name}`;
        // A server on Kubernetes writes to its pod's log, which the cluster keeps.
        const pod = name === undefined ? undefined : ((await new StatusStore(layout).read('MCPServer', name).catch(() => undefined))?.status as MCPServerStatus | undefined)?.pod;
        const [namespace, podName] = pod?.split('/') ?? [];
        throw new ApiaryError('NotFound', `no ${opts.previous ? 'previous ' : opts.next ? 'rolling-update ' : ''}logs for ${whose}${pod !== undefined ? ' here: it runs on Kubernetes, in pod ' + pod : ''}`, {
          ...(pod !== undefined ? { hints: [`kubectl logs -n ${namespace} ${podName}${opts.follow === true ? ' -f' : ''}${opts.previous === true ? ' --previous' : ''}`] } : {}),
        });
      }
      const tail = opts.tail === undefined ? undefined : Number(opts.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new ApiaryError('Usage', '--tail takes a whole number');
      let lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      if (opts.timestamps && name !== undefined) {
        const index = await readIndex(opts.previous ? layout.previousLogIndexFile(name) : layout.logIndexFile(name));
        const fallback = (await stat(path)).mtime.toISOString();
        let end = 0;
        lines = lines.map((line) => {
          end += Buffer.byteLength(line) + 1;
          return `${index.find((e) => e.size >= end - 1)?.time ?? fallback} ${line}`;
        });
      }
      if (tail !== undefined) lines = tail === 0 ? [] : lines.slice(-tail);
      // A server's output is printed, not played: its escape sequences are shown, its lines and tabs kept.
      if (lines.length > 0) process.stdout.write(`${escapeTerminalLines(lines.join('\n'))}\n`);
      if (opts.follow) await follow(path, Buffer.byteLength(text), opts.timestamps === true);
    });
}

async function readIndex(path: string): Promise<{ size: number; time: string }[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [size, time] = l.split(' ');
      return { size: Number(size), time: time ?? '' };
    });
}

async function follow(path: string, from: number, timestamps: boolean): Promise<void> {
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  process.once('SIGTERM', () => (stop = true));
  for await (const event of followFile(path, from, { pollMs: 200, stopped: () => stop })) {
    if ('text' in event) process.stdout.write(escapeTerminalLines(timestamps ? event.text.replace(/^(?=.)/gm, `${new Date().toISOString()} `) : event.text));
  }
}
