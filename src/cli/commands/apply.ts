import type { Command } from 'commander';
import { kindLower } from '../../api/names.js';
import { secretForms } from '../../crypto/secret-data.js';
import { ApiaryError, messageOf } from '../../errors.js';
import { apply, planChanges, readInput, type InputRead } from '../../manifests/apply.js';
import { diffChanges } from '../../manifests/diff.js';
import { formatManifestError, type ManifestError } from '../../manifests/errors.js';
import { loadDirectory } from '../../manifests/loader.js';
import { deleteDocuments } from '../../manifests/resource-edits.js';
import { serversUsingSecret } from '../../manifests/references.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { displayPath } from '../paths.js';
import { readStream } from '../secret-input.js';
import { namedTargets } from '../targets.js';
import { usersWarning } from '../../manifests/secret-summary.js';
import { refuseGitSourced } from '../../source/directory.js';

async function readChecked(ctx: CliContext, path: string, dir: string, skip?: ManifestError['code']): Promise<InputRead> {
  const input = await readInput(path, dir, (limit) => readStream(process.stdin, limit));
  for (const w of input.warnings) if (skip === undefined || w.code !== skip) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${formatManifestError(w)}`));
  if (input.errors.length > 0) {
    for (const e of input.errors) ctx.io.err(formatManifestError(e));
    throw new ApiaryError('ManifestInvalid', `${input.errors.length} error(s) in ${path}; nothing was written`);
  }
  if (input.documents.length === 0) throw new ApiaryError('ManifestInvalid', `no resources found in ${path}`);
  return input;
}

export function registerApply(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description('write manifests into the manifest directory (validated first: nothing is written if anything is invalid)')
    .requiredOption('-f, --filename <PATH>', 'a file, a folder, or - for stdin')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { filename: string; output: string }, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      // Plain values are worth a warning where they land, not where they came from.
      const input = await readChecked(ctx, opts.filename, dir, 'PlaintextValues');
      await refuseGitSourced(dir);
      const results = await apply(dir, input.documents);
      for (const r of results) {
        const resource = input.documents.find((d) => d.kind === r.kind && d.name === r.name)?.resource;
        if (resource?.kind !== 'Secret' || ![...secretForms(resource).values()].some((form) => form !== 'sealed')) continue;
        const file = displayPath(r.file);
        ctx.io.err(paint(ctx.io, 'yellow', `warning: secret/${r.name} holds unencrypted values in ${file}; run "apiary seal ${file}" to encrypt them`));
      }
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify(results.map((r) => ({ kind: r.kind, name: r.name, action: r.action, file: displayPath(r.file) })), null, 2));
        return;
      }
      for (const r of results) ctx.io.out(`${kindLower(r.kind)}/${r.name} ${r.action}`);
    });

  program
    .command('diff')
    .description('show what apply would change and what would happen; exit 0 when nothing differs, 1 when something does, 2 on error')
    .requiredOption('-f, --filename <PATH>', 'a file, a folder, or - for stdin')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { filename: string; output: string }, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      try {
        const input = await readChecked(ctx, opts.filename, dir);
        const loaded = await loadDirectory(dir);
        const changes = await planChanges(dir, input.documents, loaded);
        const resources = [...loaded.resources.filter((r) => !input.documents.some((d) => d.key === `${r.kind}/${r.name}`)), ...input.documents.map((d) => d.resource)];
        const entries = await diffChanges(changes, (secret) => serversUsingSecret(resources, secret), ctx.keys);
        const differs = entries.some((e) => e.state !== 'unchanged');
        if (opts.output === 'json') {
          ctx.io.out(JSON.stringify(entries.map(({ key: _key, ...e }) => e), null, 2));
        } else {
          for (const e of entries) if (e.patch) ctx.io.out(colorPatch(ctx, e.patch));
          for (const e of entries) ctx.io.out(`${kindLower(e.kind)}/${e.name}: ${e.consequence}`);
        }
        ctx.exitCode = differs ? 1 : 0;
      } catch (err) {
        // kubectl's convention: 1 means "differs", so any error is 2; the top-level catch prints it.
        const e = err instanceof ApiaryError ? err : new ApiaryError('Io', messageOf(err), { cause: err });
        throw new ApiaryError(e.code, e.message, { cause: err, hints: e.hints, exitCode: 2 });
      }
    });

  program
    .command('delete')
    .description('remove resources from the manifest directory (by -f PATH, KIND NAME... or KIND/NAME...)')
    .argument('[TARGETS...]', 'KIND NAME... (e.g. mcp github gitlab) or KIND/NAME... (e.g. mcp/github secret/github)')
    .option('-f, --filename <PATH>', 'delete what this file or folder declares')
    .option('--ignore-not-found', 'do not fail when a resource is not declared')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (args: string[], opts: { filename?: string; ignoreNotFound?: boolean; output: string }, cmd: Command) => {
      const { dir } = ctx.locations(cmd);
      let targets;
      if (opts.filename !== undefined) {
        if (args.length > 0) throw new ApiaryError('Usage', 'use either -f PATH or KIND NAME, not both');
        targets = (await readChecked(ctx, opts.filename, dir)).documents.map((d) => ({ kind: d.kind, name: d.name }));
      } else {
        targets = namedTargets(args).targets;
        if (targets.length === 0) throw new ApiaryError('Usage', 'delete needs -f PATH, KIND NAME... or KIND/NAME... (e.g. delete mcpserver github)');
      }
      const before = await loadDirectory(dir);
      await refuseGitSourced(dir);
      const deleted = await deleteDocuments(dir, targets, { ignoreNotFound: opts.ignoreNotFound === true });
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify(deleted.map((d) => ({ kind: d.kind, name: d.name, file: displayPath(d.file), fileDeleted: d.fileDeleted })), null, 2));
      } else {
        for (const d of deleted) ctx.io.out(`${kindLower(d.kind)}/${d.name} deleted from ${displayPath(d.file)}${d.fileDeleted ? ' (file removed)' : ''}`);
      }
      for (const d of deleted) {
        if (d.kind !== 'Secret') continue;
        const warning = usersWarning(serversUsingSecret(before.resources, d.name), d.name);
        if (warning) ctx.io.err(paint(ctx.io, 'yellow', `warning: ${warning}`));
      }
    });
}

function colorPatch(ctx: CliContext, patch: string): string {
  if (!ctx.io.color) return patch.trimEnd();
  return patch
    .trimEnd()
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? paint(ctx.io, 'green', l) : l.startsWith('-') && !l.startsWith('---') ? paint(ctx.io, 'red', l) : l))
    .join('\n');
}
