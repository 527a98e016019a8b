/**
 * Which of a server's tools apiary's endpoint exposes (`spec.tools`): names or
 * globs (`*`, `?`). A tool is exposed when `allow` is absent or one of its
 * patterns matches, and no `deny` pattern matches. Enforced at the endpoint:
 * a filtered tool is absent from tools/list and a tools/call on it is refused.
 */
import { describeDrift, hasDrift, toolDrift, type LockedTool, type ToolDrift } from '../api/tool-lock.js';
import { ErrorCodes, errorResponse, type Id, type JsonRpcResponse } from './jsonrpc.js';

export interface ToolFilterSpec {
  allow?: readonly string[];
  deny?: readonly string[];
}

export interface ToolFilter {
  /** Stable text of the patterns: equal keys mean the same filter. */
  readonly key: string;
  exposes(tool: string): boolean;
  /** Why a call on a tool it keeps from clients is refused, when another reason than spec.tools (a drifted tool). */
  refusal?(tool: string): string | undefined;
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

/**
 * The answer to a tools/call on a tool the filter keeps from clients, or
 * undefined when the call may go on. Under a filter, a name that is no
 * string is refused too: the filter cannot judge it, and a lenient server
 * might still read `["env"]` as env.
 */
export function refuseFilteredCall(filter: ToolFilter, id: Id | null, tool: unknown): JsonRpcResponse | undefined {
  if (filter === EXPOSE_ALL) return undefined;
  if (typeof tool !== 'string') return errorResponse(id, ErrorCodes.InvalidParams, 'tools/call needs params.name as a string');
  if (filter.exposes(tool)) return undefined;
  return errorResponse(id, ErrorCodes.InvalidParams, filter.refusal?.(tool) ?? `tool "${tool}" is not available: the server's spec.tools keeps it from clients`);
}

/** A tools/list answer with the filtered tools taken out; undefined when the message is no such answer. */
export function withExposedTools<M>(filter: ToolFilter, message: M): M | undefined {
  const result = (message as { result?: { tools?: unknown } } | null)?.result;
  if (result === undefined || !Array.isArray(result.tools)) return undefined;
  return { ...message, result: { ...result, tools: result.tools.filter((t: unknown) => filter.exposes(String((t as { name?: unknown } | null)?.name))) } };
}

/**
 * `filter` with the tools in `withheld` kept from clients too (a server's
 * tools that differ from tools.lock.yaml under spec.tools.onDrift Withhold);
 * a call on one is refused with `why(tool)`, which names the drift.
 */
export function withholding(filter: ToolFilter, withheld: ReadonlySet<string>, why: (tool: string) => string): ToolFilter {
  if (withheld.size === 0) return filter;
  return {
    key: JSON.stringify([filter.key, [...withheld].sort()]),
    exposes: (tool) => !withheld.has(tool) && filter.exposes(tool),
    refusal: (tool) => (withheld.has(tool) ? why(tool) : filter.refusal?.(tool)),
  };
}

/** What tools.lock.yaml pins of a server, and whether tools that differ are kept from clients (spec.tools.onDrift). */
export interface ToolPins {
  entry: Record<string, LockedTool>;
  withhold: boolean;
}

/**
 * The filter a server's clients get, wherever apiary fronts it (the stdio
 * bridge, the HTTP proxy, the aggregate): spec.tools, and under Withhold the
 * tools that differ from the pins (changed and new) too, a call on one
 * refused naming the drift. `listed`: each tool the server lists now with
 * its digest (undefined: not listed yet, nothing judged). `drift` only when
 * there is one.
 */
export function pinnedFilter(server: string, spec: ToolFilter, pins: ToolPins | undefined, listed: readonly { name: string; digest: string }[] | undefined): { filter: ToolFilter; drift?: ToolDrift } {
  const found = pins !== undefined && listed !== undefined ? toolDrift(pins.entry, listed) : undefined;
  if (found === undefined || !hasDrift(found)) return { filter: spec };
  const withheld = new Set(pins?.withhold === true ? [...found.changed, ...found.added] : []);
  const why = describeDrift(found);
  const filter = withholding(spec, withheld, (tool) => `tool "${tool}" is withheld: mcpserver/${server}'s ${why}; review it with: apiary tools diff ${server}, then: apiary tools approve ${server} ${tool}`);
  return { filter, drift: found };
}
