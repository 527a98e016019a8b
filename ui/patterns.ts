/**
 * The `pattern` attributes of the console's forms. A browser compiles a
 * pattern with the `v` flag, where `-`, `(`, `)`, `[`, `]`, `{`, `}`, `/`,
 * `\` and `|` inside a class must be escaped: an unescaped one makes the
 * pattern invalid, and the browser then checks nothing. Each says what the
 * server's own check says (src/api/names.ts), which still has the last word.
 */

/** A DNS-1123 label: a server or secret name. */
export const NAME_PATTERN = '[a-z0-9]([\\-a-z0-9]*[a-z0-9])?';

/** A secret's key. */
export const KEY_PATTERN = '[\\-._a-zA-Z0-9]+';

/** An environment variable's name. */
export const VARIABLE_PATTERN = '[A-Za-z_][A-Za-z0-9_]*';
