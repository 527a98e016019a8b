/**
 * The alternative to SecretRedactor's one RegExp that bench/redact.ts
 * measures: an Aho-Corasick automaton over UTF-16 code units, one pass over
 * the text whatever the number of forms. It scans faster than the RegExp but
 * builds 40x slower (see the bench's rows and src/api/secret-redactor.ts for
 * why apiary keeps the RegExp).
 */
import { addMatch, secretForms, type NamedSecret, type SecretMatch } from '../src/api/secret-redactor.js';

interface Pattern {
  length: number;
  secret: string;
  key: string;
}

/** An Aho-Corasick automaton over UTF-16 code units. */
export class AhoCorasick {
  /** The root's transitions, dense: most characters of a text leave the scan at the root. */
  readonly #root = new Int32Array(65536).fill(0);
  readonly #next: Map<number, number>[] = [new Map()];
  readonly #fail: number[] = [0];
  /** Patterns ending at each node, its own and those of its suffix links (longest first). */
  readonly #out: Pattern[][] = [[]];
  readonly size: number;

  constructor(secrets: readonly NamedSecret[]) {
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
      if (out.length > 0) addMatch(matches, i + 1 - out[0]!.length, i + 1, out[0]!);
    }
    return matches;
  }

}
