import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { createLogger } from '../../controller/logger.js';
import { ApiaryError } from '../../errors.js';
import type { CliContext } from '../context.js';
import { logSink } from '../log-sink.js';

export function registerUp(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('run the controller in the foreground: watch --dir and keep the servers matching it (Ctrl-C stops everything)')
    .option('--resync <seconds>', 'full resync period', '30')
    .option('-v, --verbose', 'debug logging')
    .action(async (opts: { resync: string; verbose?: boolean }, cmd: Command) => {
      const { dir, dirDisplay, stateDir } = ctx.locations(cmd);
      const info = await stat(dir).catch(() => undefined);
      if (info?.isDirectory() !== true) {
        throw new ApiaryError('NotFound', `manifest directory ${dirDisplay} does not exist`, {
          hints: ['Pass --dir DIR, set APIARY_DIR, or run from a folder that has ./manifests.'],
        });
      }
      const resyncSeconds = Number(opts.resync);
      if (!Number.isFinite(resyncSeconds) || resyncSeconds < 1) throw new ApiaryError('Usage', '--resync takes a number of seconds (at least 1)');
      const logger = createLogger(logSink(ctx.io, process.stderr.isTTY === true), opts.verbose ? 'debug' : 'info');
      // Loaded here: the controller brings the MCP SDK, which no other verb needs.
      const { Controller } = await import('../../controller/controller.js');
      const controller = new Controller({ dir, stateDir, keys: ctx.keys, logger, env: ctx.env, resyncMs: resyncSeconds * 1000 });
      await controller.start();
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          logger.info('signal received, stopping', { signal });
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      await controller.stop();
    });
}
