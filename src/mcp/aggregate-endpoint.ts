/** The aggregate MCP endpoint (every Ready server's tools at one URL) as a runnable, over the backend's gateway. */
import type { Runnable } from '../api/runnable.js';
import type { Logger } from '../util/logger.js';
import type { Gateway } from './gateway.js';

export class AggregateEndpoint implements Runnable {
  readonly name = 'the aggregate MCP endpoint';
  readonly #gateway: () => Gateway;
  readonly #version: string;
  readonly #logger: Logger;
  /** Where it listens, once it does. */
  url: string | undefined;

  /** `gateway` is read at start: the backend that owns it has started by then. */
  constructor(gateway: () => Gateway, version: string, logger: Logger) {
    this.#gateway = gateway;
    this.#version = version;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    const aggregate = await this.#gateway().startAggregate(this.#version);
    if ('url' in aggregate) {
      this.url = aggregate.url;
      this.#logger.info('aggregate MCP endpoint listening', { url: aggregate.url });
    } else {
      // Each server's own endpoint still works: this is no reason not to start.
      this.#logger.warn('aggregate MCP endpoint unavailable', { error: aggregate.error });
    }
  }

  async stop(): Promise<void> {
    await this.#gateway().closeAggregate();
  }
}
