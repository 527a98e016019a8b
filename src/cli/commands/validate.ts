import type { Command } from 'commander';
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { ApiaryError } from '../../errors.js';
import { formatManifestError } from '../../manifests/errors.js';
import { loadDirectory, loadFile, assemble } from '../../manifests/loader.js';
import type { Io } from '../io.js';
import { paint } from '../io.js';
import { outputOption, type CliContext } from '../context.js';

export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description('check every manifest in a directory (or one file); errors as file:line:col: message')
    .argument('[PATH]', 'directory or file to check (default: --dir)')
    .addOption(outputOption(['text', 'json'], 'text'))
    .action(async (path: string | undefined, opts: { output: 'text' | 'json' }, cmd: Command) => {
      const target = path ?? ctx.locations(cmd).dirDisplay;
      ctx.exitCode = await validate(ctx.io, target, opts.output);
    });
}

export async function validate(io: Io, target: string, output: 'text' | 'json'): Promise<number> {
  const absolute = resolve(target);
  const info = await stat(absolute).catch(() => undefined);
  if (info === undefined) throw new ApiaryError('NotFound', `${target}: no such file or directory`);
  const result = info.isDirectory()
    ? await loadDirectory(absolute, target)
    : assemble(await loadFile(absolute, target), [absolute]);

  if (output === 'json') {
    io.out(
      JSON.stringify(
        {
          valid: result.errors.length === 0,
          files: result.files.length,
          resources: result.resources.map((r) => ({ kind: r.kind, name: r.name, file: r.source.file, line: r.source.line })),
          errors: result.errors,
          warnings: result.warnings,
        },
        null,
        2,
      ),
    );
  } else {
    for (const e of result.errors) io.out(`${formatManifestError(e)}`);
    for (const w of result.warnings) io.err(paint(io, 'yellow', `warning: ${formatManifestError(w)}`));
    const files = result.files.length;
    const summary = `${result.resources.length} valid resource(s) in ${files} file(s)`;
    if (result.errors.length === 0) io.err(paint(io, 'green', `${summary}; no errors`));
    else io.err(paint(io, 'red', `${result.errors.length} error(s); ${summary}`));
  }
  return result.errors.length === 0 ? 0 : 1;
}
