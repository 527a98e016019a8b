/**
 * Entries in a client's TOML (Codex CLI) or YAML (Goose) file, edited as
 * text, one entry's block at a time: every other byte of the file (its
 * comments, its order, its quoting) stays as it was, as config-file.ts does
 * for JSON. An entry is apiary's when its block is exactly what apiary
 * renders for it; anything else is the person's.
 */
import { LineCounter, parseDocument, stringify, isMap, isScalar, type Pair } from 'yaml';
import { ApiaryError } from '../errors.js';

export interface Span {
  start: number;
  end: number;
}

export interface BlockFormat {
  /** Throws a Usage error naming the file and the line when the text is not a file of this format apiary can edit. */
  check(text: string, file: string, container: string): void;
  /** The block of entry `name` under `container`, up to and with its last line's end. */
  find(text: string, container: string, name: string): Span | undefined;
  /** The block apiary writes for an entry (ending with `eol`), at the indentation of the file's other entries. */
  render(text: string, container: string, name: string, value: unknown, eol: string): string;
  /** The text with `block` added as the container's last entry. */
  insert(text: string, container: string, block: string, eol: string): string;
}

/** Takes a block out, with the blank line that set it apart (as `insert` added it). */
export function cut(text: string, span: Span): string {
  let start = span.start;
  const blank = /\r?\n(\r?\n)$/.exec(text.slice(0, start));
  const after = text.slice(span.end);
  if (blank !== null && (after === '' || /^\r?\n/.test(after))) start -= blank[1]!.length;
  return text.slice(0, start) + after;
}

const lineStarts = (text: string): number[] => {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
};

// --- TOML ---------------------------------------------------------------

const BARE = /^[A-Za-z0-9_-]+$/;
const tomlKey = (key: string): string => (BARE.test(key) ? key : JSON.stringify(key));

/** A TOML value of JSON data: basic strings are JSON strings (the same escapes), tables inline. */
function tomlValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  if (value !== null && typeof value === 'object') return `{ ${Object.entries(value).map(([k, v]) => `${tomlKey(k)} = ${tomlValue(v)}`).join(', ')} }`;
  throw new ApiaryError('Usage', `cannot write ${String(value)} in TOML`);
}

const HEADER = /^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?$/;
const KEY_VALUE = /^\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=\s*(\S.*)$/;

/** A table header's dotted name, unquoted: ["mcp_servers", "x"]. */
function headerPath(inner: string): string[] {
  return [...inner.matchAll(/\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:\.|$)/g)].map((m) => m[1] ?? (m[2] !== undefined ? (JSON.parse(`"${m[2]}"`) as string) : m[3]!));
}

/** How many brackets a value leaves open, and whether it opens a multi-line string (strings and comments skipped). */
function openings(line: string, inString: string | undefined): { depth: number; inString: string | undefined } {
  let depth = 0;
  let quote = inString;
  for (let i = 0; i < line.length; i++) {
    const rest = line.slice(i);
    if (quote !== undefined) {
      if (rest.startsWith(quote) && (quote.length === 3 || line[i - 1] !== '\\' || quote === "'")) {
        i += quote.length - 1;
        quote = undefined;
      } else if (quote === '"' && line[i] === '\\') i++;
      continue;
    }
    if (rest.startsWith('"""') || rest.startsWith("'''")) {
      quote = rest.slice(0, 3);
      i += 2;
    } else if (line[i] === '"' || line[i] === "'") quote = line[i];
    else if (line[i] === '#') break;
    else if (line[i] === '[' || line[i] === '{') depth++;
    else if (line[i] === ']' || line[i] === '}') depth--;
  }
  return { depth, inString: quote !== undefined && quote.length === 3 ? quote : undefined };
}

interface TomlTable {
  path: string[];
  line: number;
}

/** A key = value, by its full dotted path (its table's and its own), with the lines it spans. */
interface TomlKey {
  path: string[];
  first: number;
  last: number;
}

/** The table headers, each with its line, after checking every line is a header, a key = value (over lines when open), a comment or blank. */
function tomlTables(text: string, file: string): { tables: TomlTable[]; keys: TomlKey[] } {
  const lines = text.split('\n');
  const tables: TomlTable[] = [];
  const keys: TomlKey[] = [];
  let depth = 0;
  let inString: string | undefined;
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (depth > 0 || inString !== undefined) {
      const open = openings(line, inString);
      depth += open.depth;
      inString = open.inString;
      keys.at(-1)!.last = index;
      return;
    }
    if (/^\s*(#.*)?$/.test(line)) return;
    const header = HEADER.exec(line);
    if (header !== null && !KEY_VALUE.test(line)) {
      tables.push({ path: headerPath(header[1]!), line: index });
      return;
    }
    const kv = KEY_VALUE.exec(line);
    if (kv === null) throw new ApiaryError('Usage', `${file}:${index + 1}: not a TOML table header, key = value or comment; nothing was written`);
    keys.push({ path: [...(tables.at(-1)?.path ?? []), ...headerPath(kv[1]!)], first: index, last: index });
    const open = openings(kv[2]!, undefined);
    depth = open.depth;
    inString = open.inString;
    if (depth < 0) throw new ApiaryError('Usage', `${file}:${index + 1}: a closing bracket with none open; nothing was written`);
  });
  if (depth > 0 || inString !== undefined) throw new ApiaryError('Usage', `${file}: a bracket or a multi-line string opened and never closed; nothing was written`);
  return { tables, keys };
}

