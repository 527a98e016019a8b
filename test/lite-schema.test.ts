/**
 * The start-up snapshot checks documents with src/api/lite-schema.ts's record
 * of the manifest schemas (src/api/manifests.ts built against it instead of
 * zod, as scripts/bundle.mjs builds it there) and asks zod only for what it
 * refuses. So what it takes must be exactly what zod takes, and its output
 * zod's, key order included (get -o yaml prints it): checked here on every
 * manifest the project ships or tests with, the README's examples, and
 * thousands of broken copies of them. What the verbs print for invalid
 * manifests from the snapshot is compared with the bundle's in
 * test/cli-startup.test.ts.
 */
import { parseAllDocuments } from 'yaml';
import { describe, expect, it, vi } from 'vitest';
import * as liteSchema from '../src/api/lite-schema.js';
import { conform, REFUSED } from '../src/api/lite-schema.js';
import { MANIFEST_SCHEMAS } from '../src/api/manifests.js';
import { manifestTexts } from './helpers/manifest-texts.js';

vi.resetModules();
vi.doMock('zod', () => liteSchema);
const LITE = (await import('../src/api/manifests.js')).MANIFEST_SCHEMAS;
vi.doUnmock('zod');

/** Every document of the shipped and test manifests, and of the README's yaml blocks, as YAML makes it. */
async function documents(): Promise<{ where: string; input: unknown }[]> {
  const texts = await manifestTexts();
  const out: { where: string; input: unknown }[] = [];
  for (const { where, text } of texts) {
    for (const [i, doc] of parseAllDocuments(text).entries()) {
      if (doc.errors.length > 0) continue;
      const input = doc.toJS({ maxAliasCount: 100 }) as unknown;
      if (input !== null && typeof input === 'object') out.push({ where: `${where} #${i + 1}`, input });
    }
  }
  return out;
}

function schemasFor(input: unknown): { zod: (typeof MANIFEST_SCHEMAS)[number]['schema']; lite: unknown } | undefined {
  const { apiVersion, kind } = input as { apiVersion?: unknown; kind?: unknown };
  const i = MANIFEST_SCHEMAS.findIndex((s) => s.apiVersion === apiVersion && s.kind === kind);
  return i < 0 ? undefined : { zod: MANIFEST_SCHEMAS[i]!.schema, lite: LITE[i]!.schema };
}

/** zod's verdict and the lite schemas': the same output when both take it, and never taken by the lite schemas alone. */
function compare(input: unknown, where: string): 'both' | 'zod only' | 'neither' {
  const schemas = schemasFor(input);
  if (schemas === undefined) return 'neither';
  const zod = schemas.zod.safeParse(input);
  const lite = conform(schemas.lite, input);
  if (lite === REFUSED) return zod.success ? 'zod only' : 'neither';
  expect(zod.success, `${where}: taken by the lite schemas, refused by zod: ${JSON.stringify(zod.error?.issues)}`).toBe(true);
  expect(JSON.stringify(lite), where).toBe(JSON.stringify(zod.data));
  expect(lite, where).toEqual(zod.data);
  return 'both';
}

const REPLACEMENTS: unknown[] = [null, 0, -1, 1.5, 70000, 2 ** 53, Infinity, true, '', 'x', 'Has Space', 'UPPER', 'a\0b', 'x'.repeat(300), '-opt', '/abs/path', '~/a/../b', 'apiary:v2:abc', 'http://user:pw@host/x', 'host:99999', '500m', [], ['x'], [{}], {}, { x: 'y' }];

