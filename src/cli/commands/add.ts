import type { Command } from 'commander';
import { TRANSPORTS, type Transport } from '../../api/manifests.js';
import { secretForms } from '../../crypto/secret-data.js';
import { SecretValue } from '../../crypto/secret-value.js';
import { ApiaryError } from '../../errors.js';
import { referencedNames } from '../../api/remote.js';
import { planInstall, secretNameFor, writeInstall, type InstallRequest, type SecretBinding } from '../../manifests/install.js';
import { loadDirectory } from '../../manifests/loader.js';
import type { Resource } from '../../manifests/resource.js';
import { refuseGitSourced } from '../../source/directory.js';
import type { CliContext } from '../context.js';
import { displayPath } from '../paths.js';
import { hiddenPrompt, readAll } from '../secret-input.js';

export { secretNameFor };

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * `--secret VAR` binds VAR to secret <var> key VAR (reused when it has that
 * key, else created from a value); `--secret VAR=NAME/KEY` names the secret
 * and key (reused when there, else created).
 */
export function secretBinding(flag: string, resources: readonly Resource[]): SecretBinding {
  const eq = flag.indexOf('=');
  const variable = eq < 0 ? flag : flag.slice(0, eq);
  const [secret, key, ...rest] = eq < 0 ? [secretNameFor(flag), flag] : flag.slice(eq + 1).split('/');
  if (secret === undefined || secret === '' || key === undefined || key === '' || rest.length > 0) throw new ApiaryError('Usage', `--secret takes VAR or VAR=SECRET/KEY; got "${flag}"`);
  const found = resources.find((r) => r.kind === 'Secret' && r.name === secret);
  if (found?.kind === 'Secret' && secretForms(found).has(key)) return { variable, existing: { secret, key } };
  return { variable, create: eq < 0 ? { key } : { secret, key } };
}

interface AddOptions {
  secret: string[];
  env: string[];
  transport?: string;
  port?: string;
  image?: string;
  url?: string;
  header: string[];
  oauth?: boolean;
  output: string;
}

/** A header as `--header` takes it: NAME=VALUE, or NAME: VALUE as curl writes it (a name holds neither). */
export function parseHeader(flag: string): { name: string; value: string } {
  const at = [flag.indexOf('='), flag.indexOf(':')].filter((i) => i > 0);
  const split = at.length > 0 ? Math.min(...at) : -1;
  if (split < 0) throw new ApiaryError('Usage', `--header takes NAME=VALUE (or "NAME: VALUE"); got "${flag}"`);
  return { name: flag.slice(0, split).trim(), value: flag.slice(split + 1).trim() };
}

/** Header names whose value is a credential: given on the command line it would sit in the manifest in plain text (and in the shell's history). */
const CREDENTIAL_HEADER = /^(authorization|proxy-authorization|cookie)$|token|key|secret|password|auth/i;

/** A hosted server from --url, --transport and --header; a credential written out in a header is refused, with the way to seal it. */
function remoteOf(opts: AddOptions): NonNullable<InstallRequest['remote']> {
  const transport = opts.transport ?? 'streamable-http';
  if (transport !== 'streamable-http' && transport !== 'sse') throw new ApiaryError('Usage', `--transport with --url is streamable-http or sse; got "${transport}"`);
  const headers = opts.header.map(parseHeader);
  for (const h of headers) {
    if (!CREDENTIAL_HEADER.test(h.name) || referencedNames(h.value).length > 0) continue;
    const variable = h.name.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'TOKEN';
    const example = /^bearer\s/i.test(h.value) ? `Bearer $(${variable})` : `$(${variable})`;
    throw new ApiaryError('Usage', `header ${h.name} holds its value in plain text, which would be written into the manifest; seal it instead: --header '${h.name}=${example}' --secret ${variable} (the value is then asked for, or read from stdin)`);
  }
  return { url: opts.url!, ...(opts.transport !== undefined ? { transport } : {}), ...(headers.length > 0 ? { headers } : {}), ...(opts.oauth === true ? { auth: { type: 'oauth' as const } } : {}) };
}

