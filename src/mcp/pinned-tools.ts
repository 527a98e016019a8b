/**
 * Pinned tool definitions for a server apiary fronts without holding its
 * session (an HTTP server behind the proxy, a hosted one): what its probe
 * lists (at the handshake and after each list_changed) is judged against
 * the server's entry in tools.lock.yaml as the stdio bridge judges its
 * process's handshake, and gives the filter its proxy and the aggregate
 * apply (pinnedFilter: spec.tools, and under Withhold the drifted tools).
 */
import { digests, type ToolDefinition, type ToolDrift } from '../api/tool-lock.js';
import { EXPOSE_ALL, pinnedFilter, type ToolFilter, type ToolPins } from './tool-filter.js';

export class PinnedTools {
  readonly #server: string;
  #spec: ToolFilter = EXPOSE_ALL;
  #pins: ToolPins | undefined;
  /** Each listed tool's digest (computed once per listing). */
  #listed: { name: string; digest: string }[] | undefined;
  #filter: ToolFilter = EXPOSE_ALL;
  #drift: ToolDrift | undefined;

  constructor(server: string) {
    this.#server = server;
  }

  /** spec.tools and the pins, as the last reconcile read them; true when what clients see or the drift changed. */
  configure(spec: ToolFilter, pins: ToolPins | undefined): boolean {
    this.#spec = spec;
    this.#pins = pins;
    return this.#judge();
  }

  /** What the server lists now, whole; true when what clients see or the drift changed. */
  listed(definitions: readonly ToolDefinition[]): boolean {
    this.#listed = digests(definitions);
    return this.#judge();
  }

  /** What clients may see and call. */
  get filter(): ToolFilter {
    return this.#filter;
  }

  /** For the server's status (ToolsDrifted): the drift, and the tools kept from clients. */
  status(): { drift?: ToolDrift; withheldTools?: string[] } {
    if (this.#drift === undefined) return {};
    return { drift: this.#drift, ...(this.#pins?.withhold === true ? { withheldTools: [...this.#drift.changed, ...this.#drift.added] } : {}) };
  }

  #judge(): boolean {
    const { filter, drift } = pinnedFilter(this.#server, this.#spec, this.#pins, this.#listed);
    const changed = filter.key !== this.#filter.key || JSON.stringify(drift) !== JSON.stringify(this.#drift);
    this.#filter = filter;
    this.#drift = drift;
    return changed;
  }
}
