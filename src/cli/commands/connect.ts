/**
 * `apiary connect NAME`: the one login a hosted server with spec.remote.auth
 * needs. It opens the browser (or prints the URL), waits for the redirect on
 * 127.0.0.1, and leaves the tokens sealed in the state directory, where the
 * controller finds them. `apiary disconnect NAME` forgets them, revoking
 * them first where the authorization server offers it. Neither needs a
 * running controller: they read the manifest and the state directory.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { ApiaryError, messageOf } from '../../errors.js';
import { connect } from '../../mcp/oauth-client.js';
import { disconnectGrant, loginOf, tokenStoreIn } from '../../reconcilers/remote-login.js';
import { StateLayout } from '../../state/layout.js';
import { ensurePrivateDir } from '../../util/atomic.js';
import type { CliContext } from '../context.js';

const LOGIN_TIMEOUT_MS = 5 * 60_000;

export function registerConnect(program: Command, ctx: CliContext): void {
  program
    .command('connect')
    .description('log in to a hosted server that needs OAuth (spec.remote.auth): opens the browser, waits for the login, keeps the tokens sealed in the state directory')
    .argument('<NAME>', 'server name')
    .option('--no-open', 'print the login URL instead of opening a browser')
    .option('--timeout <SECONDS>', 'how long to wait for the login', String(LOGIN_TIMEOUT_MS / 1000))
    .action(async (name: string, opts: { open: boolean; timeout: string }, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const timeoutMs = Number(opts.timeout) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ApiaryError('Usage', '--timeout takes a number of seconds');
      const auth = await loginOf(dir, name, ctx.keys);
      await ensurePrivateDir(stateDir);
      const store = tokenStoreIn(stateDir, ctx.keys, true);
      const connected = await connect({
        name,
        serverUrl: auth.url,
        settings: auth.settings,
        store,
        timeoutMs,
        open: (url) => {
          ctx.io.out(`Log in to connect ${name}:\n  ${url}\n`);
          if (opts.open) openBrowser(url, (why) => ctx.io.err(`could not open a browser (${why}): open the URL above\n`));
        },
      });
      const expiry = connected.expiresAt === undefined ? '' : `, the access token expires at ${new Date(connected.expiresAt).toISOString()}${connected.refreshable ? ' and is refreshed before' : ' (no refresh token: connect again then)'}`;
      ctx.io.out(`connected ${name} (authorization server ${connected.issuer}${expiry}); the tokens are sealed in ${new StateLayout(stateDir).oauthTokensFile(name)}\n`);
    });

  program
    .command('disconnect')
    .description("forget a hosted server's OAuth tokens, revoking them at the authorization server where it offers that")
    .argument('<NAME>', 'server name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const forgotten = await disconnectGrant(dir, name, tokenStoreIn(stateDir, ctx.keys, false), ctx.keys);
      ctx.io.out(forgotten === undefined ? `${name} has no tokens: nothing to forget\n` : `disconnected ${name}: ${forgotten}\n`);
    });
}

/** xdg-open (or macOS's open), never through a shell; the URL is printed either way. */
function openBrowser(url: string, failed: (why: string) => void): void {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true, shell: false });
    child.on('error', (err) => failed(messageOf(err)));
    child.unref();
  } catch (err) {
    failed(messageOf(err));
  }
}
