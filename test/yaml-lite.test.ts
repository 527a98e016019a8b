/**
 * The start-up snapshot's get and validate read manifests with
 * src/manifests/yaml-lite.ts and ask the `yaml` package only for a text it
 * leaves (scripts/bundle.mjs). So whatever it answers must be what the
 * package answers, in everything parse.ts and locate.ts read: the number of
 * documents, each one's range and value (toJS), every node's kind and start
 * (the line and column of every message), and the line starts. Checked on
 * every manifest the project ships or tests with and thousands of edited
 * copies of them, which is also where it must say "not mine": the package's
 * errors are never to be had from it.
 */
import { isMap, isScalar, isSeq, LineCounter as YamlLineCounter, parseAllDocuments, type Document } from 'yaml';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../chaos/seeded.js';
import { LineCounter, parseAllDocumentsLite, type LiteDocument } from '../src/manifests/yaml-lite.js';
import { manifestTexts } from './helpers/manifest-texts.js';

/** Every node as kind@start, keys and values in order: the outline both parsers must give alike. */
function outline(node: unknown): unknown {
  if (node === null || node === undefined) return null;
  const start = (node as { range?: number[] }).range?.[0];
  if (isMap(node)) return { map: start, items: node.items.map((p) => [outline(p.key), outline(p.value)]) };
  if (isSeq(node)) return { seq: start, items: node.items.map(outline) };
  if (isScalar(node)) return { scalar: start, value: node.value };
  return { other: String(node) };
}

/** A document with nothing in it: the package gives a null scalar, the reader null; parse.ts skips both. */
const empty = (contents: unknown): boolean => contents === null || (isScalar(contents) && contents.value === null && !('items' in contents));

type Verdict = 'read' | 'left';

/** The reader's answer against the package's on one text. */
function compare(text: string, where: string): Verdict {
  const lc = new LineCounter();
  const lite = parseAllDocumentsLite(text, lc);
  if (lite === undefined) {
    expect(lc.lineStarts, `${where}: the line counter is touched by a text left to the package`).toEqual([]);
    return 'left';
  }
  const ylc = new YamlLineCounter();
  const docs = parseAllDocuments(text, { lineCounter: ylc, prettyErrors: true, uniqueKeys: true }) as Document[];
  const context = `${where}\n--- text ---\n${text}\n---`;
  for (const doc of docs) {
    expect(doc.errors.map((e) => e.message), `${context}: read, where the package finds errors`).toEqual([]);
    expect(doc.warnings.map((e) => e.message), `${context}: read, where the package warns`).toEqual([]);
  }
  expect(lite.length, `${context}: documents`).toBe(docs.length);
  expect(lc.lineStarts, `${context}: line starts`).toEqual(ylc.lineStarts);
  docs.forEach((doc, i) => {
    const mine: LiteDocument = lite[i]!;
    expect([mine.range[0], mine.range[2]], `${context}: document ${i + 1}'s range`).toEqual([doc.range?.[0], doc.range?.[2]]);
    if (empty(doc.contents)) {
      expect(empty(mine.contents), `${context}: document ${i + 1} is empty`).toBe(true);
      return;
    }
    expect(outline(mine.contents), `${context}: document ${i + 1}'s nodes`).toEqual(outline(doc.contents));
    const theirs = doc.toJS({ maxAliasCount: 100 }) as unknown;
    const ours = mine.toJS({ maxAliasCount: 100 });
    expect(JSON.stringify(ours), `${context}: document ${i + 1}'s value`).toBe(JSON.stringify(theirs));
    expect(ours, `${context}: document ${i + 1}'s value`).toEqual(theirs);
  });
  return 'read';
}

/** Characters that mean something to YAML, and some that do not. */
const ALPHABET = [' ', ' ', '  ', '\n', '\n  ', '- ', '-', ':', ': ', '#', ' #', '"', "'", "''", '\\', '\\"', '\\u00e9', '[', ']', '{', '}', ',', ', ', '0', '1', '-1', '0x1', '1.5', '.', '~', 'null', 'true', 'True', 'no', 'a', 'é', '|', '>', '&a', '*a', '!', '!!str ', '?', '%', '@', '`', '\t', '\r\n', '---', '...', '<<', '__proto__'];

/** One edited copy of `text`: a piece inserted, a span deleted or replaced, a line repeated, moved or re-indented. */
function edit(text: string, random: () => number): string {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const at = Math.floor(random() * (text.length + 1));
  const lines = text.split('\n');
  const line = Math.floor(random() * lines.length);
  switch (Math.floor(random() * 7)) {
    case 0:
      return text.slice(0, at) + pick(ALPHABET) + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
    case 2:
      return text.slice(0, at) + pick(ALPHABET) + text.slice(at + 1);
    case 3:
      lines.splice(line, 0, lines[line]!);
      return lines.join('\n');
    case 4: {
      const [moved] = lines.splice(line, 1);
      lines.splice(Math.floor(random() * (lines.length + 1)), 0, moved!);
      return lines.join('\n');
    }
    case 5:
      lines[line] = random() < 0.5 ? ` ${lines[line]!}` : lines[line]!.replace(/^ /, '');
      return lines.join('\n');
    default:
      return lines.slice(0, line).join('\n') + (random() < 0.5 ? '\n---\n' : '\n') + lines.slice(line).join('\n');
  }
}

