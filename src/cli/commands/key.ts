import type { Command } from 'commander';
import { createKeyFile, KEYRING_SERVICE } from '../../crypto/keys.js';
import { recipientOf } from '../../crypto/age.js';
import { refuseGitSourced } from '../../source/directory.js';
import type { CliContext } from '../context.js';
import { reportReseal } from './secret.js';

export function registerKey(program: Command, ctx: CliContext): void {
  const key = program.command('key').description("the master key that seals secret values, and this machine's age identity for values sealed to recipients");

  key
    .command('init')
    .description('create the master key (in the OS keyring, or with --file in an owner-only key file)')
    .option('--file <PATH>', 'create a key file instead (for machines without a keyring); use it with APIARY_KEY_FILE')
    .action(async (opts: { file?: string }) => {
      const { io } = ctx;
      if (opts.file !== undefined) {
        const master = await createKeyFile(opts.file);
        io.out(`created key ${master.id} in ${opts.file} (mode 0600)`);
        io.out(`use it with: export APIARY_KEY_FILE=${opts.file}`);
        return;
      }
      const { key: master, created } = await ctx.keys.getOrCreate();
      const where = ctx.keys.location().where;
      io.out(created ? `created key ${master.id} in the ${where}` : `key ${master.id} already exists in the ${where}`);
    });

  key
    .command('export-public')
    .description("print this machine's age recipient (age1...), creating its identity on first use: a member adds it to the recipients file, then runs apiary secret reseal")
    .action(async () => {
      const { identity, created } = await ctx.keys.identity.getOrCreate();
      if (created) ctx.io.err(`created this machine's age identity in the ${ctx.keys.identity.source().where}`);
      ctx.io.out(await recipientOf(identity));
    });

  key
    .command('rotate')
    .description("give this machine a new age identity: its line in the recipients file replaced, every value resealed, then the old identity dropped; all or nothing (a re-run finishes an interrupted one)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { dir, dirDisplay } = ctx.locations(cmd);
      const { rotateIdentity } = await import('../../manifests/reseal.js');
      await refuseGitSourced(dir);
      const result = await rotateIdentity(dir, ctx.keys, dirDisplay);
      reportReseal(ctx, result, dirDisplay);
      if (result.from !== undefined && result.to !== undefined) ctx.io.out(`this machine is now ${result.to} (was ${result.from}); recipients file updated: commit it with the resealed files`);
    });

  key
    .command('status')
    .description('show which key backend is in use, the key id and where the key lives')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { output: string }) => {
      const location = ctx.keys.location();
      const master = await ctx.keys.get();
      const status = {
        backend: location.backend,
        keyId: master.id,
        location: location.where,
        ...(location.backend === 'keyring' ? { service: KEYRING_SERVICE, account: ctx.keys.account } : {}),
      };
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify(status, null, 2));
      } else {
        ctx.io.out(`backend:  ${status.backend}\nkey id:   ${status.keyId}\nlocation: ${status.location}`);
      }
    });
}
