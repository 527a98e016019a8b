/**
 * Finds the secret values apiary resolved for a server in what the server
 * sends its clients, and replaces them by `[redacted: secret NAME/KEY]`.
 *
 * Each value is looked for as written and in the forms a server is likely to
 * pass it on in: JSON-escaped, URL-encoded, and base64 (standard and
 * url-safe) at each of the three byte offsets, so a value inside a longer
 * base64 blob is found too. All forms are looked for at once by a FormMatcher
 * (Wu-Manber), built per secret set: a 1 KiB answer with 100 secrets in well
 * under a microsecond, where one RegExp of every form took about 10 µs and a
 * hand-written Aho-Corasick automaton about 6 µs, with a 256 KiB table and a
 * slower build (bench/redact.ts, bench/aho-corasick.ts).
 */
import { FormMatcher } from './form-matcher.js';

/** A resolved secret value and where it came from (the name and key are what a redaction shows). */
export interface NamedSecret {
  secret: string;
  key: string;
  value: string;
}

/**
 * Values shorter than this are not looked for: a 1 to 5 character value
 * ("true", "8080", "admin") occurs in ordinary text, and redacting every
 * occurrence would garble answers while protecting nothing worth a secret.
 */
export const MIN_REDACTED_LENGTH = 6;

export interface SecretMatch {
  start: number;
  end: number;
  secret: string;
  key: string;
}

export function redactionMarker(secret: string, key: string): string {
  return `[redacted: secret ${secret}/${key}]`;
}

/** The forms of one value that are looked for (all of at least MIN_REDACTED_LENGTH characters). */
export function secretForms(value: string): string[] {
  return valueForms(value).map((form) => form.text);
}

/** A form of a value, and for a base64 form the characters on each side that carry some of the value's bits too. */
interface ValueForm {
  text: string;
  /** The base64 alphabet of a base64 form (standard or url-safe). */
  alphabet?: RegExp;
  /** Whether the character before (after) the form, when one of the alphabet, holds bits of the value as well as of its neighbour. */
  before?: boolean;
  after?: boolean;
}

const BASE64 = /[A-Za-z0-9+/]/;
const BASE64_URL = /[A-Za-z0-9\-_]/;

function valueForms(value: string): ValueForm[] {
  if (value.length < MIN_REDACTED_LENGTH) return [];
  const forms = new Map<string, ValueForm>();
  for (const text of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), encodeURIComponent(value).replaceAll('%20', '+')]) forms.set(text, { text });
  const bytes = Buffer.from(value, 'utf8');
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
    // Only the characters made of the value's bits alone: the same wherever the value sits in a longer blob.
    const stable = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    // The one each side that also holds some of the value's bits (and some of its neighbour's), unless the value's bits end on a character's edge.
    const edges = { before: (8 * offset) % 6 !== 0, after: (8 * (offset + bytes.length)) % 6 !== 0 };
    if (!forms.has(stable)) forms.set(stable, { text: stable, alphabet: BASE64, ...edges });
    const urlSafe = stable.replaceAll('+', '-').replaceAll('/', '_');
    if (!forms.has(urlSafe)) forms.set(urlSafe, { text: urlSafe, alphabet: BASE64_URL, ...edges });
  }
  return [...forms.values()].filter((form) => form.text.length >= MIN_REDACTED_LENGTH);
}

/** Which secret and key a form found stands for, and for a base64 form the characters beside it that are the value's too. */
export interface Pattern {
  secret: string;
  key: string;
  alphabet?: RegExp;
  before?: boolean;
  after?: boolean;
}

/** A string's characters as a JSON string literal writes them (JSON.stringify's escapes, without the quotes). */
function jsonEscaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** `"text"` as a JSON token: a text item (`{"type":"text","text":...}`) writes it twice. */
const TEXT_TOKEN = '"text"';

/** Every form of every value, looked for at once (the longest of the forms starting at one place wins). */
export class SecretRedactor {
  readonly #matcher: FormMatcher | undefined;
  /** Which secret and key each of the matcher's forms stands for. */
  readonly #patterns: Pattern[] = [];
  /** The forms and the same as a JSON text writes them inside its strings (the same matcher when no form has a character JSON escapes). */
  readonly #written: FormMatcher | undefined;

  private constructor(secrets: readonly NamedSecret[]) {
    const names = new Map<string, Pattern>();
    for (const { secret, key, value } of secrets) {
      for (const { text, ...edges } of valueForms(value)) if (!names.has(text)) names.set(text, { secret, key, ...edges });
    }
    if (names.size === 0) return;
    this.#patterns = [...names.values()];
    this.#matcher = new FormMatcher([...names.keys()]);
    const written = [...names.keys()].map(jsonEscaped).filter((form) => !names.has(form));
    this.#written = written.length === 0 ? this.#matcher : new FormMatcher([...names.keys(), ...new Set(written)]);
  }