describe('the snapshot\'s YAML reader', () => {
  it('reads every manifest the project ships or tests with as the yaml package does', async () => {
    const texts = await manifestTexts();
    const left: string[] = [];
    for (const { where, text } of texts) if (compare(text, where) === 'left') left.push(where);
    // The point is speed on real manifests: those it leaves should be the ones written to be odd (invalid fixtures, YAML errors).
    const shipped = texts.filter((t) => /^(manifests|examples)\//.test(t.where) || t.where.startsWith('README.md') || t.where.includes('/valid/'));
    expect(shipped.length).toBeGreaterThan(10);
    expect(left.filter((w) => shipped.some((t) => t.where === w)), 'shipped or valid manifests left to the package').toEqual([]);
  });

  it('answers as the package does, or not at all, on thousands of edited copies', async () => {
    const texts = await manifestTexts();
    const random = seededRandom(0x5eed);
    const counts = { read: 0, left: 0 };
    for (let n = 0; n < 6000; n++) {
      const base = texts[Math.floor(random() * texts.length)]!;
      let text = base.text;
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) text = edit(text, random);
      counts[compare(text, `${base.where} with ${edits} edit(s), copy ${n}`)]++;
    }
    // Both ways taken often enough to mean something.
    expect(counts.read).toBeGreaterThan(1500);
    expect(counts.left).toBeGreaterThan(1500);
  });

  it('reads the forms manifests use, positions included', () => {
    const cases = [
      '',
      '# only a comment\n',
      'a: 1\n',
      '# c\na: 1\n# trailing\n\n',
      'a:\nb: x # c\n',
      'a: # c\nb: 1\n',
      'a:   \n  # c\nb: 1\n',
      'a: 1\n---\nb: 2\n',
      '# c\n---\na: 1\n',
      'a: 1\n# between\n---\nb: 2\n',
      'a: 1\n\n\n---\n\n# x\nb: 2\n# end',
      '---\na: 1\n---\n---\nc: [x, "y", \'z\']\nd: { n: 1, k: v }\n',
      'perTool: [{server: github, tool: "create_*", requests: 10}, {a: [1, [2]]}]\n',
      'l:\n- a\n-   b\n- k: v\n  j: w\nm:\n  - 1\n',
      's:\n-\n- # c\n- x\n',
      'a: ""\nb: []\nc: {}\nd: [ ]\n',
      '"a b": x\n\'c\': "y:z # w"\nu: http://x/y#z\nv: a:b\n',
      'x: -1\ny: +3\nz: 007\nv: ~\nq: Null\nr: "a\\"b\\\\"\nt: TRUE\nf: false\ne: \'it\'\'s\'\n',
      'a:\n  b:\n  c: 2\nd:\n- - 1\n  - 2\n- []\n',
      'args: ["-y", "@scope/pkg", --flag, -x]\nm: {a: b, c: "d, e", f: 1}\n',
      '- a\n- b',
      'a: 1\n---\n',
      '---\n',
      '---\n---\n',
    ];
    for (const text of cases) expect(compare(text, JSON.stringify(text)), JSON.stringify(text)).toBe('read');
  });

  it('leaves to the package what it does not read', () => {
    const cases = [
      'a: b\n  c\n',
      'a: |\n  x\n',
      'a: >-\n  x\n',
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: 0x1f\n',
      'a: 1.5\n',
      'a: .inf\n',
      'a: 1e3\n',
      'a: 1\na: 2\n',
      'a: 1\n...\n',
      '%YAML 1.2\n---\na: 1\n',
      'a:\tb\n',
      'a: 1\r\nb: 2\r\n',
      '\ufeffa: 1\n',
      'a: [1,\n  2]\n',
      'a: "x\\ty\\qz"\n',
      '? a\n: b\n',
      'a: b: c\n',
      'k:v\n',
      '1: a\n',
      'true: a\n',
      '__proto__: a\n',
      '<<: {a: 1}\n',
      '  a: 1\n',
      '--- a: 1\n',
      'plain\n',
      'a: "unterminated\n',
      'a:\n- 1\nb\n',
      '- \n  x\n',
      // An empty value or document last, with a comment after it: where the package ends the document is its own rule.
      '---\na: 1\n---\n# nothing\n---\nc: 1\n',
      'a: 1\nb:\n# c\n\n---\n',
      'a: [x: 1]\n',
      'a: {[x]: 1}\n',
      // Deeper than the reader follows (a text made to exhaust its stack): the package's.
      `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`,
      Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k${i}:\n`).join(''),
    ];
    for (const text of cases) {
      const lc = new LineCounter();
      expect(parseAllDocumentsLite(text, lc), JSON.stringify(text)).toBeUndefined();
      expect(lc.lineStarts).toEqual([]);
    }
  });
});
