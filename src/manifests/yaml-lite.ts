/**
 * A reader for the part of YAML that manifests are written in, for the
 * start-up snapshot's get and validate (scripts/bundle.mjs puts it in front
 * of the `yaml` package in their bundle only): block mappings and sequences,
 * plain and quoted scalars on one line, flow sequences and mappings on one
 * line (of scalars and of each other), comments and `---` between documents. Where the `yaml` package
 * took 2.8 ms of a get's 7 ms, this takes a tenth of that, and the package
 * (160 KB of source, its compiled parser) leaves the heap every start reads.
 *
 * It gives what parse.ts and locate.ts read, as the package gives it: each
 * document's range and errors, its contents as nodes the package's isMap,
 * isSeq, isScalar and isPair recognize (the same type symbols), each node's
 * start (range[0]: the only part of a node's range kept), the values toJS
 * makes, and the line starts a LineCounter holds. Anything outside that part
 * (a tab, an anchor, a tag, a block scalar, a scalar over two lines, a key
 * twice, a number that is not a decimal integer, any syntax error...) and it
 * answers undefined for the whole text: the caller then asks the package,
 * whose answer, errors and messages included, is the one that counts.
 * test/yaml-lite.test.ts holds it to the package on every manifest of the
 * repository and thousands of edits of them.
 */

const NODE_TYPE = Symbol.for('yaml.node.type');
const MAP = Symbol.for('yaml.map');
const SEQ = Symbol.for('yaml.seq');
const SCALAR = Symbol.for('yaml.scalar');
const PAIR = Symbol.for('yaml.pair');

type Range = [number, number, number];

export interface LiteScalar {
  [NODE_TYPE]: typeof SCALAR;
  value: string | number | boolean | null;
  range: Range;
}
export interface LitePair {
  [NODE_TYPE]: typeof PAIR;
  key: LiteScalar;
  value: LiteNode;
}
export interface LiteMap {
  [NODE_TYPE]: typeof MAP;
  items: LitePair[];
  range: Range;
}
export interface LiteSeq {
  [NODE_TYPE]: typeof SEQ;
  items: LiteNode[];
  range: Range;
}
export type LiteNode = LiteScalar | LiteMap | LiteSeq;

export interface LiteDocument {
  contents: LiteNode | null;
  /** [start, end, end]: where the document starts (its `---`, or its first node) and where the next begins (or the text ends). */
  range: Range;
  errors: never[];
  warnings: never[];
  toJS(options?: { maxAliasCount?: number }): unknown;
}

const at = (start: number): Range => [start, start, start];
const scalar = (value: LiteScalar['value'], start: number): LiteScalar => ({ [NODE_TYPE]: SCALAR, value, range: at(start) });

function isType(node: unknown, type: symbol): boolean {
  return typeof node === 'object' && node !== null && (node as Record<symbol, unknown>)[NODE_TYPE] === type;
}
/** As the `yaml` package's: true for its nodes and for these. */
export const isMap = (node: unknown): boolean => isType(node, MAP);
export const isSeq = (node: unknown): boolean => isType(node, SEQ);
export const isScalar = (node: unknown): boolean => isType(node, SCALAR);
export const isPair = (node: unknown): boolean => isType(node, PAIR);

