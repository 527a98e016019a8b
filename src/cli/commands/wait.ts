import type { Command } from 'commander';
import { kindLower } from '../../api/names.js';
import { matchesSelector, parseSelector, type Selector } from '../../manifests/selector.js';
import { findCondition } from '../../api/status.js';
import { ApiaryError } from '../../errors.js';
import { requireDuration } from '../../util/duration.js';
import { isCurrent, readStateView, type ObjectView, type StateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { kindLabel } from '../format.js';
import { namedTargets, type Target } from '../targets.js';

export type WaitFor =
  | { type: 'condition'; condition: string; status: 'True' | 'False' | 'Unknown' }
  | { type: 'phase'; phase: string }
  | { type: 'delete' };

export function parseFor(text: string): WaitFor {
  const condition = /^condition=([A-Za-z]+)(?:=(true|false|unknown))?$/i.exec(text);
  if (condition) {
    const value = (condition[2] ?? 'true').toLowerCase();
    return { type: 'condition', condition: condition[1]!, status: value === 'true' ? 'True' : value === 'false' ? 'False' : 'Unknown' };
  }
  const phase = /^phase=([A-Za-z]+)$/i.exec(text);
  if (phase) return { type: 'phase', phase: phase[1]! };
  if (text.toLowerCase() === 'delete') return { type: 'delete' };
  throw new ApiaryError('Usage', `--for takes condition=NAME[=true|false], phase=PHASE or delete; got "${text}"`);
}

/**
 * Is the wait satisfied? Only by current status from a running controller (as
 * kubectl wait ignores stale generations). Deleted means gone from the manifests
 * and, once the controller has stopped it, from the state directory too.
 */
export function satisfied(view: StateView, object: ObjectView | undefined, want: WaitFor): boolean {
  if (want.type === 'delete') return object === undefined;
  if (object === undefined || !isCurrent(view, object)) return false;
  const status = object.object.status;
  if (status === undefined) return false;
  if (want.type === 'phase') return status.phase.toLowerCase() === want.phase.toLowerCase();
  const condition = findCondition(status.conditions, want.condition);
  return condition !== undefined && condition.status === want.status && condition.observedGeneration === object.object.metadata.generation;
}

/** kubectl's shapes: KIND/NAME..., KIND NAME..., KIND --all, or KIND -l SELECTOR. */
export function parseTargets(args: string[], allOfKind: boolean, selector: Selector, view: StateView): Target[] {
  const all = allOfKind || selector.length > 0;
  if (args.length === 0) throw new ApiaryError('Usage', 'name what to wait for: KIND/NAME, KIND NAME or KIND --all');
  const { kind, targets } = namedTargets(args);
  if (kind === undefined) {
    if (all) throw new ApiaryError('Usage', '--all and --selector take a kind (e.g. wait mcp --all), not KIND/NAME');
    return targets;
  }
  if (all) {
    if (targets.length > 0) throw new ApiaryError('Usage', '--all and --selector do not go together with names');
    const found = view.objects.filter((o) => o.kind === kind && matchesSelector(selector, o.object.metadata.labels)).map((o) => ({ kind, name: o.name }));
    if (found.length === 0) throw new ApiaryError('NotFound', `no ${kindLower(kind)}s found${selector.length > 0 ? ' matching the selector' : ''}`);
    return found;
  }
  if (targets.length === 0) throw new ApiaryError('Usage', `name the ${kind} to wait for, or use --all`);
  return targets;
}

/** What a target is doing now, for a timeout message. */
function currently(view: StateView, object: ObjectView | undefined, want: WaitFor): string {
  if (view.controller === undefined && want.type !== 'delete') return 'no apiary controller is running for this state directory';
  if (object === undefined) return 'not found';
  if (object.errors.length > 0) return `invalid: ${object.errors[0]}`;
  const status = object.object.status;
  if (status === undefined) return 'no status yet';
  if (want.type === 'delete') return `still ${object.orphan ? 'being deleted' : 'declared'} (phase ${status.phase})`;
  if (!isCurrent(view, object)) return 'the controller has not yet observed the latest change';
  const ready = findCondition(status.conditions, want.type === 'condition' ? want.condition : 'Ready');
  const detail = status.message ?? ready?.message;
  return `phase ${status.phase}${ready ? `, ${ready.type}=${ready.status}` : ''}${detail ? `: ${detail}` : ''}`;
}

function describeWant(want: WaitFor): string {
  if (want.type === 'delete') return 'deleted';
  return want.type === 'phase' ? `phase=${want.phase}` : `condition met: ${want.condition}=${want.status}`;
}

export function registerWait(program: Command, ctx: CliContext): void {
  program
    .command('wait')
    .description('wait until resources meet a condition, reach a phase or are deleted; exit 0 when all are, 1 on timeout')
    .argument('<TARGET...>', 'KIND/NAME..., KIND NAME..., KIND --all or KIND -l SELECTOR (e.g. mcpserver/github, mcp --all)')
    .requiredOption('--for <CONDITION>', 'condition=Ready[=false], phase=Stuck or delete')
    .option('--all', 'every resource of the kind')
    .option('-l, --selector <SELECTOR>', 'every resource of the kind whose labels match, e.g. team=tools')
    .option('--timeout <DURATION>', 'how long to wait', '30s')
    .action(async (args: string[], opts: { for: string; timeout: string; all?: boolean; selector?: string }, cmd: Command) => {
      const want = parseFor(opts.for);
      const selector = parseSelector(opts.selector ?? '');
      const timeoutMs = requireDuration(opts.timeout, '--timeout');
      const { dir, stateDir } = ctx.locations(cmd);
      const started = Date.now();
      const deadline = started + timeoutMs;
      const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
      let frame = 0;
      let view = await readStateView(dir, stateDir);
      const pending = parseTargets(args, opts.all === true, selector, view);
      const what = pending.length === 1 ? kindLabel(pending[0]!.kind, pending[0]!.name) : `${pending.length} resources`;
      try {
        for (;;) {
          const find = (t: Target): ObjectView | undefined => view.objects.find((o) => o.kind === t.kind && o.name === t.name);
          for (const target of [...pending]) {
            if (!satisfied(view, find(target), want)) continue;
            ctx.io.status(undefined);
            ctx.io.out(`${kindLabel(target.kind, target.name)} ${describeWant(want)}`);
            pending.splice(pending.indexOf(target), 1);
          }
          if (pending.length === 0) return;
          if (Date.now() >= deadline) {
            ctx.io.status(undefined);
            for (const target of pending) {
              ctx.io.err(`timed out after ${opts.timeout} waiting for ${kindLabel(target.kind, target.name)} ${opts.for} (${currently(view, find(target), want)})`);
            }
            ctx.exitCode = 1;
            return;
          }
          if (Date.now() - started > 1000) {
            ctx.io.status(`${frames[frame++ % frames.length]} waiting for ${what} ${opts.for} (${Math.floor((Date.now() - started) / 1000)}s)`);
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
          view = await readStateView(dir, stateDir);
        }
      } finally {
        if (Date.now() - started > 1000) ctx.io.status(undefined);
      }
    });
}
