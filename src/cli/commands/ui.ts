import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { loginLink, mintLoginCode, readConsoleRecord } from '../../console/auth.js';
import { ApiaryError } from '../../errors.js';
import { liveController } from '../../state/controller-lock.js';
import { StateLayout } from '../../state/layout.js';
import type { CliContext } from '../context.js';

/** Opens a URL in the desktop's browser, when there is a desktop; says whether it tried. */
function openInBrowser(url: string, env: NodeJS.ProcessEnv): boolean {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? undefined : env['DISPLAY'] || env['WAYLAND_DISPLAY'] ? 'xdg-open' : undefined;
  if (opener === undefined) return false;
  // The URL goes to the opener as one argument, never through a shell.
  const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return true;
}

export function registerUi(program: Command, ctx: CliContext): void {
  program
    .command('ui')
    .description("print a login link for the running controller's web console (and open it, on a desktop)")
    .option('--no-open', 'only print the link')
    .option('--api-token', 'print the API token instead (for scripts: Authorization: Bearer TOKEN)')
    .action(async (opts: { open: boolean; apiToken?: boolean }, cmd: Command) => {
      const { stateDir } = ctx.locations(cmd);
      const running = await liveController(new StateLayout(stateDir));
      const record = await readConsoleRecord(stateDir);
      if (running === undefined) {
        throw new ApiaryError('NotFound', 'no apiary controller is running for this state directory', { hints: ['Start one with: apiary up (the console comes with it)'] });
      }
      if (record === undefined || record.pid !== running.pid) {
        throw new ApiaryError('NotFound', `the controller (pid ${running.pid}) serves no console`, { hints: ['It was started with --no-ui; restart it without that option.'] });
      }
      if (opts.apiToken === true) {
        ctx.io.out(record.apiToken);
        return;
      }
      // A new code each time, written beside the controller's state: nothing is asked over the port.
      const url = loginLink(record.url, await mintLoginCode(stateDir));
      ctx.io.out(url);
      if (opts.open && process.stdout.isTTY === true && openInBrowser(url, ctx.env)) ctx.io.err('opened in your browser');
    });
}
