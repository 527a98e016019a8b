import { Option, type Command } from 'commander';
import { subjectLabel, type StoredAuditRecord } from '../../api/audit.js';
import { auditFilter, parseSince } from '../../state/audit-page.js';
import { ApiaryError } from '../../errors.js';
import { followAudit, readAuditRecords, verifyAudit } from '../../state/audit-read.js';
import { StateLayout } from '../../state/layout.js';
import type { CliContext } from '../context.js';
import { escapeTerminal } from '../escape.js';

interface ReadOptions {
  follow?: boolean;
  server?: string;
  user?: string;
  since?: string;
  output: 'text' | 'json';
}

export function registerAudit(program: Command, ctx: CliContext): void {
  const audit = program
    .command('audit')
    .description('print the audit log: who called which tool, prompt or resource, what was decided, how it ended (argument names and sizes, never values)')
    .option('-f, --follow', 'keep printing new records (across rotation)')
    .option('--server <NAME>', 'only calls to this server')
    .option('--user <USER>', 'only calls by this user (or (token), (none), (unauthenticated))')
    .option('--since <DURATION|TIME>', 'only records from the last DURATION (10m, 1h30m) or since TIME (ISO 8601)')
    .addOption(new Option('-o, --output <format>', 'output format: text, or json (one stored record per line)').choices(['text', 'json']).default('text'))
    .action(async (opts: ReadOptions, cmd: Command) => {
      const layout = new StateLayout(ctx.locations(cmd).stateDir);
      const keep = filterOf(opts, Date.now());
      const print = (r: StoredAuditRecord): void => ctx.io.out(opts.output === 'json' ? JSON.stringify(r) : lineOf(r));
      const records = await readAuditRecords(layout);
      for (const record of records) if (keep(record)) print(record);
      if (opts.follow !== true) return;
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      process.once('SIGTERM', () => (stop = true));
      for await (const record of followAudit(layout, records.at(-1)?.seq ?? 0, { pollMs: 200, stopped: () => stop })) if (keep(record)) print(record);
    });
  audit
    .command('verify')
    .description('check the whole chain of the audit log: exit 1 naming the first record (file and line) that was changed, removed or cut')
    .action(async (_opts: unknown, cmd: Command) => {
      const layout = new StateLayout(ctx.locations(cmd).stateDir);
      const result = await verifyAudit(layout);
      if (!result.ok) {
        throw new ApiaryError('AuditInvalid', `the audit log failed verification: ${result.message}`, { hints: [`The files are in ${layout.auditDir}.`] });
      }
      const span = result.records === 0 ? 'no records yet' : `${result.records} records (${result.first}..${result.last}) in ${result.files} file${result.files === 1 ? '' : 's'}`;
      const late = result.unanchored > 0 ? `; the last ${result.unanchored} are not in the head yet (written within the last second, or before a crash)` : '';
      ctx.io.out(`audit log verified: ${span}${late}`);
    });
}

function filterOf(opts: ReadOptions, now: number): (r: StoredAuditRecord) => boolean {
  return auditFilter({ server: opts.server, user: opts.user, since: opts.since === undefined ? undefined : sinceOf(opts.since, now) });
}

/** `--since 10m` (back from now) or `--since 2026-12-04T10:00:00Z`. */
function sinceOf(text: string, now: number): number {
  const since = parseSince(text, now);
  if (since === undefined) throw new ApiaryError('Usage', `--since: "${text}" is neither a duration (10m, 1h30m) nor a time (2026-12-04T10:00:00Z)`);
  return since;
}

/** One record on one line; every field a client chose (names, ids) is escaped. */
function lineOf(r: StoredAuditRecord): string {
  const decision = r.rule === undefined ? r.decision : `${r.decision}(${r.rule})`;
  const outcome = r.code === undefined ? r.outcome : `${r.outcome}(${r.code})`;
  const args = (r.args ?? []).map((a) => `${a.name}:${a.bytes}B`).join(',') + (r.argsOmitted === undefined ? '' : `,+${r.argsOmitted}`);
  const cells = [r.time, subjectLabel(r.subject), r.server, r.name === undefined ? r.method : `${r.method} ${r.name}`, decision, outcome, `${r.durationMs}ms`, args];
  return cells.map((c) => escapeTerminal(c)).join('  ').trimEnd();
}