/** The `yaml` package's LineCounter, the same fields (its parser fills it through addNewLine; this reader sets lineStarts). */
export class LineCounter {
  lineStarts: number[] = [];
  addNewLine = (offset: number): number => this.lineStarts.push(offset);
  linePos = (offset: number): { line: number; col: number } => {
    let low = 0;
    let high = this.lineStarts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.lineStarts[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    if (this.lineStarts[low] === offset) return { line: low + 1, col: 1 };
    if (low === 0) return { line: 0, col: offset };
    return { line: low, col: offset - this.lineStarts[low - 1]! + 1 };
  };
}

/** Thrown inside the reader for anything it leaves to the package; caught at the top. */
class Unsupported extends Error {}
const unsupported = (): never => {
  throw new Unsupported();
};

interface Line {
  /** Offset of the line's first character. */
  start: number;
  /** Offset of its end (the newline, or the text's end). */
  end: number;
  /** Column of its first character that is not a space; moved on past a sequence's "- " when an item's node starts on that line. */
  indent: number;
}

// The core schema's tests (the package's src/schema/core): a plain scalar that matches one of those this
// reader does not resolve (octal, hex, float, inf, nan) is left to the package.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT = /^[-+]?[0-9]+$/;
const OTHER_NUMBER = /^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/;

function resolvePlain(text: string): LiteScalar['value'] {
  if (NULL.test(text)) return null;
  if (BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (INT.test(text)) return parseInt(text, 10);
  if (OTHER_NUMBER.test(text)) unsupported();
  return text;
}

/** Nodes within nodes the reader follows; manifests need a handful. */
const MAX_DEPTH = 64;

/** Characters that cannot start a plain scalar (YAML 1.2, c-indicator); "-", "?" and ":" can, before a safe character. */
const INDICATORS = new Set([...',[]{}#&*!|>\'"%@`']);
/** Flow indicators: they end a plain scalar inside [ ] and { }. */
const FLOW = new Set([...',[]{}']);

/**
 * Reads one text. Line by line: each node's lines are those more indented
 * than its parent's (or a sequence at its key's indentation, which YAML
 * allows a mapping's value).
 */
class Reader {
  private readonly lines: Line[] = [];
  private i = 0;
  /**
   * Where the text read so far ends: past the newline of a value's line, or
   * right after an empty value (or a document's `---`), whose newline the
   * package leaves out of its document.
   */
  private lastEnd = 0;
  /** How many nodes deep the reader is: past MAX_DEPTH (a text written to exhaust the stack), the package reads it. */
  private depth = 0;

  constructor(private readonly text: string) {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      const end = nl < 0 ? text.length : nl;
      let indent = start;
      while (indent < end && text.charCodeAt(indent) === 32) indent++;
      this.lines.push({ start, end, indent: indent - start });
      if (nl < 0) break;
      start = nl + 1;
    }
  }

  documents(): LiteDocument[] {
    const docs: LiteDocument[] = [];
    let docStart: number | undefined;
    let contents: LiteNode | null = null;
    const close = (next: number): void => {
      if (docStart === undefined) return;
      const node = contents;
      const end = this.documentEnd(next);
      docs.push({ contents: node, range: [docStart, end, end], errors: [], warnings: [], toJS: () => toJS(node) });
    };
    for (;;) {
      this.skipBlank();
      if (this.i >= this.lines.length) break;
      const line = this.lines[this.i]!;
      if (this.isMarker(line)) {
        close(line.start);
        docStart = line.start;
        contents = null;
        this.lastEnd = line.start + 3;
        // "--- value" or "--- # comment": content on the marker's line is left to the package.
        if (line.end > line.start + 3) unsupported();
        this.i++;
        continue;
      }
      if (contents !== null) unsupported();
      if (line.indent !== 0) unsupported();
      docStart ??= line.start;
      contents = this.block(0);
    }
    close(this.text.length);
    return docs;
  }

  /**
   * Where the package ends a document the next one of which starts at `next`
   * (or the text ends there): after a value's line, the blank and comment
   * lines up to `next` are the document's; after an empty value (or an
   * empty document), blank lines are not, and with a comment among them the
   * package's rule is one this reader leaves to it.
   */
  private documentEnd(next: number): number {
    const end = this.lastEnd;
    if (end === next || this.text[end - 1] === '\n') return next;
    if (this.text.slice(end, next).includes('#')) unsupported();
    return end;
  }

  private isMarker(line: Line): boolean {
    const t = this.text;
    if (line.indent !== 0 || line.end - line.start < 3) return false;
    const s = line.start;
    if (t.startsWith('...', s) && (line.end === s + 3 || t[s + 3] === ' ')) unsupported();
    if (t[s] === '%') unsupported();
    return t.startsWith('---', s) && (line.end === s + 3 || t[s + 3] === ' ');
  }

  /** Moves past empty lines and lines with a comment only. */
  private skipBlank(): void {
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      const first = line.start + line.indent;
      if (first < line.end && this.text[first] !== '#') return;
      this.i++;
    }
  }

