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
import { openSecret } from '../../crypto/secret-data.js';
import { ApiaryError, messageOf } from '../../errors.js';
import { loadDirectory } from '../../manifests/loader.js';
import type { MCPServerResource } from '../../manifests/resource.js';
import { connect, revoke, type OAuthSettings } from '../../mcp/oauth-client.js';
import { resolveRemoteAuth, type RemoteAuth } from '../../reconcilers/remote-auth.js';
import type { SecretLookup } from '../../reconcilers/secret-resolver.js';
import { StateLayout } from '../../state/layout.js';
import { OAuthTokenStore } from '../../state/oauth-tokens.js';
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
      const auth = await authOf(ctx, dir, name);
      if (auth.problems.length > 0 || !('url' in auth)) throw new ApiaryError('SecretNotFound', `mcpserver "${name}" cannot log in: ${auth.problems.map((p) => p.message).join('; ')}`);
      await ensurePrivateDir(stateDir);
      const store = storeIn(ctx, stateDir, true);
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
      const store = storeIn(ctx, stateDir, false);
      if (!(await store.hasGrant(name))) {
        ctx.io.out(`${name} has no tokens: nothing to forget\n`);
        return;
      }
      // The manifest may be gone already: the tokens are still forgotten, revoked with the client kept for their issuer.
      const auth = await authOf(ctx, dir, name).catch(() => undefined);
      const settings: OAuthSettings = auth !== undefined && 'settings' in auth ? auth.settings : {};
      const revoked = await revokeQuietly(store, name, settings);
      await store.forgetGrant(name);
      ctx.io.out(`disconnected ${name}: tokens forgotten${revoked}\n`);
    });
}

async function revokeQuietly(store: OAuthTokenStore, name: string, settings: OAuthSettings): Promise<string> {
  try {
    const grant = await store.grant(name);
    if (grant === undefined) return '';
    const outcome = await revoke(grant, settings, store);
    return outcome === 'revoked' ? ' and revoked at the authorization server' : outcome === 'not-offered' ? ' (the authorization server offers no revocation)' : ' (not revoked: the client they were issued to is no longer configured)';
  } catch (err) {
    return ` (not revoked: ${messageOf(err)})`;
  }
}

function storeIn(ctx: CliContext, stateDir: string, create: boolean): OAuthTokenStore {
  return new OAuthTokenStore(new StateLayout(stateDir), async () => (create ? (await ctx.keys.getOrCreate()).key : ctx.keys.get()));
}

/** The server's manifest, read from the directory, its auth resolved against the directory's secrets. */
async function authOf(ctx: CliContext, dir: string, name: string): Promise<RemoteAuth> {
  const loaded = await loadDirectory(dir);
  const server = loaded.resources.find((r): r is MCPServerResource => r.kind === 'MCPServer' && r.name === name);
  if (server === undefined) throw new ApiaryError('NotFound', `mcpserver "${name}" not found in ${dir}`);
  const lookup = async (secret: string): Promise<SecretLookup> => {
    const resource = loaded.resources.find((r) => r.kind === 'Secret' && r.name === secret);
    if (resource === undefined || resource.kind !== 'Secret') return { state: 'missing' };
    return { state: 'ok', resource, entries: await openSecret(resource, ctx.keys), version: '' };
  };
  const auth = await resolveRemoteAuth(server.manifest.spec, lookup);
  if (auth === undefined) {
    throw new ApiaryError('Usage', `mcpserver "${name}" does not log in with OAuth: its manifest has no spec.remote.auth`, {
      hints: ['Add to its spec.remote:  auth: {type: oauth}'],
    });
  }
  return auth;
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
