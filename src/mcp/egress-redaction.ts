/**
 * The gateway's side of "no secret leaves in a response": per server, the
 * redactor for the secret values apiary resolved for it (built again only
 * when that set changes), applied to each message the server sends towards a
 * client and to each line of its that apiary writes to its log; each find is
 * reported, at most once a minute per server and secret key.
 */
import { redactValue, SecretRedactor, type NamedSecret, type SecretMatch } from '../api/secret-redactor.js';
import type { Clock } from '../util/clock.js';
import { OncePerWindow } from '../util/once-per.js';

/** One report per server and secret key in this window: a server that echoes a secret in every answer does not flood the events. */
export const REDACTION_REPORT_INTERVAL_MS = 60_000;

interface ServerSecrets {
  /** The values, to notice a change (memory only, as the gateway's hosted headers). */
  fingerprint: string;
  redactor: SecretRedactor | undefined;
}

export type RedactionReport = (server: string, secret: string, key: string) => void;

/** One server's redaction, as the paths that carry its messages without a Bridge take it (the HTTP proxy, the aggregate's HTTP members). */
export interface ServerRedaction {
  /** Whether any value is looked for now: a path that passes bytes on as they come reads them only then. */
  active(): boolean;
  /** Whether a JSON text the server sent may hold one of the values (false: it can go on as it came, unparsed). */
  mayHold(json: string): boolean;
  message<T>(message: T): T;
  /** Text that is no JSON (an error page): the values replaced where they stand. */
  text(text: string): string;
}

export const NO_REDACTION: ServerRedaction = { active: () => false, mayHold: () => false, message: (m) => m, text: (t) => t };

export class EgressRedaction {
  readonly #report: RedactionReport;
  readonly #servers = new Map<string, ServerSecrets>();
  readonly #reported: OncePerWindow;
  /** Per server, where its values come from (`manifest`: what its spec resolves; `login`: the token apiary's login holds) -> the values. */
  readonly #parts = new Map<string, Map<string, readonly NamedSecret[]>>();

  constructor(clock: Clock, report: RedactionReport) {
    this.#report = report;
    this.#reported = new OncePerWindow(clock, REDACTION_REPORT_INTERVAL_MS);
  }

  /** The secret values the server is given now, from one source (`part`): the others' stay looked for. */
  set(server: string, secrets: readonly NamedSecret[], part: 'manifest' | 'login' = 'manifest'): void {
    const parts = this.#parts.get(server) ?? new Map<string, readonly NamedSecret[]>();
    parts.set(part, secrets);
    this.#parts.set(server, parts);
    const all = [...parts.values()].flat();
    const fingerprint = JSON.stringify(all.map((s) => [s.secret, s.key, s.value]));
    if (this.#servers.get(server)?.fingerprint === fingerprint) return;
    this.#servers.set(server, { fingerprint, redactor: SecretRedactor.build(all) });
  }

  /** `server`'s redaction, following its secret set as it changes. */
  forServer(server: string): ServerRedaction {
    return {
      active: () => this.#servers.get(server)?.redactor !== undefined,
      mayHold: (json) => this.#servers.get(server)?.redactor?.mayHoldJson(json) ?? false,
      message: (m) => this.message(server, m),
      text: (t) => this.line(server, t),
    };
  }

  forget(server: string): void {
    this.#servers.delete(server);
    this.#parts.delete(server);
  }

  /** A JSON-RPC message from the server, with its secrets replaced (the same object when none was found). */
  message<T>(server: string, message: T): T {
    const redactor = this.#servers.get(server)?.redactor;
    if (redactor === undefined) return message;
    const found: SecretMatch[] = [];
    const redacted = redactValue(redactor, message, found);
    this.#found(server, found);
    return redacted;
  }

  /** A line of the server's output, for its log. */
  line(server: string, line: string): string {
    const redactor = this.#servers.get(server)?.redactor;
    if (redactor === undefined) return line;
    const { text, found } = redactor.redact(line);
    this.#found(server, found);
    return text;
  }

  #found(server: string, found: readonly SecretMatch[]): void {
    for (const { secret, key } of found) if (this.#reported.first(server, JSON.stringify([secret, key]))) this.#report(server, secret, key);
  }
}
