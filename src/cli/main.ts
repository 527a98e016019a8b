/**
 * The CLI: parses argv with commander, runs one verb, and maps every error to
 * a message and an exit code (0 success, 1 failure, 2 usage) in one place.
 */
import { Command, CommanderError } from 'commander';
import { createContext, type CliContext } from './context.js';
import { processIo, type Io } from './io.js';
import { reportFailure } from './report-failure.js';
import { APIARY_VERSION } from '../util/version.js';

type Register = (program: Command, ctx: CliContext) => void;
/** The verbs a program knows, each by the module that registers it, loaded when that verb runs. */
export type Verbs = Record<string, () => Promise<Register>>;

/**
 * Each verb's module, loaded only when that verb runs: a command pays for
 * what it uses (get never loads the controller, the MCP SDK or the keyring).
 * Help, completion and an unknown verb load them all.
 */
const VERBS: Verbs = {
  up: () => import('./commands/up.js').then((m) => m.registerUp),
  get: () => import('./commands/get.js').then((m) => m.registerGet),
  describe: () => import('./commands/describe.js').then((m) => m.registerDescribe),
  wait: () => import('./commands/wait.js').then((m) => m.registerWait),
  logs: () => import('./commands/logs.js').then((m) => m.registerLogs),
  apply: () => import('./commands/apply.js').then((m) => m.registerApply),
  restart: () => import('./commands/rollout.js').then((m) => m.registerRollout),
  add: () => import('./commands/add.js').then((m) => m.registerAdd),
  validate: () => import('./commands/validate.js').then((m) => m.registerValidate),
  schema: () => import('./commands/schema.js').then((m) => m.registerSchema),
  secret: () => import('./commands/secret.js').then((m) => m.registerSecret),
  seal: () => import('./commands/seal.js').then((m) => m.registerSeal),
  key: () => import('./commands/key.js').then((m) => m.registerKey),
  recipients: () => import('./commands/recipients.js').then((m) => m.registerRecipients),
  client: () => import('./commands/client.js').then((m) => m.registerClient),
  import: () => import('./commands/import.js').then((m) => m.registerImport),
  proxy: () => import('./commands/proxy.js').then((m) => m.registerProxy),
  ui: () => import('./commands/ui.js').then((m) => m.registerUi),
  completion: () => import('./commands/completion.js').then((m) => m.registerCompletion),
  catalog: () => import('./commands/catalog.js').then((m) => m.registerCatalog),
  render: () => import('./commands/render.js').then((m) => m.registerRender),
  init: () => import('./commands/init.js').then((m) => m.registerInit),
  service: () => import('./commands/service.js').then((m) => m.registerService),
  policy: () => import('./commands/policy.js').then((m) => m.registerPolicy),
  audit: () => import('./commands/audit.js').then((m) => m.registerAudit),
  connect: () => import('./commands/connect.js').then((m) => m.registerConnect),
  tools: () => import('./commands/tools.js').then((m) => m.registerTools),
};
/** Verbs registered by another verb's module. */
const SHARED: Record<string, string> = { reconcile: 'restart', down: 'up', diff: 'apply', delete: 'apply', suspend: 'restart', resume: 'restart', explain: 'schema', install: 'catalog', upgrade: 'catalog', disconnect: 'connect' };
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--dir', '--state-dir', '--git']);

/** The verb argv names (global options may come first), if any. */
export function verbOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

export async function buildProgram(io: Io, env: NodeJS.ProcessEnv, argv: readonly string[] = [], verbs: Verbs = VERBS): Promise<{ program: Command; exitCode: () => number }> {
  const ctx = createContext(io, env);
  const program = new Command('apiary')
    .description('Run MCP servers from a directory of Kubernetes-style YAML manifests')
    .option('--dir <DIR>', 'manifest directory (default: $APIARY_DIR, else ./manifests when it exists, else $XDG_CONFIG_HOME/apiary/manifests (~/.config/apiary/manifests): apiary init makes it)')
    .option('--state-dir <DIR>', 'state directory (default: $APIARY_STATE_DIR, else under $XDG_STATE_HOME/apiary)')
    .option('--git <URL>', 'follow this git repository instead of --dir (default: $APIARY_GIT); every verb takes it to find the same state directory')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });
  const verb = verbOf(argv);
  // `apiary --version` is apiary's; after a verb, --version is the verb's own (install --version 1.2.3).
  if (verb === undefined) program.version(APIARY_VERSION);
  const owner = verb === undefined ? undefined : (SHARED[verb] ?? verb);
  const versionOnly = verb === undefined && (argv.includes('--version') || argv.includes('-V'));
  const needed = versionOnly ? [] : owner !== undefined && owner !== 'completion' && verbs[owner] !== undefined ? [verbs[owner]] : Object.values(verbs);
  for (const register of await Promise.all(needed.map((load) => load()))) register(program, ctx);
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  program.commands.forEach(override);
  return { program, exitCode: () => ctx.exitCode };
}

/** `verbs`: what this program knows (the start-up snapshot's knows get and validate only, see snapshot-main.ts). */
export async function main(argv: readonly string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env, verbs: Verbs = VERBS): Promise<number> {
  const { program, exitCode } = await buildProgram(io, env, argv, verbs);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode();
  } catch (err) {
    return reportError(io, err);
  }
}

function reportError(io: Io, err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; they exit 0.
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return 2;
  }
  return reportFailure(io, err);
}
