import type { Command } from 'commander';
import { readRecipients, recipientOf } from '../../crypto/age.js';
import { refuseGitSourced } from '../../source/directory.js';
import type { CliContext } from '../context.js';
import { reportReseal } from './secret.js';

/** `apiary recipients`: who may open the directory's values; adding or removing one reseals every value, all files or none. */
export function registerRecipients(program: Command, ctx: CliContext): void {
  const recipients = program.command('recipients').description("who may open the values sealed in the directory (its recipients file); add and remove reseal every value in the same step");

  recipients
    .command('list')
    .description('the recipients, and which one is this machine')
    .action(async (_opts: unknown, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      const listed = await readRecipients(dir);
      if (listed === undefined) {
        ctx.io.out("no recipients file: values are sealed with this machine's key (apiary recipients add AGE1... starts one)");
        return;
      }
      const me = await ctx.keys.identity.get().then(recipientOf, () => undefined);
      for (const r of listed.recipients) ctx.io.out(`${r}${r === me ? '  (this machine)' : ''}`);
    });

  recipients
    .command('add')
    .description('add a member (their apiary key export-public) and reseal every value for them too')
    .argument('<RECIPIENT>', 'an age recipient, age1...')
    .option('--comment <TEXT>', 'who it is, written after it on its line (remove accepts it in place of the recipient)')
    .action(async (recipient: string, opts: { comment?: string }, cmd: Command) => {
      const { dir, dirDisplay } = ctx.locations(cmd);
      const { changeRecipients } = await import('../../manifests/reseal.js');
      await refuseGitSourced(dir);
      const result = await changeRecipients(dir, ctx.keys, { add: { recipient, ...(opts.comment !== undefined ? { comment: opts.comment } : {}) } }, dirDisplay);
      reportReseal(ctx, result, dirDisplay);
      if (result.changed !== '') ctx.io.out(`${result.changed}; commit the recipients file with the resealed files`);
    });

  recipients
    .command('remove')
    .description("remove a member and reseal every value without them (values they could open before stay in your history: rotate what they knew)")
    .argument('<RECIPIENT>', 'the age recipient, or the comment on its line')
    .action(async (recipient: string, _opts: unknown, cmd: Command) => {
      const { dir, dirDisplay } = ctx.locations(cmd);
      const { changeRecipients } = await import('../../manifests/reseal.js');
      await refuseGitSourced(dir);
      const result = await changeRecipients(dir, ctx.keys, { remove: recipient }, dirDisplay);
      reportReseal(ctx, result, dirDisplay);
      if (result.changed !== '') ctx.io.out(`${result.changed}; commit the recipients file with the resealed files, and change the values that member knew`);
    });
}