  /** The next line with content, if it is indented at least `min` and is not a document marker. */
  private next(min: number): Line | undefined {
    this.skipBlank();
    const line = this.lines[this.i];
    if (line === undefined || line.indent < min || (line.indent === 0 && this.isMarker(line))) return undefined;
    return line;
  }

  /** The node whose first line is the current one, at that line's indentation. */
  private block(indent: number): LiteNode {
    const line = this.lines[this.i]!;
    if (++this.depth > MAX_DEPTH) unsupported();
    let node: LiteNode;
    if (this.isItem(line)) node = this.sequence(indent);
    else if (this.keyEnd(line.start + line.indent, line.end) !== undefined) node = this.mapping(indent);
    else return unsupported();
    this.depth--;
    return node;
  }

  /** Whether the line's content is a sequence item: "-" then a space or the line's end. */
  private isItem(line: Line): boolean {
    return this.isItemAt(line.start + line.indent, line.end);
  }

  private sequence(indent: number): LiteSeq {
    const first = this.lines[this.i]!;
    const node: LiteSeq = { [NODE_TYPE]: SEQ, items: [], range: at(first.start + first.indent) };
    for (let line: Line | undefined = first; line !== undefined && line.indent === indent && this.isItem(line); line = this.next(indent)) {
      let p = line.start + line.indent + 1;
      while (p < line.end && this.text[p] === ' ') p++;
      if (p === line.end || this.text[p] === '#') {
        // An empty item: null, where the item's text would be. One whose node is on the lines below is left to the package.
        node.items.push(scalar(null, p));
        this.lastEnd = p;
        this.i++;
        if (this.next(indent + 1) !== undefined) unsupported();
        continue;
      }
      if (this.keyEnd(p, line.end) !== undefined || this.isItemAt(p, line.end)) {
        // "- key: value" or "- - x": a node that starts on the item's line, at the column of its text.
        line.indent = p - line.start;
        node.items.push(this.block(line.indent));
        continue;
      }
      node.items.push(this.inlineValue(p, line.end));
      this.endAfter(line);
      this.i++;
      if (this.next(indent + 1) !== undefined) unsupported();
    }
    return node;
  }

  /** The text read so far ends past `line`, a value's line, and its newline. */
  private endAfter(line: Line): void {
    this.lastEnd = Math.min(line.end + 1, this.text.length);
  }

  /** Whether the text from `p` (on a line ending at `end`) starts a sequence item. */
  private isItemAt(p: number, end: number): boolean {
    return this.text[p] === '-' && (p + 1 === end || this.text[p + 1] === ' ');
  }

  private mapping(indent: number): LiteMap {
    const first = this.lines[this.i]!;
    const node: LiteMap = { [NODE_TYPE]: MAP, items: [], range: at(first.start + first.indent) };
    const seen = new Set<string>();
    for (let line: Line | undefined = first; line !== undefined && line.indent === indent; line = this.next(indent)) {
      const keyStart = line.start + line.indent;
      const colon = this.keyEnd(keyStart, line.end);
      if (colon === undefined) unsupported();
      const key = this.keyScalar(keyStart, colon!);
      addKey(seen, key);
      let p = colon! + 1;
      while (p < line.end && this.text[p] === ' ') p++;
      if (p < line.end && this.text[p] !== '#') {
        node.items.push({ [NODE_TYPE]: PAIR, key, value: this.inlineValue(p, line.end) });
        this.endAfter(line);
        this.i++;
        if (this.next(indent + 1) !== undefined) unsupported();
        continue;
      }
      // No value on the key's line: the lines below more indented, a sequence at the key's own indentation, or null.
      this.i++;
      const below = this.next(indent);
      if (below !== undefined && (below.indent > indent || this.isItem(below))) {
        node.items.push({ [NODE_TYPE]: PAIR, key, value: this.block(below.indent) });
      } else {
        node.items.push({ [NODE_TYPE]: PAIR, key, value: scalar(null, p) });
        this.lastEnd = p;
      }
    }
    return node;
  }

