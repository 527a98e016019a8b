/**
 * Writing apiary's servers into an MCP client's own configuration file (the
 * location and shape each client documents), and taking them out again.
 *
 * Only what apiary adds is touched: every other entry and key, the file's
 * indentation and line ends stay as they were (entries are inserted as text,
 * not by re-serializing the document). The previous file is kept beside it
 * (`<file>.apiary-backup`), the new one is written atomically with the old
 * one's mode, and the state directory remembers what was written where, so
 * `--remove` takes out exactly that: when the file is still as apiary left
 * it, the original comes back byte for byte; otherwise only apiary's entries
 * are removed (and one a person has changed since is left, with a warning).
 */
import { createHash } from 'node:crypto';
import { chmod, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { applyEdits, findNodeAtLocation, modify, parseTree, type Node, type ParseError } from 'jsonc-parser';
import type { ClientKind } from '../mcp/client-config.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { StateLayout } from '../state/layout.js';
import { ensureDir, writeFileAtomic } from '../util/atomic.js';

/** The key each client keeps its servers under. */
export function serversKey(kind: ClientKind): 'mcpServers' | 'servers' {
  return kind === 'vscode' ? 'servers' : 'mcpServers';
}

/**
 * The user-level file each client reads: Claude Code's ~/.claude.json,
 * Cursor's ~/.cursor/mcp.json, VS Code's mcp.json in its user settings folder.
 */
export function clientConfigPath(kind: ClientKind, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const home = env['HOME'] ?? homedir();
  switch (kind) {
    case 'claude':
      return join(home, '.claude.json');
    case 'cursor':
      return join(home, '.cursor', 'mcp.json');
    case 'vscode':
      if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'Code', 'User', 'mcp.json');
      if (platform === 'win32') return join(env['APPDATA'] ?? join(home, 'AppData', 'Roaming'), 'Code', 'User', 'mcp.json');
      return join(env['XDG_CONFIG_HOME'] ?? join(home, '.config'), 'Code', 'User', 'mcp.json');
  }
}

/** What apiary wrote into one file: to take out exactly that again. */
interface Written {
  kind: ClientKind;
  /** The file did not exist before apiary wrote it. */
  createdFile: boolean;
  /** Each entry as apiary wrote it (canonical JSON). */
  entries: Record<string, string>;
  /** sha256 of the whole file as apiary left it. */
  sha256: string;
  /** The backup is the file as it was before apiary first wrote into it, and nobody has changed the file since: --remove puts it back. */
  restorable: boolean;
}

type Record_ = Record<string, Written>;

export interface ClientEdit {
  path: string;
  before: string | undefined;
  /** undefined: the file is to be deleted (apiary made it, and nothing else is in it). */
  after: string | undefined;
  added: string[];
  updated: string[];
  removed: string[];
  /** Entries left alone, and why. */
  skipped: { name: string; why: string }[];
  /** How --remove will put it back: the original text, or entry by entry. */
  restored?: boolean;
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const canonical = (value: unknown): string => JSON.stringify(value);

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new ApiaryError('Io', `cannot read ${path}: ${messageOf(err)}`);
  });
}

async function readRecord(layout: StateLayout): Promise<Record_> {
  const text = await readText(layout.clientsFile);
  if (text === undefined) return {};
  try {
    return JSON.parse(text) as Record_;
  } catch {
    return {};
  }
}

/** How the file indents (two spaces when it does not say) and ends its lines. */
function styleOf(text: string): { indent: string; eol: string } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const indented = /^([ \t]+)\S/m.exec(text)?.[1];
  return { indent: indented === undefined ? '  ' : indented.startsWith('\t') ? '\t' : indented, eol };
}

function pretty(value: unknown, indent: string, eol: string, level: number): string {
  return JSON.stringify(value, null, indent).split('\n').join(eol + indent.repeat(level));
}

function parseObject(text: string, path: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (root === undefined || root.type !== 'object' || errors.length > 0) {
    throw new ApiaryError('Usage', `${path} is not a JSON object apiary can add to${errors[0] ? ` (a syntax error at offset ${errors[0].offset})` : ''}; nothing was written`);
  }
  return root;
}

/** Text to insert `"name": value` as the last member of an object node, at `level` (the members' indentation). */
function insertMember(object: Node, name: string, value: unknown, style: { indent: string; eol: string }, level: number): { offset: number; length: number; content: string } {
  const member = `${style.indent.repeat(level)}${JSON.stringify(name)}: ${pretty(value, style.indent, style.eol, level)}`;
  const last = object.children?.at(-1);
  if (last === undefined) {
    // {} or { } : the member on its own line, the closing brace back at the object's own level.
    return { offset: object.offset, length: object.length, content: `{${style.eol}${member}${style.eol}${style.indent.repeat(level - 1)}}` };
  }
  return { offset: last.offset + last.length, length: 0, content: `,${style.eol}${member}` };
}

