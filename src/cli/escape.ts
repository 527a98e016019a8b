/**
 * Text that servers and manifest authors control, made safe to print on a
 * terminal, as kubectl has done since CVE-2021-25743: an escape sequence in a
 * server's output or a status message would otherwise act on the terminal
 * (recolour or hide lines, move the cursor, retitle the window, set the
 * clipboard with OSC 52) instead of being read. Each such character is shown
 * in a visible, non-reversible form: ESC as ^[ and CR as \r (kubectl's forms),
 * other C0 controls in caret notation (BEL ^G, DEL ^?), C1 controls as \u0080
 * to \u009f (U+009B is a one-character CSI to some terminals), and the
 * bidirectional overrides and isolates as \u202e and so on (they reorder what
 * is shown, as in "Trojan Source"). JSON and YAML output keep their own encoding.
 */

// C0 (with \t and \n, kept or not below), DEL, C1, and the bidi embeddings, overrides and isolates:
// matching control characters is the point here.
/* eslint-disable no-control-regex */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_EXCEPT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

const NAMED: Record<string, string> = { '\u001b': '^[', '\r': '\\r', '\n': '\\n', '\t': '\\t', '\u007f': '^?' };

function visible(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One value on one line (a table cell, a field): every control character made visible, newlines and tabs too. */
export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** Line-oriented text (a log, a message of several lines): the same, but newlines and tabs kept as they are. */
export function escapeTerminalLines(text: string): string {
  return text.replace(UNSAFE_EXCEPT_LINES, visible);
}