  /**
   * If the text from `p` is a mapping's key followed by ":" and a space (or the
   * line's end), the offset of that colon. Quoted keys end at their quote; a
   * plain key at the first ": ", and not inside a comment.
   */
  private keyEnd(p: number, end: number): number | undefined {
    const t = this.text;
    const c = t[p];
    let q: number;
    if (c === '"' || c === "'") {
      q = this.quotedEnd(p, end);
    } else {
      if (this.isItemAt(p, end)) return undefined;
      q = p;
      for (; q < end; q++) {
        const ch = t[q];
        if (ch === ':' && (q + 1 === end || t[q + 1] === ' ')) return q;
        if (ch === '#' && q > p && t[q - 1] === ' ') return undefined;
      }
      return undefined;
    }
    while (q < end && t[q] === ' ') q++;
    return t[q] === ':' && (q + 1 === end || t[q + 1] === ' ') ? q : undefined;
  }

  /** The key from `p` to its colon, as a scalar. */
  private keyScalar(p: number, colon: number): LiteScalar {
    const c = this.text[p];
    if (c === '"' || c === "'") return this.quoted(p, colon).node;
    const raw = this.text.slice(p, colon).replace(/ +$/, '');
    this.plainStart(p, colon, false);
    return scalar(resolvePlain(raw), p);
  }

  /** A value written on one line from `p`: a flow collection, a quoted or a plain scalar; nothing may follow it but a comment. */
  private inlineValue(p: number, end: number): LiteNode {
    const t = this.text;
    const c = t[p];
    let node: LiteNode;
    let after: number;
    if (c === '[' || c === '{') {
      ({ node, after } = this.flow(p, end));
    } else if (c === '"' || c === "'") {
      ({ node, after } = this.quoted(p, end));
    } else {
      this.plainStart(p, end, false);
      let q = p;
      for (; q < end; q++) {
        const ch = t[q];
        if (ch === ':' && (q + 1 === end || t[q + 1] === ' ')) unsupported();
        if (ch === '#' && t[q - 1] === ' ') break;
      }
      const raw = t.slice(p, q).replace(/ +$/, '');
      return scalar(resolvePlain(raw), p);
    }
    this.restIsComment(after, end);
    return node;
  }

  /** Whatever could not start a plain scalar here is left to the package. */
  private plainStart(p: number, end: number, inFlow: boolean): void {
    const t = this.text;
    const c = t[p]!;
    if (INDICATORS.has(c)) unsupported();
    if (c === '-' || c === '?' || c === ':') {
      const n = t[p + 1];
      if (p + 1 >= end || n === ' ' || (inFlow && FLOW.has(n!))) unsupported();
    }
  }

  private restIsComment(p: number, end: number): void {
    let q = p;
    while (q < end && this.text[q] === ' ') q++;
    if (q < end && !(this.text[q] === '#' && q > p)) unsupported();
  }

  /** Where the quoted scalar at `p` ends (past its closing quote); it must close on its line. */
  private quotedEnd(p: number, end: number): number {
    const t = this.text;
    const quote = t[p];
    for (let q = p + 1; q < end; q++) {
      const ch = t[q];
      if (quote === '"' && ch === '\\') q++;
      else if (ch === quote) {
        if (quote === "'" && t[q + 1] === "'") q++;
        else return q + 1;
      }
    }
    return unsupported();
  }