/** Plans writing `entries` (name -> client entry) into the client's file. */
export async function planClientWrite(kind: ClientKind, path: string, entries: Record<string, unknown>, layout: StateLayout, options: { force?: boolean } = {}): Promise<ClientEdit> {
  const before = await readText(path);
  const written = (await readRecord(layout))[path];
  const key = serversKey(kind);
  const edit: ClientEdit = { path, before, after: before, added: [], updated: [], removed: [], skipped: [] };
  if (before === undefined || before.trim() === '') {
    edit.after = `${JSON.stringify({ [key]: entries }, null, 2)}\n`;
    edit.added = Object.keys(entries);
    return edit;
  }
  let text = before;
  const style = styleOf(text);
  for (const [name, value] of Object.entries(entries)) {
    const root = parseObject(text, path);
    const container = findNodeAtLocation(root, [key]);
    if (container === undefined) {
      const inserted = insertMember(root, key, { [name]: value }, style, 1);
      text = applyEdits(text, [inserted]);
      edit.added.push(name);
      continue;
    }
    if (container.type !== 'object') throw new ApiaryError('Usage', `${path}: "${key}" is not an object; nothing was written`);
    const existing = findNodeAtLocation(container, [name]);
    if (existing === undefined) {
      text = applyEdits(text, [insertMember(container, name, value, style, 2)]);
      edit.added.push(name);
      continue;
    }
    const current = canonical(JSON.parse(text.slice(existing.offset, existing.offset + existing.length)));
    if (current === canonical(value)) continue;
    const ours = written?.entries[name] !== undefined && written.entries[name] === current;
    if (!ours && options.force !== true) {
      edit.skipped.push({ name, why: `${path} already has an entry "${name}" that apiary did not write; left as it is (--force replaces it)` });
      continue;
    }
    text = applyEdits(text, [{ offset: existing.offset, length: existing.length, content: pretty(value, style.indent, style.eol, 2) }]);
    edit.updated.push(name);
  }
  edit.after = text;
  return edit;
}

/** Plans taking out what apiary wrote into the file. */
export async function planClientRemove(kind: ClientKind, path: string, layout: StateLayout): Promise<ClientEdit> {
  const before = await readText(path);
  const written = (await readRecord(layout))[path];
  const edit: ClientEdit = { path, before, after: before, added: [], updated: [], removed: [], skipped: [] };
  if (written === undefined || before === undefined) return edit;
  const backup = await readText(backupPath(path));
  // Untouched since apiary wrote it: the original comes back exactly (or goes, if apiary made the file).
  if (written.restorable && sha(before) === written.sha256 && (written.createdFile || backup !== undefined)) {
    edit.after = written.createdFile ? undefined : backup;
    edit.removed = Object.keys(written.entries);
    edit.restored = true;
    return edit;
  }
  let text = before;
  const key = serversKey(kind);
  for (const [name, wrote] of Object.entries(written.entries)) {
    const node = findNodeAtLocation(parseObject(text, path), [key, name]);
    if (node === undefined) continue;
    if (canonical(JSON.parse(text.slice(node.offset, node.offset + node.length))) !== wrote) {
      edit.skipped.push({ name, why: `"${name}" was changed since apiary wrote it; left as it is` });
      continue;
    }
    text = applyEdits(text, modify(text, [key, name], undefined, {}));
    edit.removed.push(name);
  }
  edit.after = text;
  return edit;
}

export function backupPath(path: string): string {
  return `${path}.apiary-backup`;
}

/** Writes a planned edit: the previous file kept as a backup, the new one atomically with the old one's mode; remembers what was written. */
export async function applyClientEdit(kind: ClientKind, edit: ClientEdit, entries: Record<string, unknown> | undefined, layout: StateLayout): Promise<void> {
  const record = await readRecord(layout);
  const previous = record[edit.path];
  if (edit.after === edit.before && entries !== undefined && previous !== undefined) return;
  const mode = (await stat(edit.path).catch(() => undefined))?.mode;
  // Changed by someone since apiary last wrote it (or never written by apiary): the file as it is now is the backup.
  const untouched = previous !== undefined && edit.before !== undefined && sha(edit.before) === previous.sha256;
  const restorable = entries !== undefined && (previous === undefined || (untouched && previous.restorable));
  if (edit.after === undefined) {
    await rm(edit.path, { force: true });
  } else if (edit.after !== edit.before) {
    await ensureDir(dirname(edit.path));
    if (edit.before !== undefined && entries !== undefined && !untouched) {
      await writeFileAtomic(backupPath(edit.path), edit.before, { mode: (mode ?? 0o600) & 0o777 });
    }
    await writeFileAtomic(edit.path, edit.after, { mode: (mode ?? 0o600) & 0o777, throughSymlink: true });
    if (mode !== undefined) await chmod(edit.path, mode & 0o777).catch(() => undefined);
  }
  if (entries === undefined) {
    // Removed: forget it, and the backup when the original is back.
    const remaining = edit.skipped.length > 0 && previous !== undefined ? { ...previous, entries: Object.fromEntries(Object.entries(previous.entries).filter(([name]) => edit.skipped.some((s) => s.name === name))), sha256: sha(edit.after ?? ''), restorable: false } : undefined;
    if (remaining === undefined) delete record[edit.path];
    else record[edit.path] = remaining;
    if (remaining === undefined) await rm(backupPath(edit.path), { force: true });
  } else {
    // Only what apiary put there: an identical entry that was there before is not apiary's to take out.
    const changed = new Set([...edit.added, ...edit.updated]);
    const wrote = Object.fromEntries(Object.entries(entries).filter(([name]) => changed.has(name) || previous?.entries[name] !== undefined).map(([name, value]) => [name, canonical(value)]));
    record[edit.path] = { kind, createdFile: previous?.createdFile ?? edit.before === undefined, entries: { ...(previous?.entries ?? {}), ...wrote }, sha256: sha(edit.after ?? ''), restorable };
  }
  await writeFileAtomic(layout.clientsFile, `${JSON.stringify(record, null, 2)}\n`);
}
