import type { Command } from 'commander';
import { manifestJsonSchema } from '../../api/jsonschema.js';
import type { CliContext } from '../context.js';

export function registerSchema(program: Command, ctx: CliContext): void {
  program
    .command('schema')
    .description('print the JSON Schema of apiary manifests (for editors and yaml-language-server)')
    .action(() => {
      ctx.io.out(JSON.stringify(manifestJsonSchema(), null, 2));
    });
}
