import type { Command } from 'commander';
import { ApiaryError } from '../../errors.js';
import type { CliContext } from '../context.js';

/** Verbs and their options, read from the command tree so completion never drifts from the CLI. */
function tree(program: Command): { verbs: string[]; options: Record<string, string[]>; subverbs: Record<string, string[]> } {
  const options: Record<string, string[]> = {};
  const subverbs: Record<string, string[]> = {};
  const verbs = program.commands.map((c) => c.name());
  const flags = (c: Command): string[] => c.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
  for (const c of program.commands) {
    options[c.name()] = [...flags(c), ...flags(program), '--help'];
    if (c.commands.length) subverbs[c.name()] = c.commands.map((s) => s.name());
  }
  return { verbs, options, subverbs };
}

export function bashCompletion(program: Command): string {
  const { verbs, options, subverbs } = tree(program);
  const cases = verbs
    .map((v) => {
      const words = [...(subverbs[v] ?? []), ...(options[v] ?? [])];
      const extra = ['get', 'describe', 'wait'].includes(v) ? ' mcpservers secrets' + (v === 'get' ? ' all' : '') : '';
      return `    ${v}) words="${words.join(' ')}${extra}" ;;`;
    })
    .join('\n');
  return `# apiary completion for bash. Load it with:  source <(apiary completion bash)
_apiary() {
  local cur verb words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  verb=""
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) verb="$w"; break ;; esac
  done
  if [ -z "$verb" ]; then
    COMPREPLY=( $(compgen -W "${verbs.join(' ')} --dir --state-dir --help --version" -- "$cur") )
    return
  fi
  case "$verb" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o default -F _apiary apiary
`;
}

export function zshCompletion(program: Command): string {
  return `# apiary completion for zsh. Load it with:  source <(apiary completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

export function registerCompletion(program: Command, ctx: CliContext): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(apiary completion bash)')
    .argument('<SHELL>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') ctx.io.out(bashCompletion(program));
      else if (shell === 'zsh') ctx.io.out(zshCompletion(program));
      else throw new ApiaryError('Usage', `no completion for "${shell}"; use bash or zsh`);
    });
}
