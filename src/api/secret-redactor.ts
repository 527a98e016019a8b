/**
 * Finds the secret values apiary resolved for a server in what the server
 * sends its clients, and replaces them by `[redacted: secret NAME/KEY]`.
 *
 * Each value is looked for as written and in the forms a server is likely to
 * pass it on in: JSON-escaped, URL-encoded, and base64 (standard and
 * url-safe) at each of the three byte offsets, so a value inside a longer
 * base64 blob is found too. One Aho-Corasick automaton is built per secret
 * set, so a scan costs one pass over the text whatever the number of secrets
 * (a combined RegExp tries every alternative at every position: measured in
 * bench/redact.ts).
 */

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
  if (value.length < MIN_REDACTED_LENGTH) return [];
  const forms = new Set<string>([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), encodeURIComponent(value).replaceAll('%20', '+')]);
  const bytes = Buffer.from(value, 'utf8');
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
    // Only the characters made of the value's bits alone: the same wherever the value sits in a longer blob.
    const stable = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    forms.add(stable);
    forms.add(stable.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [...forms].filter((form) => form.length >= MIN_REDACTED_LENGTH);
}

interface Pattern {
  length: number;
  secret: string;
  key: string;
}

/** An Aho-Corasick automaton over UTF-16 code units. */
export class SecretRedactor {
  /** The root's transitions, dense: most characters of a text leave the scan at the root. */
  readonly #root = new Int32Array(65536).fill(0);
  readonly #next: Map<number, number>[] = [new Map()];
  readonly #fail: number[] = [0];
  /** Patterns ending at each node, its own and those of its suffix links (longest first). */
  readonly #out: Pattern[][] = [[]];
  readonly size: number;

  private constructor(secrets: readonly NamedSecret[]) {
    let size = 0;
    for (const { secret, key, value } of secrets) {
      for (const form of secretForms(value)) {
        this.#add(form, { length: form.length, secret, key });
        size += 1;
      }
    }
    this.size = size;
    this.#link();
  }

  /** The redactor for these secrets, or undefined when none is long enough to look for. */
  static build(secrets: readonly NamedSecret[]): SecretRedactor | undefined {
    const redactor = new SecretRedactor(secrets);
    return redactor.size === 0 ? undefined : redactor;
  }

  #add(form: string, pattern: Pattern): void {
    let node = 0;
    for (let i = 0; i < form.length; i++) {
      const c = form.charCodeAt(i);
      let to = this.#next[node]!.get(c);
      if (to === undefined) {
        to = this.#next.length;
        this.#next.push(new Map());
        this.#fail.push(0);
        this.#out.push([]);
        this.#next[node]!.set(c, to);
      }
      node = to;
    }
    if (!this.#out[node]!.some((p) => p.length === pattern.length)) this.#out[node]!.push(pattern);
  }

  /** Breadth first: each node's failure link, and its outputs joined with the link's. */
  #link(): void {
    const queue: number[] = [];
    for (const [c, to] of this.#next[0]!) {
      this.#root[c] = to;
      queue.push(to);
    }
    for (let head = 0; head < queue.length; head++) {
      const node = queue[head]!;
      for (const [c, to] of this.#next[node]!) {
        let f = this.#fail[node]!;
        while (f !== 0 && !this.#next[f]!.has(c)) f = this.#fail[f]!;
        const link = f === 0 ? this.#root[c]! : this.#next[f]!.get(c)!;
        this.#fail[to] = link === to ? 0 : link;
        this.#out[to] = [...this.#out[to]!, ...this.#out[this.#fail[to]!]!].sort((a, b) => b.length - a.length);
        queue.push(to);
      }
    }
  }

  /** The spans of `text` that hold a secret, in order, overlapping ones merged (named after the first). */
  find(text: string): SecretMatch[] {
    const matches: SecretMatch[] = [];
    let node = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (node === 0) {
        node = this.#root[c]!;
        if (node === 0) continue;
      } else {
        let to = this.#next[node]!.get(c);
        while (to === undefined && node !== 0) {
          node = this.#fail[node]!;
          to = node === 0 ? this.#root[c] : this.#next[node]!.get(c);
        }
        node = to ?? 0;
      }
      const out = this.#out[node]!;
      if (out.length > 0) add(matches, i + 1 - out[0]!.length, i + 1, out[0]!);
    }
    return matches;
  }

  /** The text with every secret replaced, and which secrets were found. */
  redact(text: string): { text: string; found: SecretMatch[] } {
    const found = this.find(text);
    return { text: found.length === 0 ? text : replaceSpans(text, found, 0), found };
  }
}

/** Adds a match, merging it into the last one when they overlap (a later match can only end later). */
function add(matches: SecretMatch[], start: number, end: number, pattern: Pattern): void {
  let last = matches.at(-1);
  while (last !== undefined && start < last.end) {
    // The longest match ending here may start before earlier ones: it swallows them.
    if (start <= last.start) {
      matches.pop();
      last = matches.at(-1);
      continue;
    }
    last.end = end;
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
