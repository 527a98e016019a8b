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

export class EgressRedaction {
  readonly #report: RedactionReport;
  readonly #servers = new Map<string, ServerSecrets>();
  readonly #reported: OncePerWindow;

  constructor(clock: Clock, report: RedactionReport) {
    this.#report = report;
    this.#reported = new OncePerWindow(clock, REDACTION_REPORT_INTERVAL_MS);
  }

  /** The secret values the server is given now. */
  set(server: string, secrets: readonly NamedSecret[]): void {
    const fingerprint = JSON.stringify(secrets.map((s) => [s.secret, s.key, s.value]));
    if (this.#servers.get(server)?.fingerprint === fingerprint) return;
    this.#servers.set(server, { fingerprint, redactor: SecretRedactor.build(secrets) });
  }

  forget(server: string): void {
    this.#servers.delete(server);
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
