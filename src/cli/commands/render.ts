import type { Command } from 'commander';
import { stringify } from 'yaml';
import { openSecret } from '../../crypto/secret-data.js';
import { ApiaryError } from '../../errors.js';
import { renderKubernetes, type KubeObject } from '../../kubernetes/render.js';
import { loadDirectory } from '../../manifests/loader.js';
import { formatManifestError } from '../../manifests/errors.js';
import { runningManifestDir } from '../../source/directory.js';
import type { CliContext } from '../context.js';
import { paint } from '../io.js';
import { checkNamespace } from '../namespace.js';

export function registerRender(program: Command, ctx: CliContext): void {
  program
    .command('render')
    .description('print the objects the manifest directory becomes on another runtime (for Flux, Argo CD or kubectl apply), applying nothing')
    .requiredOption('--runtime <RUNTIME>', 'kubernetes')
    .option('-n, --namespace <NS>', 'set metadata.namespace on every object')
    .option('--include-secret-values', 'render Secrets whole, their values decrypted with this machine\'s key (otherwise only their names and keys, as comments)')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action(async (opts: { runtime: string; namespace?: string; includeSecretValues?: boolean; output: string }, cmd: Command) => {
      if (opts.runtime !== 'kubernetes') throw new ApiaryError('Usage', `--runtime must be kubernetes; got "${opts.runtime}"`);
      if (opts.namespace !== undefined) checkNamespace(opts.namespace);
      const locations = ctx.locations(cmd);
      const dir = await runningManifestDir(locations.dir, locations.stateDir);
      const loaded = await loadDirectory(dir);
      const invalid = loaded.documents.filter((d) => d.errors.length > 0);
      if (invalid.length > 0) throw new ApiaryError('ManifestInvalid', `the manifest directory does not validate; nothing rendered`, { hints: invalid.flatMap((d) => d.errors.map(formatManifestError)) });
      const rendered = await renderKubernetes(loaded.resources, {
        ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
        ...(opts.includeSecretValues === true
          ? {
              secretValues: async (secret) => {
                const values: Record<string, string> = {};
                for (const entry of (await openSecret(secret, ctx.keys)).values()) {
                  if (entry.error) throw entry.error;
                  if (entry.value !== undefined) values[entry.key] = entry.value.reveal();
                }
                return values;
              },
            }
          : {}),
      });
      for (const p of rendered.problems) ctx.io.err(paint(ctx.io, p.skipped ? 'yellow' : 'red', `${p.skipped ? 'note' : 'error'}: ${p.kind.toLowerCase()}/${p.name} not rendered: ${p.message}`));
      for (const n of rendered.notes) ctx.io.err(paint(ctx.io, 'yellow', `note: ${n.kind.toLowerCase()}/${n.name}: ${n.message}`));
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rendered.objects }, null, 2));
      } else {
        // A note goes above its object too, where a reviewer of the YAML (or of a Flux repository) reads it.
        const noteOf = (o: KubeObject): string => rendered.notes.filter((n) => n.kind === o.kind && n.name === o.metadata.name).map((n) => `# ${n.message}\n`).join('');
        const docs = rendered.objects.map((o) => `${noteOf(o)}${stringify(o).trimEnd()}`);
        const refs = rendered.secretReferences.map(
          (s) => `# Secret ${s.name} (keys: ${s.keys.join(', ') || 'none'}): values not printed. Create it in the cluster another way (SOPS, Sealed Secrets), or render with --include-secret-values.`,
        );
        ctx.io.out([...refs, ...docs.map((d) => `---\n${d}`)].join('\n'));
      }
      // As kubectl apply -f with a bad document: what could be printed is, and the exit code says something was left out
      // (1: a server that should run on Kubernetes was not rendered; a hosted one, which has nothing to deploy, is only a note).
      if (rendered.problems.some((p) => !p.skipped)) ctx.exitCode = 1;
    });
}
