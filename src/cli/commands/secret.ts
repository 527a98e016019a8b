import type { Command } from 'commander';
import { sealerFor } from '../../crypto/sealer.js';
import { displayPath } from '../paths.js';
import type { ResealResult } from '../../manifests/reseal.js';
import { isDns1123Label, SECRET_KEY } from '../../api/names.js';
import { openSecret } from '../../crypto/secret-data.js';
import { ApiaryError } from '../../errors.js';
import { loadDirectory } from '../../manifests/loader.js';
import { serversUsingSecret } from '../../manifests/references.js';
import type { SecretResource } from '../../manifests/resource.js';
import { deleteSecret, setSecretValue } from '../../manifests/secret-edits.js';
import { summarizeSecret, usersWarning } from '../../manifests/secret-summary.js';
import { refuseGitSourced, runningManifestDir } from '../../source/directory.js';
import type { CliContext } from '../context.js';
import { readSecretValue } from '../secret-input.js';
import { table } from '../table.js';

function checkName(name: string): void {
  if (!isDns1123Label(name)) {
    throw new ApiaryError('Usage', `"${name}" is not a valid secret name: use lowercase letters, digits and "-" (a DNS-1123 label)`);
  }
}

function checkKey(key: string): void {
  if (!SECRET_KEY.test(key)) throw new ApiaryError('Usage', `"${key}" is not a valid key: use letters, digits, "-", "_" and "."`);
}

/** What `secret reseal` and `key rotate` say: the interrupted run they finished, or each file resealed. */
export function reportReseal(ctx: CliContext, result: ResealResult, dirDisplay: string): void {
  const { recovered } = result;
  if (recovered.outcome === 'finished') {
    ctx.io.out(`finished an interrupted ${recovered.operation ?? 'rewrite'} of ${dirDisplay} (${recovered.files} file(s) put in place${recovered.after === 'promote-identity' ? ", and this machine's new identity" : ''}); nothing else was done`);
    return;
  }
  if (recovered.outcome === 'dropped') ctx.io.err(`note: dropped ${recovered.files} staged file(s) of an interrupted run that never committed; every file was still as before it`);
  for (const f of result.files) ctx.io.out(`${f.file}: ${f.values} value(s) resealed for ${result.recipients} recipient(s)${f.upgraded > 0 ? ` (${f.upgraded} upgraded from apiary:v1)` : ''}`);
  if (result.files.length === 0) ctx.io.out('no sealed values to reseal');
  if (result.plain > 0) ctx.io.err(`note: ${result.plain} plain value(s) (stringData, data) left as they are; apiary seal FILE seals them`);
}

export async function findSecret(dir: string, name: string): Promise<{ secret: SecretResource; all: Awaited<ReturnType<typeof loadDirectory>> }> {
  const all = await loadDirectory(dir);
  const secret = all.resources.find((r): r is SecretResource => r.kind === 'Secret' && r.name === name);
  if (secret === undefined) {
    const broken = all.documents.find((d) => d.kind === 'Secret' && d.name === name);
    if (broken?.errors[0] !== undefined) {
      throw new ApiaryError('ManifestInvalid', `secret "${name}" is declared but invalid: ${broken.errors[0].file}:${broken.errors[0].line}:${broken.errors[0].col}: ${broken.errors[0].message}`);
    }
    throw new ApiaryError('SecretNotFound', `secret "${name}" not found in ${dir}`);
  }
  return { secret, all };
}

