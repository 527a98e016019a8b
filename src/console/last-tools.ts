/**
 * The tools each server last listed, kept by the console so a server's page
 * still shows them once nothing runs to ask (Stuck on a missing secret,
 * crashed, suspended): a person fixing it still sees what it offers. Noted
 * from the gateway whenever the controller says something changed, so no
 * page needs to have been open while the server ran; in memory only, so a
 * controller started again knows a server's tools once it has run.
 */
import type { ToolSummary } from '../mcp/bridge.js';

export interface KnownTools {
  tools: ToolSummary[];
  /** When the server was last seen listing them. */
  at: string;
}

export class LastKnownTools {
  readonly #known = new Map<string, KnownTools>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** What the gateway knows of `name` now; nothing is forgotten for a server with no tools known right now. */
  note(name: string, tools: readonly ToolSummary[] | undefined): void {
    if (tools !== undefined) this.#known.set(name, { tools: [...tools], at: new Date(this.#now()).toISOString() });
  }

  get(name: string): KnownTools | undefined {
    return this.#known.get(name);
  }

  /** Forgets the servers no longer declared: a server of the same name declared later starts with nothing known. */
  keepOnly(names: ReadonlySet<string>): void {
    for (const name of this.#known.keys()) if (!names.has(name)) this.#known.delete(name);
  }
}
