import type { Command } from 'commander';
import { kindFromAlias, type Kind } from '../../api/names.js';
import { findCondition } from '../../api/status.js';
import { ApiaryError } from '../../errors.js';
import { isCurrent, readStateView, type ObjectView, type StateView } from '../../state/view.js';
import type { CliContext } from '../context.js';
import { kindLabel } from '../format.js';

export type WaitFor = { type: 'condition'; condition: string; status: 'True' | 'False' | 'Unknown' } | { type: 'phase'; phase: string };

export function parseFor(text: string): WaitFor {
  const condition = /^condition=([A-Za-z]+)(?:=(true|false|unknown))?$/i.exec(text);
  if (condition) {
    const value = (condition[2] ?? 'true').toLowerCase();
    return { type: 'condition', condition: condition[1]!, status: value === 'true' ? 'True' : value === 'false' ? 'False' : 'Unknown' };
  }
  const phase = /^phase=([A-Za-z]+)$/i.exec(text);
  if (phase) return { type: 'phase', phase: phase[1]! };
  throw new ApiaryError('Usage', `--for takes condition=NAME[=true|false] or phase=PHASE; got "${text}"`);
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new ApiaryError('Usage', `invalid duration "${text}" (use e.g. 500ms, 30s, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

/** Is the wait satisfied? Only by current status from a running controller (as kubectl wait ignores stale generations). */
export function satisfied(view: StateView, object: ObjectView | undefined, want: WaitFor): boolean {
  if (object === undefined || !isCurrent(view, object)) return false;
  const status = object.object.status;
  if (status === undefined) return false;
  if (want.type === 'phase') return status.phase.toLowerCase() === want.phase.toLowerCase();
  const condition = findCondition(status.conditions, want.condition);
  return condition !== undefined && condition.status === want.status && condition.observedGeneration === object.object.metadata.generation;
}

export function registerWait(program: Command, ctx: CliContext): void {
  program
    .command('wait')
    .description('wait until a resource meets a condition or phase; exit 0 when met, 1 on timeout')
    .argument('<KIND/NAME>', 'e.g. mcpserver/github')
    .requiredOption('--for <CONDITION>', 'condition=Ready[=false] or phase=Stuck')
    .option('--timeout <DURATION>', 'how long to wait', '30s')
    .action(async (target: string, opts: { for: string; timeout: string }, cmd: Command) => {
      const [kindText, name] = target.split('/');
      const kind: Kind | undefined = kindText ? kindFromAlias(kindText) : undefined;
      if (kind === undefined || !name) throw new ApiaryError('Usage', `expected KIND/NAME (e.g. mcpserver/github); got "${target}"`);
      const want = parseFor(opts.for);
      const timeoutMs = parseDuration(opts.timeout);
      const { dir, stateDir } = ctx.locations(cmd);
      const started = Date.now();
      const deadline = started + timeoutMs;
      const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
      let frame = 0;
      let view = await readStateView(dir, stateDir);
      try {
        for (;;) {
          const object = view.objects.find((o) => o.kind === kind && o.name === name);
          if (satisfied(view, object, want)) {
            ctx.io.out(`${kindLabel(kind, name)} ${want.type === 'phase' ? `phase=${want.phase}` : `condition met: ${want.condition}=${want.status}`}`);
            return;
          }
          if (Date.now() >= deadline) {
            const why = view.controller === undefined ? ' (no apiary controller is running for this state directory)' : object === undefined ? ' (not found)' : '';
            ctx.io.err(`timed out after ${opts.timeout} waiting for ${kindLabel(kind, name)} ${opts.for}${why}`);
            ctx.exitCode = 1;
            return;
          }
          if (Date.now() - started > 1000) {
            ctx.io.status(`${frames[frame++ % frames.length]} waiting for ${kindLabel(kind, name)} ${opts.for} (${Math.floor((Date.now() - started) / 1000)}s)`);
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
          view = await readStateView(dir, stateDir);
        }
      } finally {
        if (Date.now() - started > 1000) ctx.io.status(undefined);
      }
    });
}
