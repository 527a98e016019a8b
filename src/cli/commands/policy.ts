/**
 * `apiary policy check`: the decision the gateway would take for one caller
 * and one tool (prompt, resource), and why: the rule, its policy, file and
 * line, or the default that applied. Pure over the manifests, so it needs no
 * controller; exit 0 allowed, 1 denied.
 */
import { Option, type Command } from 'commander';
import { ACCESS_KINDS, type AccessKind, type AccessRequest, type Decision, type Subject } from '../../api/access.js';
import { ApiaryError } from '../../errors.js';
import { accessPolicySet, authModeOf } from '../../manifests/access.js';
import type { Resource } from '../../manifests/resource.js';
import { readStateView, type StateView } from '../../state/view.js';
import { decisionReason, subjectWords } from '../access-format.js';
import { outputOption, type CliContext } from '../context.js';
import { escapeTerminalLines } from '../escape.js';
import { paint } from '../io.js';

interface CheckOptions {
  user?: string;
  group: string[];
  token?: string;
  kind: AccessKind;
  output: 'text' | 'json';
}

const VERB: Record<AccessKind, [string, string]> = { tool: ['may call', 'may not call'], prompt: ['may get', 'may not get'], resource: ['may read', 'may not read'] };

export function registerPolicy(program: Command, ctx: CliContext): void {
  const policy = program.command('policy').description('access policies: explain what a caller may use');
  policy
    .command('check')
    .description('explain whether a caller may use a tool (prompt, resource) of a server, by which rule, policy file and line; exit 0 allowed, 1 denied')
    .argument('<SERVER>', 'the MCPServer')
    .argument('<NAME>', 'the tool (or prompt name, or resource URI with --kind)')
    .option('--user <USER>', 'the caller, as an OpenID token names it')
    .addOption(new Option('--group <GROUP>', "one of the caller's groups (repeat for more)").argParser((value: string, previous: string[]) => [...previous, value]).default([], 'none'))
    .option('--token <TOKEN>', 'the caller holds the local bearer token: --token local')
    .option('--kind <KIND>', 'tool, prompt or resource', 'tool')
    .addOption(outputOption(policy, ['text', 'json'], 'text'))
    .action(async (server: string, name: string, opts: CheckOptions, cmd: Command) => {
      const subject = subjectOf(opts);
      const kind = kindOf(opts.kind);
      const { dir, stateDir, dirDisplay } = ctx.locations(cmd);
      const resources = accessResources(await readStateView(dir, stateDir), dirDisplay);
      const mode = authModeOf(resources);
      const request: AccessRequest = { server, kind, name };
      const decision = accessPolicySet(resources).decide(subject, request);
      const notes = checkNotes(subject, mode, server, resources, dirDisplay);
      if (opts.output === 'json') ctx.io.out(JSON.stringify({ allowed: decision.effect === 'Allow', ...decision, mode, subject, request, notes }, null, 2));
      else printDecision(ctx, decision, subject, request, mode, notes);
      ctx.exitCode = decision.effect === 'Allow' ? 0 : 1;
    });
}

function subjectOf(opts: CheckOptions): Subject {
  if (opts.user !== undefined && opts.token !== undefined) throw new ApiaryError('Usage', 'give --user or --token local, not both: a caller is one or the other');
  if (opts.token !== undefined) {
    if (opts.token !== 'local') throw new ApiaryError('Usage', `--token takes "local" (the state directory's bearer token); got "${opts.token}"`);
    if (opts.group.length > 0) throw new ApiaryError('Usage', '--group goes with --user: the local token has no groups');
    return { groups: [], authenticated: false, token: 'local' };
  }
  if (opts.user === undefined || opts.user === '') throw new ApiaryError('Usage', 'who is asking? give --user USER [--group GROUP]... or --token local');
  return { user: opts.user, groups: opts.group, authenticated: true };
}

function kindOf(text: string): AccessKind {
  if (!(ACCESS_KINDS as readonly string[]).includes(text)) throw new ApiaryError('Usage', `--kind takes ${ACCESS_KINDS.join(', ')}; got "${text}"`);
  return text as AccessKind;
}

/**
 * The directory's resources, refused when a Gateway or AccessPolicy is
 * invalid: a decision without the broken policy could say "allowed" where
 * the fixed one says "denied".
 */
function accessResources(view: StateView, dirDisplay: string): Resource[] {
  if (view.manifestsError !== undefined) throw new ApiaryError('NotFound', view.manifestsError);
  const broken = view.objects.filter((o) => (o.kind === 'Gateway' || o.kind === 'AccessPolicy') && o.errors.length > 0);
  if (broken.length > 0) {
    throw new ApiaryError('ManifestInvalid', `the access settings in ${dirDisplay} are invalid; no decision until they are fixed:`, { hints: broken.flatMap((o) => o.errors) });
  }
  return view.objects.flatMap((o) => (o.resource !== undefined ? [o.resource] : []));
}

/** What makes a decision easy to misread: a user under a mode with no users, a server nobody declares. */
function checkNotes(subject: Subject, mode: string, server: string, resources: readonly Resource[], dirDisplay: string): string[] {
  const notes: string[] = [];
  if (subject.user !== undefined && mode !== 'oidc') notes.push(`auth mode is ${mode}: no caller is a user until the Gateway's spec.auth.mode is oidc`);
  if (subject.token === 'local' && mode === 'none') notes.push('auth mode is none: callers bring no token at all');
  if (!resources.some((r) => r.kind === 'MCPServer' && r.name === server)) notes.push(`${dirDisplay} declares no MCPServer "${server}"`);
  return notes;
}

function printDecision(ctx: CliContext, d: Decision, subject: Subject, request: AccessRequest, mode: string, notes: readonly string[]): void {
  const allowed = d.effect === 'Allow';
  const label = allowed ? paint(ctx.io, 'green', 'allowed') : paint(ctx.io, 'red', 'denied');
  // Names come from the command line and the manifests: escaped, as every human output (the colour is ours).
  const words = escapeTerminalLines(`${subjectWords(subject)} ${VERB[request.kind][allowed ? 0 : 1]} ${request.kind} ${request.name} on ${request.server}`);
  ctx.io.out(`${label}: ${words}\n  ${escapeTerminalLines(decisionReason(d, mode))}`);
  for (const note of notes) ctx.io.err(paint(ctx.io, 'yellow', `note: ${escapeTerminalLines(note)}`));
}
