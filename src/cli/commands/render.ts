import type { Command } from 'commander';
import { stringify } from 'yaml';
import { openSecret } from '../../crypto/secret-data.js';
import { ApiaryError } from '../../errors.js';
import { renderKubernetes } from '../../kubernetes/render.js';
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
      if (opts.output === 'json') {
        ctx.io.out(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rendered.objects }, null, 2));
      } else {
        const docs = rendered.objects.map((o) => stringify(o).trimEnd());
        const refs = rendered.secretReferences.map(
          (s) => `# Secret ${s.name} (keys: ${s.keys.join(', ') || 'none'}): values not printed. Create it in the cluster another way (SOPS, Sealed Secrets), or render with --include-secret-values.`,
        );
        ctx.io.out([...refs, ...docs.map((d) => `---\n${d}`)].join('\n'));
      }
      if (rendered.problems.some((p) => !p.skipped)) ctx.exitCode = 1;
    });
}
