/**
 * Writing apiary's servers into an MCP client's own configuration file (the
 * location and shape each client documents), and taking them out again.
 *
 * Only what apiary adds is touched: every other entry and key, the file's
 * indentation and line ends stay as they were (entries are inserted as text,
 * not by re-serializing the document). The file as it was before apiary
 * first wrote to it is kept beside it (`<file>.apiary-backup`, owner-only),
 * the new one is written atomically with the old one's mode (owner-only once
 * a token goes in), and the state directory remembers what was written where,
 * so `--remove` takes out exactly that: when the file is still as apiary left
 * it, the original comes back byte for byte; otherwise only apiary's entries
 * are removed (one that replaced a person's entry with --force gives theirs
 * back from a backup, and one a person has changed since is left, with a
 * warning). A write that changes nothing takes nothing over, an entry apiary
 * did not write is replaced only with --force, and writers of one file take
 * turns (a lock beside it).
 */
import { createHash } from 'node:crypto';
import { chmod, realpath, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { applyEdits, findNodeAtLocation, getNodePath, modify, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { ApiaryError } from '../errors.js';
import type { StateLayout } from '../state/layout.js';
import { ensureDir, FILE_MODE, readTextIfPresent, writeFileAtomic } from '../util/atomic.js';
import { withFileLock } from '../util/file-lock.js';
import { clientInfo, knownClientPath, type KnownClient } from './known.js';
import { blockFormat, cut, type BlockFormat } from './text-formats.js';

/** The clients whose files `import` reads (the JSON ones of the known clients it knows the shapes of). */
export const CLIENT_FILE_KINDS = ['claude', 'claude-desktop', 'cursor', 'vscode', 'windsurf'] as const;
/** Every client whose file apiary writes: the one list, in known.ts. */
export type ClientFileKind = KnownClient;

/** The key each client keeps its servers under. */
export function serversKey(kind: ClientFileKind): 'mcpServers' | 'servers' {
  return kind === 'vscode' ? 'servers' : 'mcpServers';
}

/**
 * The user-level file each client reads: Claude Code's ~/.claude.json,
 * Cursor's ~/.cursor/mcp.json, VS Code's mcp.json in its user settings folder,
 * Claude Desktop's claude_desktop_config.json (macOS and Windows as
 * modelcontextprotocol.io/quickstart/user gives them; on Linux, where there is
 * no official build, the XDG folder the community builds use), Windsurf's
 * ~/.codeium/windsurf/mcp_config.json (docs.windsurf.com/windsurf/cascade/mcp).
 */
export function clientConfigPath(kind: ClientFileKind, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  return knownClientPath(kind, env, platform);
}

/** The TOML or YAML editor of a client whose file is not JSON. */
function textFormat(kind: ClientFileKind): BlockFormat | undefined {
  const { format } = clientInfo(kind);
  return format === 'json' ? undefined : blockFormat(format);
}

/** What apiary wrote into one file: to take out exactly that again. */
interface Written {
  kind: ClientFileKind;
  /** Where the entries sit, when not at the top (Claude Code's projects.<dir>.mcpServers). */
  container?: string[];
  /** The file did not exist before apiary wrote it. */
  createdFile: boolean;
  /** Each entry as apiary wrote it (canonical JSON). */
  entries: Record<string, string>;
  /** sha256 of the whole file as apiary left it. */
  sha256: string;
  /** The backup is the file as it was before apiary first wrote into it, and nobody has changed the file since: --remove puts it back. */
  restorable: boolean;
  /** The file's mode before apiary first wrote into it: given back when the original is. */
  originalMode?: number;
  /** Entries that replaced one apiary did not write (--force), and the backup that holds what was there: --remove puts it back. */
  replaced?: Record<string, string>;
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
  /** --remove: entries replaced with --force whose earlier text comes back from a backup. */
  putBack?: string[];
  /** --write: entries that replace one apiary did not write (--force). */
  replacing?: string[];
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const canonical = (value: unknown): string => JSON.stringify(value);


async function readRecord(layout: StateLayout): Promise<Record_> {
  const text = await readTextIfPresent(layout.clientsFile);
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

/** 1-based line and column of an offset: where an editor puts the cursor. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

function parseObject(text: string, path: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (root === undefined || root.type !== 'object' || errors.length > 0) {
    const at = errors[0] !== undefined ? lineAndColumn(text, errors[0].offset) : undefined;
    const where = at !== undefined ? `${path}:${at.line}:${at.column}` : path;
    throw new ApiaryError('Usage', `${where}: not a JSON object apiary can add to${errors[0] ? ` (${printParseErrorCode(errors[0].error)})` : ''}; nothing was written`);
  }
  return root;
}

/**
 * Edits that insert `"name": value` as the last member of an object node, at
 * `level` (the members' indentation). A comment on the last member's line
 * stays on that line (JSONC: Zed's settings, VS Code's files).
 */
function insertMember(text: string, object: Node, name: string, value: unknown, style: { indent: string; eol: string }, level: number): { offset: number; length: number; content: string }[] {
  const member = `${style.indent.repeat(level)}${JSON.stringify(name)}: ${pretty(value, style.indent, style.eol, level)}`;
  const last = object.children?.at(-1);
  if (last === undefined) {
    // {} or { } : the member on its own line, the closing brace back at the object's own level.
    return [{ offset: object.offset, length: object.length, content: `{${style.eol}${member}${style.eol}${style.indent.repeat(level - 1)}}` }];
  }
  const end = last.offset + last.length;
  const tail = /^([ \t]*)(,?)([ \t]*)(\/\/[^\r\n]*|\/\*[^\r\n]*?\*\/[ \t]*)/.exec(text.slice(end));
  if (tail === null) return [{ offset: end, length: 0, content: `,${style.eol}${member}` }];
  const lineEnd = end + tail[0].length;
  // `"a": 1, // mine` -> the new member on the next line, with the file's trailing comma if it has one.
  if (tail[2] === ',') return [{ offset: lineEnd, length: 0, content: `${style.eol}${member},` }];
  return [
    { offset: end, length: 0, content: ',' },
    { offset: lineEnd, length: 0, content: `${style.eol}${member}` },
  ];
}

/** `{ a: { b: value } }` for the path [a, b]. */
function nested(path: readonly string[], value: unknown): unknown {
  return path.reduceRight<unknown>((inner, segment) => ({ [segment]: inner }), value);
}

/** Inserts `{ [name]: value }` under the container at `path`, making the part of the path that is missing. */
function insertUnder(text: string, file: string, path: readonly string[], name: string, value: unknown, style: { indent: string; eol: string }): string {
  const root = parseObject(text, file);
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? root : findNodeAtLocation(root, path.slice(0, depth));
    if (node === undefined) continue;
    if (node.type !== 'object') throw new ApiaryError('Usage', `${file}: "${path.slice(0, depth).join('.')}" is not an object; nothing was written`);
    const [first, ...rest] = [...path.slice(depth), name];
    return applyEdits(text, insertMember(text, node, first!, rest.length === 0 ? value : nested(rest.slice(0, -1), { [name]: value }), style, depth + 1));
  }
  return text;
}

/** What a client's file holds with only apiary's entries in it: what `client config` prints, in the client's own format. */
export function freshClientText(kind: ClientFileKind, entries: Record<string, unknown>): string {
  const at = clientInfo(kind).container;
  const format = textFormat(kind);
  if (format === undefined) return `${JSON.stringify(nested(at, entries), null, 2)}\n`;
  const edit: ClientEdit = { path: '', before: undefined, after: undefined, added: [], updated: [], removed: [], skipped: [] };
  return planTextWrite(format, edit, at[0]!, entries, undefined, false).after ?? '';
}

/** Plans writing `entries` (name -> client entry) into the client's file (under `container`, the servers key by default). */
export async function planClientWrite(kind: ClientFileKind, path: string, entries: Record<string, unknown>, layout: StateLayout, options: { force?: boolean; container?: readonly string[] } = {}): Promise<ClientEdit> {
  const before = await readTextIfPresent(path);
  const written = (await readRecord(layout))[path];
  const at = options.container ?? clientInfo(kind).container;
  const key = at.join('.');
  const edit: ClientEdit = { path, before, after: before, added: [], updated: [], removed: [], skipped: [] };
  const format = textFormat(kind);
  if (format !== undefined) return planTextWrite(format, edit, at[0]!, entries, written, options.force === true);
  if (before === undefined || before.trim() === '') {
    edit.after = `${JSON.stringify(nested(at, entries), null, 2)}\n`;
    edit.added = Object.keys(entries);
    return edit;
  }
  let text = before;
  const style = styleOf(text);
  for (const [name, value] of Object.entries(entries)) {
    const root = parseObject(text, path);
    const container = findNodeAtLocation(root, [...at]);
    if (container !== undefined && container.type !== 'object') throw new ApiaryError('Usage', `${path}: "${key}" is not an object; nothing was written`);
    const existing = container === undefined ? undefined : findNodeAtLocation(container, [name]);
    if (existing === undefined) {
      text = insertUnder(text, path, at, name, value, style);
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
    text = applyEdits(text, [{ offset: existing.offset, length: existing.length, content: pretty(value, style.indent, style.eol, at.length + 1) }]);
    edit.updated.push(name);
    if (!ours) (edit.replacing ??= []).push(name);
  }
  edit.after = text;
  return edit;
}

/** Plans taking out what apiary wrote into the file. */
export async function planClientRemove(kind: ClientFileKind, path: string, layout: StateLayout, only?: readonly string[]): Promise<ClientEdit> {
  const before = await readTextIfPresent(path);
  const record = (await readRecord(layout))[path];
  const edit: ClientEdit = { path, before, after: before, added: [], updated: [], removed: [], skipped: [] };
  if (record === undefined || before === undefined) return edit;
  // Some entries only (a server deleted): the rest stay apiary's.
  const written = only === undefined ? record : { ...record, entries: Object.fromEntries(Object.entries(record.entries).filter(([name]) => only.includes(name))) };
  const all = Object.keys(written.entries).length === Object.keys(record.entries).length;
  const backup = await readTextIfPresent(backupPath(path));
  const format = textFormat(kind);
  // Untouched since apiary wrote it: the original comes back exactly (or goes, if apiary made the file).
  if (all && written.restorable && sha(before) === written.sha256 && (written.createdFile || backup !== undefined)) {
    edit.after = written.createdFile ? undefined : backup;
    edit.removed = Object.keys(written.entries);
    edit.restored = true;
    return edit;
  }
  const at = written.container ?? clientInfo(kind).container;
  return removeEntries(edit, written, format !== undefined ? textEntries(format, edit, at[0]!) : jsonEntries(path, at));
}

/** planClientWrite for a TOML or YAML file: each entry's block compared, added or replaced as text. */
function planTextWrite(format: BlockFormat, edit: ClientEdit, container: string, entries: Record<string, unknown>, written: Written | undefined, force: boolean): ClientEdit {
  const before = edit.before ?? '';
  if (before.trim() !== '') format.check(before, edit.path, container);
  const eol = before.includes('\r\n') ? '\r\n' : '\n';
  let text = before;
  for (const [name, value] of Object.entries(entries)) {
    const want = format.render(text, container, name, value, eol);
    const span = format.find(text, container, name);
    if (span === undefined) {
      text = format.insert(text, container, want, eol);
      edit.added.push(name);
      continue;
    }
    const current = text.slice(span.start, span.end);
    if (current === want) continue;
    const wrote = written?.entries[name];
    const ours = wrote !== undefined && format.render(text, container, name, JSON.parse(wrote), eol) === current;
    if (!ours && !force) {
      edit.skipped.push({ name, why: `${edit.path} already has an entry "${name}" that apiary did not write; left as it is (--force replaces it)` });
      continue;
    }
    text = text.slice(0, span.start) + want + text.slice(span.end);
    edit.updated.push(name);
    if (!ours) (edit.replacing ??= []).push(name);
  }
  edit.after = text;
  return edit;
}

/** One entry as it is in a file now, to take out or give back. */
interface Found {
  span: { start: number; end: number };
  /** Still as apiary wrote it. */
  same: boolean;
  /** The text without it. */
  cut(): string;
}

/** How entries are found in a file of one format, and in a backup of it. */
interface EntryOps {
  find(text: string, name: string, wrote: string): Found | undefined;
  /** The entry's text in a backup. */
  inBackup(backup: string, name: string): string | undefined;
}

function jsonEntries(path: string, at: readonly string[]): EntryOps {
  return {
    find(text, name, wrote) {
      const node = findNodeAtLocation(parseObject(text, path), [...at, name]);
      if (node === undefined) return undefined;
      return { span: { start: node.offset, end: node.offset + node.length }, same: canonical(JSON.parse(text.slice(node.offset, node.offset + node.length))) === wrote, cut: () => removeMember(text, node) };
    },
    inBackup(backup, name) {
      const root = parseTree(backup, [], { allowTrailingComma: true, disallowComments: false });
      const node = root !== undefined ? findNodeAtLocation(root, [...at, name]) : undefined;
      return node !== undefined ? backup.slice(node.offset, node.offset + node.length) : undefined;
    },
  };
}

/** TOML or YAML: an entry is apiary's while its block is exactly what apiary renders for what it wrote. */
function textEntries(format: BlockFormat, edit: ClientEdit, container: string): EntryOps {
  const eol = (edit.before ?? '').includes('\r\n') ? '\r\n' : '\n';
  format.check(edit.before ?? '', edit.path, container);
  return {
    find(text, name, wrote) {
      const span = format.find(text, container, name);
      if (span === undefined) return undefined;
      return { span, same: text.slice(span.start, span.end) === format.render(text, container, name, JSON.parse(wrote), eol), cut: () => cut(text, span) };
    },
    inBackup(backup, name) {
      const span = format.find(backup, container, name);
      return span !== undefined ? backup.slice(span.start, span.end) : undefined;
    },
  };
}

/** Takes apiary's entries out one by one: one changed since is left; one that replaced a person's (--force) gives theirs back from its backup. */
async function removeEntries(edit: ClientEdit, written: Written, ops: EntryOps): Promise<ClientEdit> {
  let text = edit.before ?? '';
  for (const [name, wrote] of Object.entries(written.entries)) {
    const found = ops.find(text, name, wrote);
    if (found === undefined) continue;
    if (!found.same) {
      edit.skipped.push({ name, why: `"${name}" was changed since apiary wrote it; left as it is` });
      continue;
    }
    const held = written.replaced?.[name];
    if (held === undefined) {
      text = found.cut();
      edit.removed.push(name);
      continue;
    }
    const backup = await readTextIfPresent(held).catch(() => undefined);
    const earlier = backup !== undefined ? ops.inBackup(backup, name) : undefined;
    if (earlier === undefined) {
      edit.skipped.push({ name, why: `"${name}" replaced an entry apiary did not write, and ${held} no longer holds that entry; left as it is` });
      continue;
    }
    text = text.slice(0, found.span.start) + earlier + text.slice(found.span.end);
    (edit.putBack ??= []).push(name);
  }
  edit.after = text;
  return edit;
}

/**
 * Takes out the member whose value is `value`: its whole lines when it has
 * them to itself (so the lines around it stay as they were, as inserting it
 * left them), with the comma it brought (after the member before it, when it
 * is the last); anything else by jsonc-parser's edit.
 */
function removeMember(text: string, value: Node): string {
  const member = value.parent;
  const siblings = member?.parent?.children ?? [];
  const at = member !== undefined ? siblings.indexOf(member) : -1;
  const lineStart = member !== undefined ? text.lastIndexOf('\n', member.offset - 1) + 1 : 0;
  const after = member !== undefined ? /^[ \t]*(,?)[ \t]*\r?\n/.exec(text.slice(member.offset + member.length)) : null;
  if (member === undefined || at === -1 || after === null || text.slice(lineStart, member.offset).trim() !== '') return applyEdits(text, modify(text, getNodePath(value), undefined, {}));
  const end = member.offset + member.length + after[0].length;
  if (after[1] === ',' || at === 0) return text.slice(0, lineStart) + text.slice(end);
  // The last member without a comma: the member before it loses the comma that led to it.
  const previous = siblings[at - 1]!;
  const gap = text.slice(previous.offset + previous.length, lineStart);
  const comma = gap.indexOf(',');
  if (comma === -1) return text.slice(0, lineStart) + text.slice(end);
  const commaAt = previous.offset + previous.length + comma;
  return text.slice(0, commaAt) + text.slice(commaAt + 1, lineStart) + text.slice(end);
}

export function backupPath(path: string): string {
  return `${path}.apiary-backup`;
}

/** What a write or a removal did beyond the entries: for the person to be told. */
export interface ClientFileResult {
  edit: ClientEdit;
  /** A backup written now (the file as it was before this write), and the credentials it holds in plaintext (as JSON paths, never values). */
  backup?: { path: string; credentials: string[] };
  /** No backup written now: the one of the file as it was before apiary first wrote into it, when it exists. */
  original?: string;
  /** The file's mode before and after, when the write changed it (a token went in: owner-only). */
  mode?: { from: number; to: number };
}

/**
 * Where credentials sit in a client file's JSON, by path (never the values):
 * a header such as Authorization, or a key named like a token, secret,
 * password or API key, holding a non-empty string.
 */
function credentialPaths(text: string | undefined): string[] {
  if (text === undefined) return [];
  const root = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
  const found: string[] = [];
  const walk = (node: Node | undefined, path: string[]): void => {
    if (node === undefined) return;
    if (node.type === 'object') {
      for (const member of node.children ?? []) {
        const [name, value] = member.children ?? [];
        if (name === undefined) continue;
        const key = String(name.value);
        if (value?.type === 'string' && value.value !== '' && CREDENTIAL_KEY.test(key)) found.push([...path, key].join('.'));
        else walk(value, [...path, key]);
      }
    } else if (node.type === 'array') {
      node.children?.forEach((child, index) => walk(child, [...path, String(index)]));
    }
  };
  walk(root, []);
  return found;
}

const CREDENTIAL_KEY = /authorization|token|secret|password|passwd|api[-_]?key|credential/i;

/**
 * `client config --write` (entries given) or `--remove` (none), start to
 * end: writers of the same file (and of the same state directory's record)
 * take turns, so two at once never lose each other's entries. A write that
 * meets an entry apiary did not write refuses, writing nothing, unless
 * `force` (or `skipClashes`, which writes the rest and leaves those, as the
 * console does).
 */
export interface ClientFileOptions {
  force?: boolean;
  dryRun?: boolean;
  skipClashes?: boolean;
  /** Where the entries go, when not at the top (Claude Code's projects.<dir>.mcpServers). */
  container?: readonly string[];
  /**
   * The caller keeps the file as it was itself (import keeps it sealed): no
   * plaintext backup is written, and --remove takes apiary's entries out one
   * by one.
   */
  noBackup?: boolean;
  /** Removal: only these of apiary's entries (servers that are gone); the rest stay apiary's. */
  only?: readonly string[];
  /** Called with the file as it is, under the lock, just before it is written (import seals it then). */
  beforeWrite?: (edit: ClientEdit) => Promise<void>;
}

export async function updateClientFile(
  kind: ClientFileKind,
  file: string,
  entries: Record<string, unknown> | undefined,
  layout: StateLayout,
  options: ClientFileOptions = {},
): Promise<ClientFileResult> {
  const plan = async (): Promise<ClientEdit> => {
    const edit = entries === undefined ? await planClientRemove(kind, file, layout, options.only) : await planClientWrite(kind, file, entries, layout, { force: options.force === true, ...(options.container !== undefined ? { container: options.container } : {}) });
    if (entries !== undefined && options.skipClashes !== true) refuseClashes(edit);
    return edit;
  };
  if (options.dryRun === true) return { edit: await plan() };
  // Nothing to remove from a folder that is not there (and no folder made to find that out).
  if (entries === undefined && !(await stat(dirname(file)).catch(() => undefined))?.isDirectory()) return { edit: await plan() };
  await ensureDir(dirname(file));
  await ensureDir(layout.root);
  // One lock however the file is named (a symlinked dotfile, or its target given with --file).
  const real = await realpath(file).catch(() => file);
  return withFileLock(layout.clientsFile, () =>
    withFileLock(real, async () => {
      const edit = await plan();
      if (edit.after !== edit.before) await options.beforeWrite?.(edit);
      return { ...(await applyClientEdit(kind, edit, entries, layout, options)), edit };
    }),
  );
}

/** An entry apiary did not write is never replaced without --force: nothing is written, and the error says how to go on. */
function refuseClashes(edit: ClientEdit): void {
  if (edit.skipped.length === 0) return;
  const names = edit.skipped.map((s) => `"${s.name}"`);
  const them = names.length === 1 ? 'it' : 'them';
  throw new ApiaryError('Usage', `${edit.path} already has ${names.length === 1 ? 'an entry' : 'entries'} ${names.join(', ')} that apiary did not write; nothing was written`, {
    hints: [`--force replaces ${them} with apiary's (the file as it is now is kept in a backup first, and --remove puts ${them} back)`],
  });
}

/**
 * Writes a planned edit, atomically, and remembers what was written. The
 * file as it was before apiary first wrote into it is kept as the backup (a
 * new one is made only when it is missing); a --force that replaces an entry
 * the backup may not hold (the file was changed since) keeps the file as it
 * is now in a backup of its own. Every backup is owner-only; a file that
 * receives a token becomes owner-only too.
 */
export async function applyClientEdit(kind: ClientFileKind, edit: ClientEdit, entries: Record<string, unknown> | undefined, layout: StateLayout, options: Pick<ClientFileOptions, 'container' | 'noBackup' | 'only'> = {}): Promise<Omit<ClientFileResult, 'edit'>> {
  // A write that changes nothing takes nothing over: an entry already there is the person's, not apiary's.
  if (edit.after === edit.before && entries !== undefined) return {};
  const record = await readRecord(layout);
  const previous = record[edit.path];
  const mode = (await stat(edit.path).catch(() => undefined))?.mode;
  // Changed by someone since apiary last wrote it (or never written by apiary).
  const untouched = previous !== undefined && edit.before !== undefined && sha(edit.before) === previous.sha256;
  const result: Omit<ClientFileResult, 'edit'> = {};
  let stale: string[] = [];
  if (entries === undefined) {
    await writeRemoval(edit, previous);
    stale = forgetRemoved(record, edit, previous, { only: options.only, untouched });
  } else {
    const backups = options.noBackup === true ? { restorable: false } : await keepBackups(edit, previous, untouched);
    if (backups.written !== undefined) result.backup = { path: backups.written, credentials: credentialPaths(edit.before) };
    else if (backups.original !== undefined) result.original = backups.original;
    const newMode = holdsToken(edit, entries) ? FILE_MODE : (mode ?? FILE_MODE) & 0o777;
    await ensureDir(dirname(edit.path));
    await writeFileAtomic(edit.path, edit.after ?? '', { mode: newMode, throughSymlink: true });
    await chmod(edit.path, newMode).catch(() => undefined);
    if (mode !== undefined && (mode & 0o777) !== newMode) result.mode = { from: mode & 0o777, to: newMode };
    record[edit.path] = rememberWrite(kind, edit, entries, previous, { restorable: backups.restorable, ...('replacedIn' in backups && backups.replacedIn !== undefined ? { replacedIn: backups.replacedIn } : {}), mode, ...(options.container !== undefined ? { container: [...options.container] } : {}) });
  }
  await writeFileAtomic(layout.clientsFile, `${JSON.stringify(record, null, 2)}\n`);
  for (const backup of stale) await rm(backup, { force: true });
  return result;
}

/** Whether an entry written now carries a credential (apiary's endpoint token in its headers). */
function holdsToken(edit: ClientEdit, entries: Record<string, unknown>): boolean {
  const changed = new Set([...edit.added, ...edit.updated]);
  return Object.entries(entries).some(([name, value]) => changed.has(name) && credentialPaths(JSON.stringify(value)).length > 0);
}

/**
 * The backups a write needs: at apiary's first write, the file as it is
 * (the original); later, the original stays and is made again only when it
 * is gone; and when --force replaces an entry that the original may not hold
 * as it is now, the file as it is now, in a backup of its own.
 */
async function keepBackups(edit: ClientEdit, previous: Written | undefined, untouched: boolean): Promise<{ written?: string; original?: string; restorable: boolean; replacedIn?: string }> {
  const main = backupPath(edit.path);
  if (edit.before === undefined) return { restorable: true };
  if (previous === undefined) {
    await writeFileAtomic(main, edit.before, { mode: FILE_MODE });
    return { written: main, restorable: true, replacedIn: main };
  }
  const haveMain = (await stat(main).catch(() => undefined))?.isFile() === true;
  // Untouched since apiary first wrote: what is not apiary's is in the original as it is now (or, in a file apiary made, there is none).
  if (untouched && previous.restorable && (previous.createdFile || haveMain)) return { ...(haveMain ? { original: main } : {}), restorable: true, replacedIn: main };
  if (!haveMain) {
    await writeFileAtomic(main, edit.before, { mode: FILE_MODE });
    return { written: main, restorable: false, replacedIn: main };
  }
  if ((edit.replacing ?? []).length === 0) return { original: main, restorable: false };
  // Changed since: the entries --force replaces now may not be in the original as they are; the file as it is now is kept too.
  const extra = await freeBackupPath(edit.path);
  await writeFileAtomic(extra, edit.before, { mode: FILE_MODE });
  return { written: extra, restorable: false, replacedIn: extra };
}

/** `<file>.apiary-backup-<UTC time>`, not yet taken. */
async function freeBackupPath(path: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (let n = 1; ; n++) {
    const candidate = `${backupPath(path)}-${stamp}${n > 1 ? `-${n}` : ''}`;
    if ((await stat(candidate).catch(() => undefined)) === undefined) return candidate;
  }
}

/** What the record says after a write: only what apiary put there (an identical entry that was there before is not apiary's to take out). */
function rememberWrite(kind: ClientFileKind, edit: ClientEdit, entries: Record<string, unknown>, previous: Written | undefined, kept: { restorable: boolean; replacedIn?: string; mode: number | undefined; container?: string[] }): Written {
  const changed = new Set([...edit.added, ...edit.updated]);
  const wrote = Object.fromEntries(Object.entries(entries).filter(([name]) => changed.has(name) || previous?.entries[name] !== undefined).map(([name, value]) => [name, canonical(value)]));
  const replaced = { ...(previous?.replaced ?? {}) };
  for (const name of edit.replacing ?? []) if (kept.replacedIn !== undefined) replaced[name] = kept.replacedIn;
  const originalMode = previous !== undefined ? previous.originalMode : kept.mode !== undefined ? kept.mode & 0o777 : undefined;
  const container = kept.container ?? previous?.container;
  return {
    kind,
    ...(container !== undefined ? { container } : {}),
    createdFile: previous?.createdFile ?? edit.before === undefined,
    entries: { ...(previous?.entries ?? {}), ...wrote },
    sha256: sha(edit.after ?? ''),
    restorable: kept.restorable,
    ...(originalMode !== undefined ? { originalMode } : {}),
    ...(Object.keys(replaced).length > 0 ? { replaced } : {}),
  };
}

/** --remove: the file deleted (apiary made it), given back as it was (with its mode), or written without apiary's entries. */
async function writeRemoval(edit: ClientEdit, previous: Written | undefined): Promise<void> {
  if (edit.after === undefined) {
    await rm(edit.path, { force: true });
    return;
  }
  if (edit.after === edit.before) return;
  const mode = (await stat(edit.path).catch(() => undefined))?.mode;
  const restoredMode = edit.restored === true ? previous?.originalMode : undefined;
  const newMode = restoredMode ?? (mode ?? FILE_MODE) & 0o777;
  await writeFileAtomic(edit.path, edit.after, { mode: newMode, throughSymlink: true });
  await chmod(edit.path, newMode).catch(() => undefined);
}

/**
 * --remove: forget the file once nothing of apiary's is left in it (its
 * backups are then of no more use: returned, to be removed); else remember
 * what was left (entries changed since, or, removing some only, the others).
 */
function forgetRemoved(record: Record_, edit: ClientEdit, previous: Written | undefined, removal: { only: readonly string[] | undefined; untouched: boolean }): string[] {
  if (previous === undefined) return [];
  const left = (name: string): boolean => edit.skipped.some((s) => s.name === name) || (removal.only !== undefined && !removal.only.includes(name));
  const entries = Object.fromEntries(Object.entries(previous.entries).filter(([name]) => left(name)));
  if (Object.keys(entries).length === 0) {
    delete record[edit.path];
    return [...new Set([backupPath(edit.path), ...Object.values(previous.replaced ?? {})])];
  }
  const replaced = Object.fromEntries(Object.entries(previous.replaced ?? {}).filter(([name]) => left(name)));
  record[edit.path] = {
    ...previous,
    entries,
    sha256: sha(edit.after ?? ''),
    // Some taken out of a file nobody else changed: the original backup still is the file without apiary's entries.
    restorable: removal.only !== undefined && edit.skipped.length === 0 && removal.untouched && previous.restorable,
    ...(Object.keys(replaced).length > 0 ? { replaced } : {}),
  };
  if (Object.keys(replaced).length === 0) delete record[edit.path]!.replaced;
  return [];
}

/** The entries apiary wrote into a file, as canonical JSON by name (to tell them from a person's own). */
export async function writtenEntries(layout: StateLayout, path: string): Promise<Record<string, string>> {
  return (await readRecord(layout))[path]?.entries ?? {};
}

/** What apiary remembers of a file it wrote into (opaque to the caller): to put back with restoreClientRecord. */
export async function clientRecord(layout: StateLayout, path: string): Promise<unknown> {
  return (await readRecord(layout))[path];
}

/** Puts back what apiary remembered of a file (undefined: nothing), once the file itself is given back as it was then. */
export async function restoreClientRecord(layout: StateLayout, path: string, remembered: unknown): Promise<void> {
  await withFileLock(layout.clientsFile, async () => {
    const record = await readRecord(layout);
    if (remembered === undefined) delete record[path];
    else record[path] = remembered as Written;
    await writeFileAtomic(layout.clientsFile, `${JSON.stringify(record, null, 2)}\n`);
  });
}

/** Canonical JSON of an entry, as the record keeps it. */
export function canonicalEntry(value: unknown): string {
  return canonical(value);
}
