import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value. It prints, serializes and inspects as "[redacted]"; the
 * plaintext is reachable only through reveal(), so it cannot slip into a log
 * line, a status file or an error message by accident.
 */
export class SecretValue {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  equals(other: SecretValue): boolean {
    return this.#value === other.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
