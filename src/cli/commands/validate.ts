import type { Command } from 'commander';
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { ApiaryError } from '../../errors.js';
import { formatManifestError } from '../../manifests/errors.js';
import { loadDirectory, loadFile, assemble } from '../../manifests/loader.js';
import { openSecret, type Openers } from '../../crypto/secret-data.js';
import type { Resource } from '../../manifests/resource.js';
import type { Io } from '../io.js';
import { paint } from '../io.js';
import { outputOption, type CliContext, type GlobalOptionSource } from '../context.js';

export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description('check every manifest in a directory (or one file); errors as file:line:col: message')
    .argument('[PATH]', 'directory or file to check (default: --dir)')
    .addOption(outputOption(program, VALIDATE_OUTPUTS, 'text'))
    .option('--decrypt', "also open every sealed value with this machine's key or age identity (APIARY_AGE_IDENTITY in a pipeline), naming each that does not open; no value is printed")
    .action((path: string | undefined, opts: ValidateOptions, cmd: Command) => runValidate(ctx, path, opts, cmd));
}

export const VALIDATE_OUTPUTS = ['text', 'json'] as const;
export interface ValidateOptions {
  output: (typeof VALIDATE_OUTPUTS)[number];
  decrypt?: boolean;
}

/** validate, once its arguments are read (by commander, or by the start-up snapshot's parser: src/cli/snapshot-argv.ts). */
export async function runValidate(ctx: CliContext, path: string | undefined, opts: ValidateOptions, cmd: GlobalOptionSource): Promise<void> {
  const target = path ?? ctx.locations(cmd).dirDisplay;
  ctx.exitCode = await validate(ctx.io, target, opts.output, opts.decrypt === true ? ctx.keys : undefined);
}

/** Every sealed value that does not open here, as file:line: message. */
async function undecryptable(resources: readonly Resource[], keys: Openers): Promise<{ file: string; line: number; message: string }[]> {
  const out: { file: string; line: number; message: string }[] = [];
  for (const r of resources) {
    if (r.kind !== 'Secret') continue;
    for (const entry of (await openSecret(r, keys)).values()) {
      if (entry.error !== undefined) out.push({ file: r.source.file, line: r.source.line, message: entry.error.message });
    }
  }
  return out;
}

export async function validate(io: Io, target: string, output: 'text' | 'json', decryptWith?: Openers): Promise<number> {
  const absolute = resolve(target);
  const info = await stat(absolute).catch(() => undefined);
  if (info === undefined) throw new ApiaryError('NotFound', `${target}: no such file or directory`);
  const result = info.isDirectory()
    ? await loadDirectory(absolute, target)
    : assemble(await loadFile(absolute, target), [absolute]);
  const closed = decryptWith === undefined ? [] : await undecryptable(result.resources, decryptWith);

  if (output === 'json') {
    io.out(
      JSON.stringify(
        {
          valid: result.errors.length === 0,
          files: result.files.length,
          resources: result.resources.map((r) => ({ kind: r.kind, name: r.name, file: r.source.file, line: r.source.line })),
          errors: result.errors,
          warnings: result.warnings,
          ...(decryptWith !== undefined ? { undecryptable: closed } : {}),
        },
        null,
        2,
      ),
    );
  } else {
    for (const e of result.errors) io.out(`${formatManifestError(e)}`);
    for (const c of closed) io.out(`${c.file}:${c.line}:1: ${c.message}`);
    for (const w of result.warnings) io.err(paint(io, 'yellow', `warning: ${formatManifestError(w)}`));
    const files = result.files.length;
    const summary = `${result.resources.length} valid resource(s) in ${files} file(s)`;
    const opened = decryptWith === undefined ? '' : closed.length === 0 ? '; every sealed value opens here' : `; ${closed.length} sealed value(s) do not open here`;
    if (result.errors.length === 0 && closed.length === 0) io.err(paint(io, 'green', `${summary}; no errors${opened}`));
    else io.err(paint(io, 'red', `${result.errors.length} error(s); ${summary}${opened}`));
  }
  return result.errors.length === 0 && closed.length === 0 ? 0 : 1;
}
