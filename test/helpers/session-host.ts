/**
 * The bookkeeping of an in-memory SessionHost (a stand-in for a Bridge or
 * the Aggregate behind an endpoint): its open sessions, each with where its
 * messages go. A test's host extends it with what it answers (fromClient).
 */
import { randomUUID } from 'node:crypto';
import type { Deliver } from '../../src/mcp/bridge.js';
import type { JsonRpcMessage } from '../../src/mcp/jsonrpc.js';
import type { SessionHost } from '../../src/mcp/modern.js';

export abstract class SessionTable implements SessionHost {
  readonly sessions = new Map<string, Deliver>();
  openSession(deliver: Deliver): string {
    const id = randomUUID();
    this.sessions.set(id, deliver);
    return id;
  }
  hasSession(id: string): boolean {
    return this.sessions.has(id);
  }
  closeSession(id: string): void {
    this.sessions.delete(id);
  }
  abstract fromClient(id: string, message: JsonRpcMessage): Promise<void>;
}
