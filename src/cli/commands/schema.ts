import type { Command } from 'commander';
import { explain, type Explanation } from '../../manifests/explain.js';
import { manifestJsonSchema } from '../../api/jsonschema.js';
import { API_GROUP_VERSION } from '../../api/names.js';
import type { CliContext } from '../context.js';
import { paint, type Io } from '../io.js';

export function registerSchema(program: Command, ctx: CliContext): void {
  program
    .command('schema')
    .description('print the JSON Schema of apiary manifests (for editors and yaml-language-server)')
    .action(() => {
      ctx.io.out(JSON.stringify(manifestJsonSchema(), null, 2));
    });

  program
    .command('explain')
    .description('document a manifest field, as kubectl explain does: e.g. mcpserver.spec.env.valueFrom')
    .argument('<KIND[.FIELD...]>', 'mcpserver, secret, or a path into one (arrays are walked through: mcpserver.spec.env.name)')
    .option('--api-version <VERSION>', `the Secret flavour to explain: ${API_GROUP_VERSION} or v1`, API_GROUP_VERSION)
    .option('-o, --output <format>', 'text or json', 'text')
    .action((target: string, opts: { apiVersion: string; output: string }) => {
      const explanation = explain(target, opts.apiVersion);
      ctx.io.out(opts.output === 'json' ? JSON.stringify(explanation, null, 2) : formatExplanation(ctx.io, explanation));
    });
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((line) => by + line)
    .join('\n');
}

export function formatExplanation(io: Io, e: Explanation): string {
  const lines = [`KIND:     ${e.kind}`, `VERSION:  ${e.apiVersion}`, ''];
  const field = e.path.split('.').slice(1).at(-1);
  if (field !== undefined) lines.push(`FIELD:    ${field} <${e.type}>${e.required ? ' -required-' : ''}`, '');
  lines.push('DESCRIPTION:', indent(e.description ?? '<empty>', '  '));
  if (e.allowed !== undefined) lines.push('', `ALLOWED:  ${e.allowed.join(', ')}`);
  if (e.fields.length > 0) {
    lines.push('', 'FIELDS:');
    const width = Math.max(...e.fields.map((f) => f.name.length));
    for (const f of e.fields) {
      lines.push(`  ${paint(io, 'bold', f.name)}${' '.repeat(width - f.name.length + 2)}<${f.type}>${f.required ? ' -required-' : ''}`);
      if (f.description !== undefined) lines.push(indent(f.description, '    '));
      lines.push('');
    }
    lines.pop();
  }
  return lines.join('\n');
}