export function registerAdd(program: Command, ctx: CliContext): void {
  program
    .command('add')
    .description('write an MCPServer manifest for a command, or for a hosted server with --url; --secret binds a variable to a sealed secret (prompting for new ones)')
    .argument('<NAME>', 'server name')
    .argument('[COMMAND...]', 'the command and its arguments, after -- (not with --url)')
    .option('--secret <VAR[=SECRET/KEY]>', 'bind VAR to a secret: <var> key VAR, or SECRET/KEY; a new one is sealed from a prompt or stdin (repeatable)', collect, [])
    .option('--env <K=V>', 'a plain variable (repeatable)', collect, [])
    .option('--url <URL>', "a hosted server's MCP endpoint, fronted by apiary (spec.remote) instead of a command; $(VAR) takes a variable's value")
    .option('--header <NAME=VALUE>', "a header sent to the hosted server, e.g. 'Authorization=Bearer $(TOKEN)' with --secret TOKEN (repeatable)", collect, [])
    .option('--oauth', 'the hosted server logs in with OAuth (spec.remote.auth); connect it once with: apiary connect NAME')
    .option('--transport <T>', `${TRANSPORTS.join(' | ')} (with --url: streamable-http or sse)`)
    .option('--port <PORT>', 'port')
    .option('--image <IMAGE>', 'the container image the command runs in on Kubernetes (spec.image; unused by local processes)')
    .option('-o, --output <format>', 'text or json', 'text')
    .usage("NAME [options] -- COMMAND [ARGS...]\n       apiary add NAME --url URL [--header 'NAME=VALUE'] [--secret VAR] [options]")
    .action(async (name: string, command: string[], opts: AddOptions, cmd: Command) => {
      const [program_, ...args] = command;
      if (opts.url !== undefined && program_ !== undefined) throw new ApiaryError('Usage', 'give either a command after -- or --url for a hosted server, not both');
      if (opts.url === undefined && program_ === undefined) throw new ApiaryError('Usage', 'add needs a command after --, or --url for a hosted server');
      if (opts.url === undefined && opts.header.length > 0) throw new ApiaryError('Usage', '--header is for a hosted server (--url)');
      if (opts.url === undefined && opts.oauth === true) throw new ApiaryError('Usage', '--oauth is for a hosted server (--url)');
      const remote = opts.url !== undefined ? remoteOf(opts) : undefined;
      const { dir } = ctx.locations(cmd);
      const env = opts.env.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new ApiaryError('Usage', `--env takes K=V; got "${pair}"`);
        return { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
      });
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && !Number.isInteger(port)) throw new ApiaryError('Usage', `--port takes a number; got "${opts.port}"`);
      const loaded = await loadDirectory(dir);
      const plan = planInstall(
        {
          name,
          command: program_ ?? '',
          ...(remote !== undefined ? { remote } : { args }),
          ...(opts.transport && remote === undefined ? { transport: opts.transport as Transport } : {}),
          ...(port !== undefined ? { port } : {}),
          ...(opts.image !== undefined ? { image: opts.image } : {}),
          env,
          secrets: opts.secret.map((flag) => secretBinding(flag, loaded.resources)),
        },
        loaded.resources,
        { replace: true },
      );

      // Values for new secrets: a hidden prompt on a terminal, else one line each from stdin.
      const pending = plan.newSecrets;
      const lines = process.stdin.isTTY === true || pending.length === 0 ? [] : (await readAll(process.stdin, 'standard input')).split(/\r?\n/);
      const values = new Map<string, SecretValue>();
      for (const [i, p] of pending.entries()) {
        const text = process.stdin.isTTY === true ? await hiddenPrompt(`Value for ${p.variable} (secret ${p.secret}, input hidden): `) : lines[i];
        if (!text) throw new ApiaryError('Usage', `no value given for ${p.variable}; nothing was written`);
        values.set(p.variable, new SecretValue(text));
      }
      await refuseGitSourced(dir);
      const result = await writeInstall(dir, plan, values, ctx.keys);
      const created = [...new Set(result.secretsCreated.map((s) => s.secret))];
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify({ kind: 'MCPServer', name, action: result.server?.action, file: result.server ? displayPath(result.server.file) : undefined, secretsCreated: created }, null, 2));
      } else {
        for (const s of created) ctx.io.out(`secret/${s} created (sealed)`);
        ctx.io.out(`mcpserver/${name} ${result.server?.action ?? 'unchanged'}${result.server ? ` (${displayPath(result.server.file)})` : ''}`);
        if (remote?.auth !== undefined) ctx.io.out(`it logs in with OAuth: connect it once with: apiary connect ${name} (or Connect in the console)`);
      }
    });
}
