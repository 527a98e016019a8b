/**
 * All-or-nothing rewrites of several files in the manifest directory (reseal,
 * key rotation). Each new file is staged beside its target as a hidden file;
 * then one plan file (`.apiary-transaction.json` at the directory's root),
 * written atomically, is the commit point: before it exists, an interrupted
 * run leaves every file as it was (the staged copies are dropped by the next
 * run); once it exists, every file is new (the next run, or any writing verb,
 * renames what is left into place). Each rename is atomic on its own, so a
 * reader between two of them sees some files old and some new, every one of
 * them whole; a machine that opens both (a key rotation keeps the new
 * identity beside the old until the end) opens every value throughout.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { ApiaryError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

export const PLAN_FILE = '.apiary-transaction.json';
/**
 * For the fault tests only: a pause after each step (each staged file, the
 * commit, each rename), so that a SIGKILL at a random moment lands inside
 * the rewrite rather than almost always before or after it.
 */
const pause = (): Promise<void> => {
  const ms = Number(process.env['APIARY_TEST_STEP_PAUSE_MS'] ?? 0);
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
};
const STAGED_SUFFIX = '.apiary-staged';

export interface Plan {
  /** Why: shown when a later run finishes it ("reseal", "key rotate"). */
  operation: string;
  /** Each target (real path, relative to the directory when inside it) and its staged copy beside it. */
  files: { target: string; staged: string }[];
  /** Done after every file is in place (a key rotation promotes the new identity). */
  after?: 'promote-identity';
}

export interface Recovery {
  /** What an earlier, interrupted run left: finished (its plan was committed) or dropped (it was not). */
  outcome: 'none' | 'finished' | 'dropped';
  operation?: string;
  files: number;
  after?: Plan['after'];
}

/**
 * Stages, commits and applies: every file in `changes` (absolute path -> new
 * text) is replaced, or none; then the plan's `after` step, then the plan is
 * gone.
 */
export async function commitFiles(dir: string, operation: string, changes: ReadonlyMap<string, string>, after: Plan['after'] | undefined, promote: (after: NonNullable<Plan['after']>) => Promise<void>): Promise<void> {
  const files: Plan['files'] = [];
  for (const [path, text] of changes) {
    // Through a symlink, as every manifest write: the link stays, its target changes.
    const target = await realpath(path).catch(() => resolve(path));
    const info = await stat(target).catch(() => undefined);
    const staged = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}${STAGED_SUFFIX}`);
    await writeFileAtomic(staged, text, { mode: info !== undefined ? info.mode & 0o777 : 0o644 });
    files.push({ target: relativeOrAbsolute(dir, target), staged: relativeOrAbsolute(dir, staged) });
    await pause();
  }
  const plan: Plan = { operation, files, ...(after !== undefined ? { after } : {}) };
  await writeFileAtomic(join(dir, PLAN_FILE), `${JSON.stringify(plan, null, 2)}\n`);
  await pause();
  await apply(dir, plan);
  if (after !== undefined) await promote(after);
  await pause();
  await rm(join(dir, PLAN_FILE), { force: true });
}

/**
 * Finishes or drops what an interrupted run left. `promote` carries out a
 * plan's `after` step (it must be idempotent: it may run twice).
 */
export async function recover(dir: string, promote: (after: NonNullable<Plan['after']>) => Promise<void>): Promise<Recovery> {
  const text = await readFile(join(dir, PLAN_FILE), 'utf8').catch(() => undefined);
  if (text !== undefined) {
    let plan: Plan;
    try {
      plan = JSON.parse(text) as Plan;
    } catch (err) {
      throw new ApiaryError('StateInvalid', `${join(dir, PLAN_FILE)} cannot be read (${messageOf(err)}); it records an interrupted rewrite of the manifest files`);
    }
    await apply(dir, plan);
    if (plan.after !== undefined) await promote(plan.after);
    await rm(join(dir, PLAN_FILE), { force: true });
    return { outcome: 'finished', operation: plan.operation, files: plan.files.length, ...(plan.after ? { after: plan.after } : {}) };
  }
  const dropped = await dropStaged(dir);
  return { outcome: dropped > 0 ? 'dropped' : 'none', files: dropped };
}

/** True while a committed plan waits to be finished (writers refuse until it is). */
export async function pendingPlan(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, PLAN_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return (JSON.parse(text) as Plan).operation;
  } catch {
    return 'an unreadable rewrite';
  }
}

async function apply(dir: string, plan: Plan): Promise<void> {
  for (const file of plan.files) {
    const staged = resolve(dir, file.staged);
    const target = resolve(dir, file.target);
    // Already moved by an earlier, interrupted run: nothing left to do for this file.
    if ((await stat(staged).catch(() => undefined)) === undefined) continue;
    await rename(staged, target);
    await pause();
  }
}

/** Staged copies of a plan that was never committed, anywhere below the directory. */
async function dropStaged(dir: string): Promise<number> {
  let dropped = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!entry.isFile() || !entry.name.endsWith(STAGED_SUFFIX) || !entry.name.startsWith('.')) continue;
    await rm(join(entry.parentPath, entry.name), { force: true });
    dropped++;
  }
  return dropped;
}

function relativeOrAbsolute(dir: string, path: string): string {
  const rel = relative(dir, path);
  return rel.startsWith('..') || rel.startsWith(sep) ? path : rel;
}
