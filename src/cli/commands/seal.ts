import type { Command } from 'commander';
import { dirname, resolve, sep } from 'node:path';
import { sealerFor } from '../../crypto/sealer.js';
import { sealFile } from '../../manifests/secret-edits.js';
import { refuseGitSourced } from '../../source/directory.js';
import type { CliContext } from '../context.js';

export function registerSeal(program: Command, ctx: CliContext): void {
  program
    .command('seal')
    .description('rewrite stringData/data values into encryptedData in place, keeping comments')
    .argument('<FILE...>', 'manifest files to seal')
    .action(async (files: string[], _opts: unknown, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      const sealer = await sealerFor(dir, ctx.keys);
      if (sealer.keyCreated) ctx.io.err(`created master ${sealer.description} in the ${ctx.keys.location().where}`);
      for (const file of files) {
        const path = resolve(file);
        // Files inside the manifest directory share its lock with `secret set`.
        const lockDir = path.startsWith(dir + sep) ? dir : dirname(path);
        await refuseGitSourced(lockDir);
        const count = await sealFile(path, sealer, lockDir);
        ctx.io.out(count === 0 ? `${file}: nothing to seal` : `${file}: sealed ${count} value(s) with ${sealer.description}`);
      }
    });
}
