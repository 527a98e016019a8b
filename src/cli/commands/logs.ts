import type { Command } from 'commander';
import { open, readFile, stat } from 'node:fs/promises';
import { ApiaryError } from '../../errors.js';
import { StateLayout } from '../../state/layout.js';
import type { CliContext } from '../context.js';

export function registerLogs(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description("print a server's output (stdout and stderr)")
    .argument('<NAME>', 'server name')
    .option('-f, --follow', 'keep printing new output')
    .option('--tail <N>', 'only the last N lines')
    .option('-p, --previous', 'the output of the previous run')
    .action(async (name: string, opts: { follow?: boolean; tail?: string; previous?: boolean }, cmd: Command) => {
      const layout = new StateLayout(ctx.locations(cmd).stateDir);
      const path = opts.previous ? layout.previousLogFile(name) : layout.logFile(name);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) {
        throw new ApiaryError('NotFound', `no ${opts.previous ? 'previous ' : ''}logs for mcpserver/${name}`);
      }
      const tail = opts.tail === undefined ? undefined : Number(opts.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new ApiaryError('Usage', '--tail takes a whole number');
      let lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      if (tail !== undefined) lines = tail === 0 ? [] : lines.slice(-tail);
      if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
      if (opts.follow) await follow(path, Buffer.byteLength(text));
    });
}

async function follow(path: string, from: number): Promise<void> {
  let offset = from;
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  process.once('SIGTERM', () => (stop = true));
  while (!stop) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const size = (await stat(path).catch(() => undefined))?.size ?? 0;
    if (size < offset) offset = 0; // rotated or restarted
    if (size === offset) continue;
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      process.stdout.write(buffer);
      offset = size;
    } finally {
      await handle.close();
    }
  }
}