  /**
   * Whether `json`, a JSON text, may hold a value that `redactValue` would find once it is parsed: false only when it
   * cannot, so an answer can be passed on as it came without being parsed and walked. Every string of such a text is
   * written with JSON.stringify's escapes (no `\u` and no `\/` in it, else true), so a form inside a string is there as
   * its escaped self; a value cut across two text items is looked for only when there are two (two `"text"` tokens each).
   * Keys and numbers are looked in too: a find there is only a needless parse.
   */
  mayHoldJson(json: string): boolean {
    if (this.#written === undefined) return false;
    if (json.includes('\\u') || json.includes('\\/')) return true;
    let tokens = 0;
    for (let at = json.indexOf(TEXT_TOKEN); at !== -1 && tokens < 4; at = json.indexOf(TEXT_TOKEN, at + 1)) tokens++;
    if (tokens >= 4) return true;
    return this.#written.test(json);
  }

  /** The redactor for these secrets, or undefined when none is long enough to look for. */
  static build(secrets: readonly NamedSecret[]): SecretRedactor | undefined {
    const redactor = new SecretRedactor(secrets);
    return redactor.size === 0 ? undefined : redactor;
  }

  /** How many forms are looked for. */
  get size(): number {
    return this.#patterns.length;
  }

  /** The spans of `text` that hold a secret, in order, overlapping ones merged (named after the first). */
  find(text: string): SecretMatch[] {
    const matches: SecretMatch[] = [];
    const matcher = this.#matcher;
    if (matcher === undefined) return matches;
    // Each place a form starts, with the longest starting there: a form of another value may start inside a find and end past it.
    matcher.scan(text, (start, form) => {
      const pattern = this.#patterns[form]!;
      let from = start;
      let to = start + matcher.forms[form]!.length;
      // A base64 form's neighbours that carry some of the value's bits go with it (its last bits are not left after the marker).
      if (pattern.before === true && from > 0 && pattern.alphabet!.test(text[from - 1]!)) from--;
      if (pattern.after === true && to < text.length && pattern.alphabet!.test(text[to]!)) to++;
      addMatch(matches, from, to, pattern);
    });
    return matches;
  }

  /** The text with every secret replaced, and which secrets were found. */
  redact(text: string): { text: string; found: SecretMatch[] } {
    const found = this.find(text);
    return { text: found.length === 0 ? text : replaceSpans(text, found, 0), found };
  }
}

/** Adds a match, merging it into the last one when they overlap; it starts no earlier than the last and swallows those it covers. */
export function addMatch(matches: SecretMatch[], start: number, end: number, pattern: Pattern): void {
  let last = matches.at(-1);
  while (last !== undefined && start < last.end) {
    // A match that starts where the last one does (or before: a base64 form's edge) swallows it, and covers all it covered.
    if (start <= last.start) {
      end = Math.max(end, last.end);
      matches.pop();
      last = matches.at(-1);
      continue;
    }
    last.end = Math.max(last.end, end);
    return;
  }
  matches.push({ start, end, secret: pattern.secret, key: pattern.key });
}

/** `text` (which starts at `offset` of the scanned whole) with the parts the matches cover replaced by their markers. */
export function replaceSpans(text: string, matches: readonly SecretMatch[], offset: number): string {
  let result = '';
  let at = 0;
  for (const match of matches) {
    const start = Math.max(match.start - offset, 0);
    const end = Math.min(match.end - offset, text.length);
    if (end <= 0 || start >= text.length) continue;
    result += text.slice(at, start) + redactionMarker(match.secret, match.key);
    at = end;
  }
  return result + text.slice(at);
}

/**
 * A JSON value (a JSON-RPC message) with every string redacted; the same
 * object when nothing was found. The text items of a `content` array are
 * scanned joined, so a value split across two items is found, and each item
 * loses the part of it that it holds.
 */
export function redactValue<T>(redactor: SecretRedactor, value: T, found: SecretMatch[]): T {
  return walk(redactor, value, found) as T;
}

function walk(redactor: SecretRedactor, value: unknown, found: SecretMatch[]): unknown {
  if (typeof value === 'string') {
    const result = redactor.redact(value);
    found.push(...result.found);
    return result.text;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return walkArray(redactor, value, found);
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted = walk(redactor, item, found);
    if (redacted === item) continue;
    copy ??= { ...value };
    copy[key] = redacted;
  }
  return copy ?? value;
}

function walkArray(redactor: SecretRedactor, items: unknown[], found: SecretMatch[]): unknown[] {
  const texts = items.map((item) => (isTextItem(item) ? item.text : undefined));
  const joined = texts.filter((t) => t !== undefined).length > 1 ? redactor.find(texts.map((t) => t ?? '').join('')) : undefined;
  if (joined !== undefined) found.push(...joined);
  let copy: unknown[] | undefined;
  let offset = 0;
  items.forEach((item, i) => {
    const text = texts[i];
    let redacted: unknown;
    if (joined === undefined || text === undefined) redacted = walk(redactor, item, found);
    else {
      // The item's other fields alone; its text is cut from the joined scan.
      const { text: _text, ...rest } = item as { text: string };
      const others = walk(redactor, rest, found);
      const own = replaceSpans(text, joined, offset);
      offset += text.length;
      redacted = own === text && others === rest ? item : { ...(others as object), text: own };
    }
    if (redacted === item) return;
    copy ??= [...items];
    copy[i] = redacted;
  });
  return copy ?? items;
}

function isTextItem(item: unknown): item is { type: 'text'; text: string } {
  return typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'text' && typeof (item as { text?: unknown }).text === 'string';
}
