/**
 * Kubernetes' dependent variables, as the kubelet expands them
 * (`third_party/forked/golang/expansion`): a literal of `spec.env` may
 * refer to the variables defined before it (envFrom's first, then the
 * entries above it), and `command` and `args` to every variable of the
 * finished environment. `$$` is a literal `$` (so `$$(VAR)` passes
 * `$(VAR)`), and a reference to a name not (yet) defined stays as written.
 * A value that comes from a secret is never expanded itself. The same rules
 * hold for a manifest run locally and one rendered for a cluster, where the
 * kubelet does the expanding: render passes the text as written.
 */
import { expandReferences, referencedNames } from './remote.js';

/** A variable's value: a literal (expandable) or one from a secret (anything else, passed as it is). */
export type Variable<Secret> = readonly [name: string, value: string | Secret];

/** The environment with each literal expanded against the variables before it, in order. */
export function expandEnvironment<Secret>(vars: readonly Variable<Secret>[], reveal: (value: Secret) => string): [string, string | Secret][] {
  const known = new Map<string, string>();
  return vars.map(([name, value]) => {
    const expanded = typeof value === 'string' ? expandReferences(value, (ref) => known.get(ref)) : value;
    known.set(name, typeof expanded === 'string' ? expanded : reveal(expanded));
    return [name, expanded];
  });
}

/** `args` (or a command) expanded against the finished environment (a later variable of the same name wins, as in a process's environment). */
export function expandArgs(args: readonly string[], environment: ReadonlyMap<string, string>): string[] {
  return args.map((arg) => expandReferences(arg, (name) => environment.get(name)));
}

/**
 * The variables whose values come from a secret, directly or through a
 * literal of `spec.env` that refers to one (before it): what must not be
 * expanded into a command line unawares. `fromEnvFrom` names come first, as
 * the kubelet puts them.
 */
export function secretBearing(env: readonly { name: string; value?: string | undefined; fromSecret: boolean }[]): Set<string> {
  const secret = new Set<string>();
  for (const variable of env) {
    const carries = variable.fromSecret || referencedNames(variable.value ?? '').some((name) => secret.has(name));
    if (carries) secret.add(variable.name);
    else secret.delete(variable.name);
  }
  return secret;
}