export const toml: BlockFormat = {
  check(text, file) {
    const seen = new Set<string>();
    for (const table of tomlTables(text, file).tables) {
      const key = JSON.stringify(table.path);
      if (seen.has(key)) throw new ApiaryError('Usage', `${file}:${table.line + 1}: table [${table.path.join('.')}] defined twice; nothing was written`);
      seen.add(key);
    }
  },
  find(text, container, name) {
    const { tables, keys } = tomlTables(text, '');
    const at = tables.findIndex((t) => t.path.length === 2 && t.path[0] === container && t.path[1] === name);
    const starts = lineStarts(text);
    if (at === -1) {
      // Declared with keys, not a table of its own (`[mcp_servers]` then `NAME.command = ...`, or `mcp_servers.NAME = { ... }`): the person's.
      const own = keys.filter((k) => k.path[0] === container && k.path[1] === name);
      if (own.length === 0) return undefined;
      const last = Math.max(...own.map((k) => k.last));
      return { start: starts[Math.min(...own.map((k) => k.first))]!, end: last + 1 < starts.length ? starts[last + 1]! : text.length };
    }
    const inside = (t: TomlTable): boolean => t.path[0] === container && t.path[1] === name;
    const next = tables.slice(at + 1).find((t) => !inside(t));
    const lines = text.split('\n');
    // The block ends at its last line of content: comments and blank lines before the next table stay with that table.
    let last = (next?.line ?? lines.length) - 1;
    while (last > tables[at]!.line && /^\s*(#.*)?\r?$/.test(lines[last]!)) last--;
    const end = last + 1 < starts.length ? starts[last + 1]! : text.length;
    return { start: starts[tables[at]!.line]!, end };
  },
  render(_text, container, name, value, eol) {
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${tomlKey(k)} = ${tomlValue(v)}${eol}`);
    return `[${container}.${tomlKey(name)}]${eol}${entries.join('')}`;
  },
  insert(text, _container, block, eol) {
    if (text.trim() === '') return block;
    const ended = text.endsWith('\n') ? text : text + eol;
    return `${ended}${eol}${block}`;
  },
};

// --- YAML ---------------------------------------------------------------

function yamlDocument(text: string, file: string): ReturnType<typeof parseDocument> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, keepSourceTokens: false });
  const error = doc.errors[0];
  if (error !== undefined) {
    const { line, col } = counter.linePos(error.pos[0]);
    throw new ApiaryError('Usage', `${file}:${line}:${col}: ${error.message.split('\n')[0]}; nothing was written`);
  }
  return doc;
}

/** The container's mapping, when it is a block mapping apiary can add to. */
function yamlContainer(text: string, file: string, container: string): { pair?: Pair; items: Pair[] } {
  const doc = yamlDocument(text, file);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return { items: [] };
  if (!isMap(doc.contents)) throw new ApiaryError('Usage', `${file}: the document is not a mapping; nothing was written`);
  const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === container);
  if (pair === undefined) return { items: [] };
  if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) return { pair, items: [] };
  if (!isMap(pair.value) || pair.value.flow === true) throw new ApiaryError('Usage', `${file}: "${container}" is not a block mapping apiary can add to; nothing was written`);
  return { pair, items: pair.value.items as Pair[] };
}

const lineStart = (text: string, offset: number): number => text.lastIndexOf('\n', offset - 1) + 1;
function lineEnd(text: string, offset: number): number {
  if (offset > 0 && text[offset - 1] === '\n') return offset;
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? text.length : nl + 1;
}

function itemSpan(text: string, item: Pair): Span {
  const key = item.key as { range?: [number, number, number] };
  const value = item.value as { range?: [number, number, number] } | null;
  const start = lineStart(text, key.range![0]);
  return { start, end: lineEnd(text, value?.range?.[1] ?? key.range![1]) };
}

/** The indentation of the container's entries (two spaces when it has none). */
function yamlIndent(text: string, items: Pair[]): string {
  const first = items[0];
  if (first === undefined) return '  ';
  const offset = (first.key as { range: [number, number, number] }).range[0];
  return text.slice(lineStart(text, offset), offset);
}

export const yaml: BlockFormat = {
  check(text, file, container) {
    yamlContainer(text, file, container);
  },
  find(text, container, name) {
    const item = yamlContainer(text, '', container).items.find((p) => isScalar(p.key) && p.key.value === name);
    return item !== undefined ? itemSpan(text, item) : undefined;
  },
  render(text, container, name, value, eol) {
    const indent = yamlIndent(text, text.trim() === '' ? [] : yamlContainer(text, '', container).items);
    const body = stringify({ [name]: value }, { indent: 2, lineWidth: 0 }).trimEnd().split('\n');
    return body.map((line) => `${indent}${line}${eol}`).join('');
  },
  insert(text, container, block, eol) {
    const { pair, items } = yamlContainer(text, '', container);
    const last = items.at(-1);
    if (last !== undefined) {
      const at = itemSpan(text, last).end;
      return `${text.slice(0, at)}${at === text.length && !text.endsWith('\n') ? eol : ''}${block}${text.slice(at)}`;
    }
    if (pair !== undefined) {
      // `extensions:` with nothing under it: the entry goes right under the key's line.
      const at = lineEnd(text, (pair.key as { range: [number, number, number] }).range[1]);
      const line = text.slice(lineStart(text, at - 1), at).replace(/\s*(#.*)?\r?\n?$/, '');
      if (!line.endsWith(':')) throw new ApiaryError('Usage', `"${container}" is not a block mapping apiary can add to; nothing was written`);
      return `${text.slice(0, at)}${at === text.length && !text.endsWith('\n') ? eol : ''}${block}${text.slice(at)}`;
    }
    const ended = text === '' || text.endsWith('\n') ? text : text + eol;
    return `${ended}${container}:${eol}${block}`;
  },
};

export function blockFormat(format: 'toml' | 'yaml'): BlockFormat {
  return format === 'toml' ? toml : yaml;
}
