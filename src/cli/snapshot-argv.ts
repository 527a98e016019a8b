/**
 * The start-up snapshot's own reading of a get or validate command line, so
 * commander (its library and the program main.ts builds) is not in the heap
 * every get and validate deserializes at start. It reads only the plain
 * forms: the verb, its positionals, its options and the global ones, each
 * option once, as `--name value`, `--name=value` or `-x value`. Anything else
 * (help, a value outside the choices, an unknown or repeated option, `--`,
 * `-ojson`, a value that starts with "-", one positional too many) is
 * undefined: main.ts and commander then read it, with their messages. What
 * it reads, it reads as commander would: test/cli-startup.test.ts compares
 * the answers of both on the same command lines.
 */
import { GET_OUTPUTS, type GetOptions } from './commands/get.js';
import { VALIDATE_OUTPUTS, type ValidateOptions } from './commands/validate.js';
import type { GlobalOptionSource } from './context.js';

export type SnapshotCommand =
  | { verb: 'version' }
  | { verb: 'get'; type: string; name: string | undefined; opts: GetOptions; globals: GlobalOptionSource }
  | { verb: 'validate'; path: string | undefined; opts: ValidateOptions; globals: GlobalOptionSource };

interface OptionSpec {
  /** The key in commander's options object. */
  key: string;
  /** The values it takes: those listed, or 'any'; undefined for a flag that takes none. */
  value?: readonly string[] | 'any';
}

const GLOBAL: Record<string, OptionSpec> = {
  '--dir': { key: 'dir', value: 'any' },
  '--state-dir': { key: 'stateDir', value: 'any' },
  '--git': { key: 'git', value: 'any' },
};

const VERBS = {
  get: {
    positionals: 2,
    options: {
      '-o': { key: 'output', value: GET_OUTPUTS },
      '--output': { key: 'output', value: GET_OUTPUTS },
      '-l': { key: 'selector', value: 'any' },
      '--selector': { key: 'selector', value: 'any' },
      '-w': { key: 'watch' },
      '--watch': { key: 'watch' },
    } as Record<string, OptionSpec>,
  },
  validate: {
    positionals: 1,
    options: {
      '-o': { key: 'output', value: VALIDATE_OUTPUTS },
      '--output': { key: 'output', value: VALIDATE_OUTPUTS },
      '--decrypt': { key: 'decrypt' },
    } as Record<string, OptionSpec>,
  },
};

/** What commander's Command offers the verbs: the global options, with the verb's own beside them. */
function globalsOf(values: Record<string, unknown>): GlobalOptionSource {
  const picked: { dir?: string; stateDir?: string; git?: string } = {};
  for (const key of ['dir', 'stateDir', 'git'] as const) if (typeof values[key] === 'string') picked[key] = values[key];
  return { optsWithGlobals: () => picked };
}

/** get or validate as commander would read `argv`, or undefined: a form left to commander. */
export function readSnapshotArgv(argv: readonly string[]): SnapshotCommand | undefined {
  // `apiary --version` alone (commander prints the version and a newline).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) return { verb: 'version' };
  let verb: keyof typeof VERBS | undefined;
  const positionals: string[] = [];
  const values: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) {
      if (verb !== undefined) positionals.push(arg);
      else if (arg === 'get' || arg === 'validate') verb = arg;
      else return undefined;
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const spec = GLOBAL[flag] ?? (verb === undefined ? undefined : VERBS[verb].options[flag]);
    if (spec === undefined || spec.key in values) return undefined;
    if (spec.value === undefined) {
      if (eq >= 0) return undefined;
      values[spec.key] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith('-'))) return undefined;
    if (spec.value !== 'any' && !spec.value.includes(value)) return undefined;
    values[spec.key] = value;
  }
  if (verb === undefined || positionals.length > VERBS[verb].positionals) return undefined;
  const globals = globalsOf(values);
  if (verb === 'get') {
    const opts: GetOptions = { output: (values['output'] as GetOptions['output'] | undefined) ?? 'table' };
    if (values['selector'] !== undefined) opts.selector = values['selector'] as string;
    if (values['watch'] === true) opts.watch = true;
    return { verb, type: positionals[0] ?? 'all', name: positionals[1], opts, globals };
  }
  const opts: ValidateOptions = { output: (values['output'] as ValidateOptions['output'] | undefined) ?? 'text' };
  if (values['decrypt'] === true) opts.decrypt = true;
  return { verb, path: positionals[0], opts, globals };
}
