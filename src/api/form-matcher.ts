/**
 * Finds many fixed strings in a text at once: for each place in the text
 * where one of them starts, the longest that does (what a RegExp of them all,
 * longest first, finds when each search resumes one character after the
 * last find). Built for apiary's secret forms: a few hundred strings of 6 to
 * 60 characters looked for in every answer a server sends.
 *
 * The method is Wu and Manber's (1994): a window as long as the shortest
 * string slides along the text; a table says, for the last few characters of
 * the window (a block), how far the window may move before any string could
 * end there; only where that is zero are the strings whose window-long start
 * ends in that block compared. Random tokens share few blocks with ordinary
 * text, so most steps skip nearly a whole window: a 1 KiB answer is read in
 * about forty steps, where a RegExp of the same strings tries each position.
 * The table is 64 KiB (one byte per block hash) and built in well under a
 * millisecond for 400 strings.
 */

const TABLE_BITS = 16;
const TABLE_SIZE = 1 << TABLE_BITS;
const MASK = TABLE_SIZE - 1;

export class FormMatcher {
  /** The strings looked for, as given. */
  readonly forms: readonly string[];
  /** The window: the shortest string's length. */
  readonly #window: number;
  /** Characters hashed per block: 2, or 3 once windows are long enough to skip far. */
  readonly #block: number;
  /** Per block hash, how far the window may move (0: a string's window-long start may end here). */
  readonly #shift: Uint8Array;
  /** Per block hash with shift 0: the strings whose window-long start ends in such a block, longest first. */
  readonly #candidates = new Map<number, number[]>();

  constructor(forms: readonly string[]) {
    if (forms.length === 0 || forms.some((form) => form.length === 0)) throw new Error('FormMatcher: needs at least one string, none of them empty');
    this.forms = forms;
    const window = Math.min(...forms.map((form) => form.length));
    this.#window = window;
    this.#block = window >= 8 ? 3 : Math.min(2, window);
    const block = this.#block;
    this.#shift = new Uint8Array(TABLE_SIZE).fill(Math.min(window - block + 1, 255));
    const byLength = forms.map((_, i) => i).sort((a, b) => forms[b]!.length - forms[a]!.length);
    for (const index of byLength) {
      const form = forms[index]!;
      for (let end = block - 1; end < window; end++) {
        const hash = blockHash(form, end, block);
        const shift = window - 1 - end;
        if (shift < this.#shift[hash]!) this.#shift[hash] = shift;
      }
      const last = blockHash(form, window - 1, block);
      const list = this.#candidates.get(last);
      if (list === undefined) this.#candidates.set(last, [index]);
      else list.push(index);
    }
  }

  /** Calls `found` for each place a string starts, in order, with the longest starting there; stops early when it returns true. */
  scan(text: string, found: (start: number, form: number) => boolean | void): void {
    const window = this.#window;
    const block = this.#block;
    const shifts = this.#shift;
    const forms = this.forms;
    for (let end = window - 1; end < text.length; ) {
      const hash = blockHash(text, end, block);
      const shift = shifts[hash]!;
      if (shift !== 0) {
        end += shift;
        continue;
      }
      const start = end - window + 1;
      for (const index of this.#candidates.get(hash)!) {
        if (text.startsWith(forms[index]!, start)) {
          if (found(start, index) === true) return;
          break;
        }
      }
      end += 1;
    }
  }

  /** Whether any of the strings is in `text`. */
  test(text: string): boolean {
    let any = false;
    this.scan(text, () => (any = true));
    return any;
  }
}

/** A hash of the `size` characters of `text` that end at `end`. */
function blockHash(text: string, end: number, size: number): number {
  let hash = text.charCodeAt(end);
  if (size > 1) hash = hash * 33 + text.charCodeAt(end - 1);
  if (size > 2) hash = hash * 33 + text.charCodeAt(end - 2);
  return (hash ^ (hash >>> TABLE_BITS)) & MASK;
}
