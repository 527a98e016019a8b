/** kubectl's ways of naming resources on the command line: KIND/NAME... or KIND NAME... */
import { kindFromAlias, type Kind } from '../api/names.js';
import { ApiaryError } from '../errors.js';

export interface Target {
  kind: Kind;
  name: string;
}

export function kindOf(text: string): Kind {
  const kind = kindFromAlias(text);
  if (kind === undefined) throw new ApiaryError('Usage', `unknown kind "${text}" (use mcpserver or secret)`);
  return kind;
}

/** Every KIND/NAME, or one KIND followed by names. An empty list when only a KIND is given. */
export function namedTargets(args: readonly string[]): { kind?: Kind; targets: Target[] } {
  if (args.length === 0) return { targets: [] };
  if (args[0]!.includes('/')) {
    return {
      targets: args.map((arg) => {
        const [kindText, name, extra] = arg.split('/');
        if (!kindText || !name || extra !== undefined) throw new ApiaryError('Usage', `expected KIND/NAME (e.g. mcpserver/github); got "${arg}"`);
        return { kind: kindOf(kindText), name };
      }),
    };
  }
  const kind = kindOf(args[0]!);
  const names = args.slice(1);
  const slashed = names.find((n) => n.includes('/'));
  if (slashed !== undefined) throw new ApiaryError('Usage', `use either KIND NAME... or KIND/NAME..., not both ("${slashed}")`);
  return { kind, targets: names.map((name) => ({ kind, name })) };
}
