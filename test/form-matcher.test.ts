import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../chaos/seeded.js';
import { FormMatcher } from '../src/api/form-matcher.js';
import { redactValue, SecretRedactor, secretForms, type SecretMatch } from '../src/api/secret-redactor.js';

/** What a RegExp of the forms, longest first, finds when each search resumes one character after the last find: the reference. */
function byRegExp(forms: readonly string[], text: string): [number, string][] {
  const escaped = [...forms].sort((a, b) => b.length - a.length).map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  const out: [number, string][] = [];
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    out.push([m.index, m[0]]);
    pattern.lastIndex = m.index + 1;
  }
  return out;
}

function byMatcher(forms: readonly string[], text: string): [number, string][] {
  const matcher = new FormMatcher(forms);
  const out: [number, string][] = [];
  matcher.scan(text, (start, form) => void out.push([start, matcher.forms[form]!]));
  return out;
}

describe('FormMatcher', () => {
  it('finds, at each place a form starts, the longest form that does, as a RegExp of them all does', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seededRandom(seed);
      // A small alphabet makes forms overlap, nest and share blocks; lengths from 6 (two-character blocks) up.
      const alphabet = seed % 3 === 0 ? 'ab' : seed % 3 === 1 ? 'abcd€' : 'abcdefghijklmnopqrstuvwxyz0123456789';
      const word = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const forms = [...new Set(Array.from({ length: 1 + Math.floor(random() * 12) }, () => word(6 + Math.floor(random() * (seed % 2 === 0 ? 4 : 30)))))];
      let text = '';
      while (text.length < 400) text += random() < 0.3 ? forms[Math.floor(random() * forms.length)]! : word(1 + Math.floor(random() * 20));
      expect(byMatcher(forms, text), `seed ${seed}`).toEqual(byRegExp(forms, text));
    }
  });

  it('finds a form at the very start and end of a text, and nothing in a text shorter than every form', () => {
    const forms = ['abcdefgh', 'xyz123', 'longer-form-of-many-characters'];
    expect(byMatcher(forms, 'abcdefgh')).toEqual([[0, 'abcdefgh']]);
    expect(byMatcher(forms, '..xyz123')).toEqual([[2, 'xyz123']]);
    expect(byMatcher(forms, 'xyz12')).toEqual([]);
    expect(byMatcher(forms, '')).toEqual([]);
    expect(() => new FormMatcher([])).toThrow(/at least one/);
  });

  it("finds 100 secrets' forms in text as the RegExp does", () => {
    const forms = [...new Set(Array.from({ length: 100 }, () => secretForms(randomBytes(24).toString('base64url'))).flat())];
    const pick = (): string => forms[Math.floor(Math.random() * forms.length)]!;
    const text = `lorem ${pick()} ipsum ${pick().slice(3)}${pick()} dolor ${Buffer.from(`x${pick()}`).toString('base64')} ${pick()}`;
    const found = byMatcher(forms, text);
    expect(found.length).toBeGreaterThanOrEqual(3);
    expect(found).toEqual(byRegExp(forms, text));
  });
});

describe('SecretRedactor.mayHoldJson', () => {
  const value = 'tok"en\\with/quotes-and-1234';
  const redactor = SecretRedactor.build([
    { secret: 'api', key: 'token', value },
    { secret: 'api', key: 'plain', value: 'abcdef0123456789' },
  ])!;

  /** Whether the parsed message holds something the walk redacts. */
  const walkFinds = (json: string): boolean => {
    const found: SecretMatch[] = [];
    redactValue(redactor, JSON.parse(json), found);
    return found.length > 0;
  };

  it('is true for every JSON text whose parsed value the walk would redact, however the server wrote it', () => {
    const texts = [
      JSON.stringify({ result: { content: [{ type: 'text', text: `the value is ${value}.` }] } }),
      // The value inside a JSON document inside a text item: escaped twice in the answer.
      JSON.stringify({ result: { content: [{ type: 'text', text: JSON.stringify({ token: value }) }] } }),
      JSON.stringify({ result: { structuredContent: { url: `https://x/?t=${encodeURIComponent(value)}`, b64: Buffer.from(`ab${value}`).toString('base64') } } }),
      // Written with \u escapes (as Python's json.dumps writes what is not ASCII) and \/.
      JSON.stringify({ result: { content: [{ type: 'text', text: `v ${value} é` }] } })
        .replace('é', '\\u00e9')
        .replace('tok', '\\u0074ok'),
      JSON.stringify({ result: { content: [{ type: 'text', text: value }] } }).replace('/', '\\/'),
      JSON.stringify({ r: 'https://host/abcdef0123456789' }).replace(/\//g, '\\/'),
      // Cut across two text items.
      JSON.stringify({ result: { content: [{ type: 'text', text: 'start abcdef01' }, { type: 'text', text: '23456789 end' }] } }),
    ];
    for (const text of texts) {
      expect(walkFinds(text), text).toBe(true);
      expect(redactor.mayHoldJson(text), text).toBe(true);
    }
  });

  it('is false for an answer that holds none of the values and needs no second look', () => {
    const clean = JSON.stringify({ jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'lorem ipsum dolor sit amet, '.repeat(40) }] } });
    expect(walkFinds(clean)).toBe(false);
    expect(redactor.mayHoldJson(clean)).toBe(false);
    // Two text items: a value may be cut across them, so it is looked at parsed.
    expect(redactor.mayHoldJson(JSON.stringify({ content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }))).toBe(true);
  });

  it('agrees with the walk on random messages: never false where the walk finds a value', () => {
    const random = seededRandom(7);
    const pieces = [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), 'abcdef0123456789', 'abcdef012345678', 'lorem ', '"', '\\', '/', 'é', '\n'];
    let positives = 0;
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: 1 + Math.floor(random() * 6) }, () => pieces[Math.floor(random() * pieces.length)]).join('');
      const items = random() < 0.5 ? [{ type: 'text', text }] : [{ type: 'text', text: text.slice(0, 5) }, { type: 'text', text: text.slice(5) }];
      let json = JSON.stringify({ jsonrpc: '2.0', id: i, result: { content: items, structuredContent: { text } } });
      if (random() < 0.3) json = json.replace(/\//g, '\\/');
      if (random() < 0.3) json = json.replace(/a/g, '\\u0061');
      const finds = walkFinds(json);
      if (finds) positives++;
      if (finds) expect(redactor.mayHoldJson(json), json).toBe(true);
    }
    expect(positives).toBeGreaterThan(500);
  });
});
