/**
 * Which of a server's tools apiary's endpoint exposes (`spec.tools`): names or
 * globs (`*`, `?`). A tool is exposed when `allow` is absent or one of its
 * patterns matches, and no `deny` pattern matches. Enforced at the endpoint:
 * a filtered tool is absent from tools/list and a tools/call on it is refused.
 */
export interface ToolFilterSpec {
  allow?: readonly string[];
  deny?: readonly string[];
}

export interface ToolFilter {
  /** Stable text of the patterns: equal keys mean the same filter. */
  readonly key: string;
  exposes(tool: string): boolean;
}

function globToRegExp(glob: string): RegExp {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`);
}

export const EXPOSE_ALL: ToolFilter = { key: '', exposes: () => true };

export function compileToolFilter(spec: ToolFilterSpec | undefined): ToolFilter {
  if (spec === undefined || (spec.allow === undefined && (spec.deny ?? []).length === 0)) return EXPOSE_ALL;
  const allow = spec.allow?.map(globToRegExp);
  const deny = (spec.deny ?? []).map(globToRegExp);
  return {
    key: JSON.stringify([spec.allow ?? null, spec.deny ?? []]),
    exposes: (tool) => (allow === undefined || allow.some((p) => p.test(tool))) && !deny.some((p) => p.test(tool)),
  };
}