  private quoted(p: number, end: number): { node: LiteScalar; after: number } {
    const t = this.text;
    const after = this.quotedEnd(p, end);
    const body = t.slice(p + 1, after - 1);
    let value: string;
    if (t[p] === "'") value = body.replace(/''/g, "'");
    else {
      value = body.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
        if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16));
        switch (e) {
          case '\\':
          case '"':
          case '/':
            return e;
          case 'n':
            return '\n';
          case 't':
            return '\t';
          default:
            return unsupported();
        }
      });
    }
    return { node: scalar(value, p), after };
  }

  /** A flow sequence or mapping (of scalars, or of flow sequences and mappings), closed on its line. */
  private flow(p: number, end: number): { node: LiteSeq | LiteMap; after: number } {
    const t = this.text;
    if (++this.depth > MAX_DEPTH) unsupported();
    const isSeq = t[p] === '[';
    const close = isSeq ? ']' : '}';
    const seq: LiteSeq = { [NODE_TYPE]: SEQ, items: [], range: at(p) };
    const map: LiteMap = { [NODE_TYPE]: MAP, items: [], range: at(p) };
    const seen = new Set<string>();
    let q = p + 1;
    const skip = (): void => {
      while (q < end && t[q] === ' ') q++;
    };
    const item = (): { node: LiteNode; after: number } => {
      const c = t[q];
      if (c === '"' || c === "'") return this.quoted(q, end);
      if (c === '[' || c === '{') return this.flow(q, end);
      this.plainStart(q, end, true);
      let r = q;
      for (; r < end; r++) {
        const ch = t[r]!;
        if (FLOW.has(ch)) break;
        if (ch === ':' && (r + 1 === end || t[r + 1] === ' ' || FLOW.has(t[r + 1]!))) break;
        if (ch === '#' && t[r - 1] === ' ') unsupported();
      }
      const raw = t.slice(q, r).replace(/ +$/, '');
      if (raw === '') unsupported();
      return { node: scalar(resolvePlain(raw), q), after: r };
    };
    const done = (): { node: LiteSeq | LiteMap; after: number } => {
      this.depth--;
      return { node: isSeq ? seq : map, after: q + 1 };
    };
    skip();
    if (t[q] === close) return done();
    for (;;) {
      if (q >= end) unsupported();
      const first = item();
      q = first.after;
      skip();
      if (isSeq) {
        seq.items.push(first.node);
      } else {
        if (t[q] !== ':' || t[q + 1] !== ' ' || first.node[NODE_TYPE] !== SCALAR) unsupported();
        const key = first.node as LiteScalar;
        addKey(seen, key);
        q++;
        skip();
        if (t[q] === ',' || t[q] === close) unsupported();
        const value = item();
        q = value.after;
        skip();
        map.items.push({ [NODE_TYPE]: PAIR, key, value: value.node });
      }
      if (t[q] === close) return done();
      if (t[q] !== ',') unsupported();
      q++;
      skip();
      if (t[q] === close || t[q] === ',') unsupported();
    }
  }
}

/** A mapping's key, noted in `seen`: one that is not a string, is special to the package (`__proto__`, a merge key `<<`) or comes twice is the package's to read. */
function addKey(seen: Set<string>, key: LiteScalar): void {
  if (typeof key.value !== 'string' || key.value === '__proto__' || key.value === '<<' || seen.has(key.value)) unsupported();
  seen.add(key.value as string);
}

function toJS(node: LiteNode | null): unknown {
  if (node === null) return null;
  if (node[NODE_TYPE] === SCALAR) return node.value;
  if (node[NODE_TYPE] === SEQ) return node.items.map(toJS);
  const out: Record<string, unknown> = {};
  for (const pair of node.items) out[pair.key.value as string] = toJS(pair.value);
  return out;
}

/** Characters this reader leaves to the package wherever they are: tabs, carriage returns, controls, a byte-order mark, Unicode's line separators. */
// eslint-disable-next-line no-control-regex
const AVOID = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\ufeff\u2028\u2029]/;

/**
 * The documents of `text` as the `yaml` package's parseAllDocuments gives
 * them, with `lineCounter` filled as its parser fills it; or undefined, and
 * `lineCounter` untouched, when the text is not in the part this reader
 * reads.
 */
export function parseAllDocumentsLite(text: string, lineCounter?: LineCounter): LiteDocument[] | undefined {
  if (AVOID.test(text)) return undefined;
  let docs: LiteDocument[];
  try {
    docs = new Reader(text).documents();
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  if (lineCounter !== undefined) {
    lineCounter.addNewLine(0);
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lineCounter.addNewLine(nl + 1);
  }
  return docs;
}