export function registerSecret(program: Command, ctx: CliContext): void {
  const secret = program.command('secret').description('manage secrets: values are sealed into the manifest directory');

  secret
    .command('set')
    .description('set one value: read from stdin, a hidden prompt, or --from-file (never from the command line)')
    .argument('<NAME>', 'secret name')
    .argument('<KEY>', 'key within the secret')
    .option('--from-file <PATH>', 'read the value from a file (kept exactly)')
    .action(async (name: string, key: string, opts: { fromFile?: string }, cmd: Command) => {
      checkName(name);
      checkKey(key);
      const { dir } = ctx.locations(cmd);
      const value = await readSecretValue({ label: `${name}/${key}`, ...(opts.fromFile ? { fromFile: opts.fromFile } : {}) });
      const sealer = await sealerFor(dir, ctx.keys);
      if (sealer.keyCreated) ctx.io.err(`created master ${sealer.description} in the ${ctx.keys.location().where}`);
      await refuseGitSourced(dir);
      const result = await setSecretValue(dir, name, key, value, sealer);
      const file = displayPath(result.file);
      ctx.io.out(`secret/${name} key "${key}" sealed ${result.created ? `into new file ${file}` : `in ${file}`}`);
      if (result.converted) ctx.io.err(`note: ${file}: converted secret/${name} to apiVersion apiary.dev/v1alpha1 to hold sealed values`);
    });

  secret
    .command('reseal')
    .description("seal every value in the directory again for the recipients file's members (after adding or removing one), all files or none; apiary:v1 values are upgraded")
    .action(async (_opts: unknown, cmd: Command) => {
      const { dir, dirDisplay } = ctx.locations(cmd);
      const { resealDirectory } = await import('../../manifests/reseal.js');
      await refuseGitSourced(dir);
      reportReseal(ctx, await resealDirectory(dir, ctx.keys, dirDisplay), dirDisplay);
    });

  secret
    .command('get')
    .description('print a value (or every key as KEY=value)')
    .argument('<NAME>', 'secret name')
    .argument('[KEY]', 'key within the secret')
    .action(async (name: string, key: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const { secret: resource } = await findSecret(await runningManifestDir(dir, stateDir), name);
      const entries = await openSecret(resource, ctx.keys);
      const wanted = key === undefined ? [...entries.values()].sort((a, b) => a.key.localeCompare(b.key)) : [entries.get(key)];
      if (key !== undefined && wanted[0] === undefined) throw new ApiaryError('SecretKeyNotFound', `secret "${name}" has no key "${key}"`);
      for (const entry of wanted) if (entry?.error) throw entry.error;
      for (const entry of wanted) {
        if (entry?.value === undefined) continue;
        // Exactly the value, then one newline, even when the value ends in one.
        ctx.io.out(`${key === undefined ? `${entry.key}=` : ''}${entry.value.reveal()}\n`);
      }
    });

  secret
    .command('list')
    .description('list secrets: keys, form (sealed/plain), which servers use them, whether they decrypt here')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { output: string }, cmd: Command) => {
      const { dir, stateDir } = ctx.locations(cmd);
      const all = await loadDirectory(await runningManifestDir(dir, stateDir));
      const rows = [];
      for (const r of all.resources) {
        if (r.kind !== 'Secret') continue;
        rows.push(await summarizeSecret(r, all.resources, ctx.keys));
      }
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify(rows, null, 2));
        return;
      }
      if (rows.length === 0) {
        ctx.io.err('no secrets found');
        return;
      }
      ctx.io.out(
        table(
          ['NAME', 'KEYS', 'FORM', 'USED BY', 'DECRYPTS'],
          rows.map((r) => [r.name, r.keys.join(',') || '<none>', r.form, r.usedBy.join(',') || '<none>', r.decrypts]),
        ),
      );
    });

  secret
    .command('delete')
    .description('delete a secret, or one key of it; says which servers use it')
    .argument('<NAME>', 'secret name')
    .argument('[KEY]', 'delete only this key')
    .action(async (name: string, key: string | undefined, _opts: unknown, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      const before = await loadDirectory(dir);
      await refuseGitSourced(dir);
      const result = await deleteSecret(dir, name, key);
      const file = displayPath(result.file);
      ctx.io.out(
        key === undefined
          ? `secret/${name} deleted from ${file}${result.fileDeleted ? ' (file removed)' : ''}`
          : `secret/${name} key "${key}" deleted from ${file}`,
      );
      const warning = usersWarning(serversUsingSecret(before.resources, name), name);
      if (warning !== undefined) ctx.io.err(`warning: ${warning}`);
    });
}
