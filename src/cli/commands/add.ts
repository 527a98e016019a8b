import type { Command } from 'commander';
import { stringify } from 'yaml';
import { API_GROUP_VERSION, isDns1123Label } from '../../api/names.js';
import { MCPServerManifest, TRANSPORTS } from '../../api/manifests.js';
import { secretForms } from '../../crypto/secret-data.js';
import { ApiaryError } from '../../errors.js';
import { apply, readInput } from '../../manifests/apply.js';
import { loadDirectory } from '../../manifests/loader.js';
import type { SecretResource } from '../../manifests/resource.js';
import { setSecretValue } from '../../manifests/secret-edits.js';
import type { CliContext } from '../context.js';
import { displayPath } from '../paths.js';
import { hiddenPrompt, readAll } from '../secret-input.js';
import { SecretValue } from '../../crypto/secret-value.js';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GITHUB_TOKEN -> github-token: the secret a --secret variable is bound to. */
export function secretNameFor(variable: string): string {
  return variable.toLowerCase().replace(/_/g, '-').replace(/[^a-z0-9-]/g, '').replace(/^-+|-+$/g, '');
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerAdd(program: Command, ctx: CliContext): void {
  program
    .command('add')
    .description('write an MCPServer manifest for a command; --secret binds a variable to a sealed secret (prompting for new ones)')
    .argument('<NAME>', 'server name')
    .argument('<COMMAND...>', 'the command and its arguments, after --')
    .option('--secret <ENV_VAR>', 'bind ENV_VAR to secret <env-var> key ENV_VAR (repeatable)', collect, [])
    .option('--env <K=V>', 'a plain variable (repeatable)', collect, [])
    .option('--transport <T>', `${TRANSPORTS.join(' | ')}`)
    .option('--port <PORT>', 'port')
    .option('-o, --output <format>', 'text or json', 'text')
    .usage('NAME [options] -- COMMAND [ARGS...]')
    .action(async (name: string, command: string[], opts: { secret: string[]; env: string[]; transport?: string; port?: string; output: string }, cmd: Command) => {
      if (!isDns1123Label(name)) throw new ApiaryError('Usage', `"${name}" is not a valid name: use lowercase letters, digits and "-"`);
      const [program_, ...args] = command;
      if (program_ === undefined) throw new ApiaryError('Usage', 'add needs a command after --');
      const { dir } = ctx.locations(cmd);
      const env: Record<string, unknown>[] = opts.env.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new ApiaryError('Usage', `--env takes K=V; got "${pair}"`);
        return { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
      });
      const loaded = await loadDirectory(dir);
      const created: string[] = [];
      const pending: { variable: string; secret: string }[] = [];
      for (const variable of opts.secret) {
        const secret = secretNameFor(variable);
        if (!isDns1123Label(secret)) throw new ApiaryError('Usage', `cannot name a secret after "${variable}"`);
        env.push({ name: variable, valueFrom: { secretKeyRef: { name: secret, key: variable } } });
        const existing = loaded.resources.find((r): r is SecretResource => r.kind === 'Secret' && r.name === secret);
        // An existing secret that already has the key is reused as it is.
        if (existing === undefined || !secretForms(existing).has(variable)) pending.push({ variable, secret });
      }
      const manifest = {
        apiVersion: API_GROUP_VERSION,
        kind: 'MCPServer',
        metadata: { name },
        spec: {
          command: program_,
          ...(args.length ? { args } : {}),
          ...(opts.transport ? { transport: opts.transport } : {}),
          ...(opts.port ? { port: Number(opts.port) } : {}),
          ...(env.length ? { env } : {}),
        },
      };
      const checked = MCPServerManifest.safeParse(manifest);
      if (!checked.success) throw new ApiaryError('Usage', `invalid server: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);

      // Values for new secrets: a hidden prompt on a terminal, else one line each from stdin.
      const lines = process.stdin.isTTY === true || pending.length === 0 ? [] : (await readAll(process.stdin, 'standard input')).split(/\r?\n/);
      for (const [i, p] of pending.entries()) {
        const text = process.stdin.isTTY === true ? await hiddenPrompt(`Value for ${p.variable} (secret ${p.secret}, input hidden): `) : lines[i];
        if (!text) throw new ApiaryError('Usage', `no value given for ${p.variable}; nothing was written`);
        const { key } = await ctx.keys.getOrCreate();
        await setSecretValue(dir, p.secret, p.variable, new SecretValue(text), key);
        created.push(p.secret);
      }

      const scratch = await mkdtemp(join(tmpdir(), 'apiary-add-'));
      try {
        const file = join(scratch, `${name}.yaml`);
        await writeFile(file, `# Added by apiary add.\n${stringify(manifest)}`);
        const input = await readInput(file, dir);
        const [result] = await apply(dir, input.documents);
        if (opts.output === 'json') {
          ctx.io.out(JSON.stringify({ kind: 'MCPServer', name, action: result?.action, file: result ? displayPath(result.file) : undefined, secretsCreated: created }, null, 2));
        } else {
          for (const s of created) ctx.io.out(`secret/${s} created (sealed)`);
          ctx.io.out(`mcpserver/${name} ${result?.action ?? 'unchanged'}${result ? ` (${displayPath(result.file)})` : ''}`);
        }
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
}
