/** Where things live in the state directory. */
import { join } from 'node:path';
import type { Kind } from '../api/names.js';

export class StateLayout {
  constructor(readonly root: string) {}

  get statusDir(): string {
    return join(this.root, 'status');
  }
  statusFile(kind: Kind, name: string): string {
    return join(this.statusDir, kind.toLowerCase(), `${name}.json`);
  }
  get processDir(): string {
    return join(this.root, 'processes');
  }
  processRecord(name: string): string {
    return join(this.processDir, `${name}.json`);
  }
  get logDir(): string {
    return join(this.root, 'logs');
  }
  logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }
  previousLogFile(name: string): string {
    return join(this.logDir, `${name}.previous.log`);
  }
  /** "size time" lines: when the log had grown to that size (for logs --timestamps). */
  logIndexFile(name: string): string {
    return join(this.logDir, `${name}.log.idx`);
  }
  previousLogIndexFile(name: string): string {
    return join(this.logDir, `${name}.previous.log.idx`);
  }
  rotatedLogFile(name: string): string {
    return join(this.logDir, `${name}.log.1`);
  }
  get controllerFile(): string {
    return join(this.root, 'controller.json');
  }
  /** The controller's own log when it runs in the background (up --detach). */
  get controllerLogFile(): string {
    return join(this.root, 'controller.log');
  }
  get previousControllerLogFile(): string {
    return join(this.root, 'controller.previous.log');
  }
  get stateKeyFile(): string {
    return join(this.root, 'state.key');
  }
  get requestsDir(): string {
    return join(this.root, 'requests');
  }
}