/** Copies of `input`, each with one change: a field dropped, its value replaced, an unknown field added, a list emptied or doubled. */
function* mutants(input: unknown): Generator<{ change: string; input: unknown }> {
  const paths: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    paths.push(path);
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (node !== null && typeof node === 'object') for (const [key, value] of Object.entries(node)) walk(value, [...path, key]);
  };
  walk(input, []);
  const edit = (path: (string | number)[], change: (parent: Record<string | number, unknown>, key: string | number) => void): unknown => {
    const copy = structuredClone(input) as Record<string | number, unknown>;
    let parent = copy;
    for (const segment of path.slice(0, -1)) parent = parent[segment] as Record<string | number, unknown>;
    change(parent, path.at(-1)!);
    return copy;
  };
  for (const path of paths.slice(1)) {
    const at = path.join('.');
    yield { change: `drop ${at}`, input: edit(path, (p, k) => (Array.isArray(p) ? p.splice(Number(k), 1) : delete p[k])) };
    for (const value of REPLACEMENTS) yield { change: `${at} = ${JSON.stringify(value)}`, input: edit(path, (p, k) => (p[k] = structuredClone(value))) };
  }
  for (const path of paths) {
    const node = path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], input);
    const at = path.join('.') || '(top)';
    if (Array.isArray(node)) {
      yield { change: `${at} emptied`, input: edit([...path, 0], (p) => (p as unknown as unknown[]).splice(0)) };
      yield { change: `${at} doubled`, input: edit([...path, 0], (p) => (p as unknown as unknown[]).push(...structuredClone(p as unknown as unknown[]))) };
    } else if (node !== null && typeof node === 'object') {
      yield { change: `${at} + unknown field`, input: path.length === 0 ? { ...(input as object), extra: 'x' } : edit([...path, 'extra'], (p, k) => (p[k] = 'x')) };
    }
  }
}

describe('the lite schemas the start-up snapshot checks manifests with', async () => {
  const docs = await documents();

  it('take every valid shipped and test manifest, with exactly zod\'s output', () => {
    let taken = 0;
    let zodOnly = 0;
    for (const { where, input } of docs) {
      const verdict = compare(input, where);
      if (verdict === 'both') taken++;
      if (verdict === 'zod only') zodOnly++;
    }
    // Every kind is among them, and the lite schemas leave none of the valid ones to zod (that would be time lost at start).
    expect(zodOnly).toBe(0);
    expect(taken).toBeGreaterThan(20);
    const kinds = new Set(docs.filter((d) => conform(schemasFor(d.input)?.lite, d.input) !== REFUSED).map((d) => `${(d.input as { apiVersion: string }).apiVersion} ${(d.input as { kind: string }).kind}`));
    expect([...kinds].sort()).toEqual(MANIFEST_SCHEMAS.map((s) => `${s.apiVersion} ${s.kind}`).sort());
  });

  it('refuse every document zod refuses (invalid fixtures and broken copies of the valid ones), and give zod\'s output for the copies zod takes', () => {
    const counts = { both: 0, 'zod only': 0, neither: 0 };
    for (const { where, input } of docs) {
      for (const mutant of mutants(input)) counts[compare(mutant.input, `${where}, ${mutant.change}`)]++;
    }
    // The copies exercise both sides: many stay valid (zod takes them too), many are refused.
    expect(counts.both).toBeGreaterThan(1000);
    expect(counts.neither).toBeGreaterThan(10000);
    // A copy zod takes and the lite schemas refuse only costs zod's time; there are few (a key set to undefined, say).
    expect(counts['zod only']).toBe(0);
  });

  it('refuse what is not plain YAML data, which zod would treat apart', () => {
    const valid = { apiVersion: 'apiary.dev/v1alpha1', kind: 'Secret', metadata: { name: 'a' }, stringData: { k: 'v' } };
    const lite = schemasFor(valid)!.lite;
    expect(conform(lite, valid)).toEqual(valid);
    expect(conform(lite, { ...valid, stringData: JSON.parse('{"__proto__": "v"}') as unknown })).toBe(REFUSED);
    expect(conform(lite, { ...valid, type: undefined })).toBe(REFUSED);
    expect(conform(lite, { ...valid, metadata: new (class { name = 'a'; })() })).toBe(REFUSED);
    // zod's own schema, as outside the snapshot: always left to zod.
    expect(conform(schemasFor(valid)!.zod, valid)).toBe(REFUSED);
  });
});
