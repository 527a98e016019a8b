/**
 * A backend runs the servers and owns what fronts them (the kubelet owns its
 * pods): it hears its own exits and pod changes, attaches and detaches the
 * gateway's bridges, keeps what it observed (run history, liveness
 * failures), and registers the reconcilers that act on that. The manager
 * only starts and stops it.
 */
import { parseResourceKey, resourceKey, type ResourceKey } from '../api/names.js';
import type { Host, Runnable } from '../api/runnable.js';
import type { MCPServerStatus } from '../api/status.js';
import { Gateway } from '../mcp/gateway.js';
import type { HealthFailure } from '../mcp/health.js';
import { AGGREGATE_PORT_KEY } from '../mcp/ports.js';
import type { StateLayout } from '../state/layout.js';
import type { RecordBook } from '../state/record-book.js';
import type { ReconcileContext } from './context.js';

export interface Backend extends Runnable {
  /** The MCP endpoints in front of the servers (there once the backend has started). */
  readonly gateway: Gateway;
  /** `apiary restart NAME`: true when the request is new. */
  requestRestart(name: string, requestedAt: string): boolean;
  /** A second Ctrl-C: SIGKILL every server now; how many were signalled. */
  killAll(): number;
  /** What runs here, one line each, for a stop that takes long. */
  processes(): string[];
}

/** A liveness failure the gateway saw (its pings, or a protocol error), kept by the backend as observed state. */
export interface LivenessFailure {
  pid: number;
  message: string;
  reason?: HealthFailure;
}

/** What every reconciler of every backend shares; each backend adds its runtime, its gateway and what it observed. */
export type SharedContext = Omit<ReconcileContext, 'runtime' | 'gateway' | 'memory' | 'liveness'>;

/** The liveness failures a backend observed, one per server: the latest failing process's. */
export class LivenessBook {
  readonly #failures = new Map<string, LivenessFailure>();

  get(name: string): LivenessFailure | undefined {
    return this.#failures.get(name);
  }

  /** False when this process's failure is known already (the gateway reports a failing process until it goes). */
  record(name: string, failure: LivenessFailure): boolean {
    if (this.#failures.get(name)?.pid === failure.pid) return false;
    this.#failures.set(name, failure);
    return true;
  }

  /** The process `pid` is gone: its failure is history (the run history has its termination). */
  forget(name: string, pid: number | undefined): void {
    if (this.#failures.get(name)?.pid === pid) this.#failures.delete(name);
  }
}

export interface GatewayWiring {
  layout: StateLayout;
  shared: SharedContext;
  host: Host;
  /** The bearer token every endpoint requires; absent: none (up --no-auth). */
  token?: string;
  /** Where the liveness failures the gateway reports are kept; each new one queues its server. */
  liveness: LivenessBook;
}

/**
 * The gateway a backend owns: a change to a server's endpoint queues that
 * server; a liveness failure is kept as observed state and queues it too; a
 * lost ports file is rebuilt from status.
 */
export function openGateway(wiring: GatewayWiring): Gateway {
  const { shared, host } = wiring;
  const gateway: Gateway = new Gateway({
    ...(wiring.token !== undefined ? { token: wiring.token } : {}),
    clock: shared.clock,
    logger: shared.logger,
    layout: wiring.layout,
    onChange: (name) => host.enqueue([resourceKey('MCPServer', name)]),
    recoverPorts: () => {
      const aggregate = gateway.aggregateUrl;
      return { ...portsFromStatus(shared.records), ...(aggregate !== undefined ? { [AGGREGATE_PORT_KEY]: Number(new URL(aggregate).port) } : {}) };
    },
    // The value itself is never written: the event names the secret and key.
    onSecretRedacted: (name, secret, key) => {
      shared.records.event('MCPServer', name, 'Warning', 'SecretRedacted', `the server sent the value of secret "${secret}" key "${key}"; it was replaced by [redacted: secret ${secret}/${key}] before reaching any client or the log`);
      // The event is written with the server's next status.
      host.enqueue([resourceKey('MCPServer', name)]);
    },
    onUnhealthy: (name, pid, message, reason) => {
      if (!wiring.liveness.record(name, { pid, message, ...(reason !== undefined && reason !== 'Unhealthy' ? { reason } : {}) })) return;
      shared.logger.warn('server unhealthy', { server: name, pid, reason: message });
      host.enqueue([resourceKey('MCPServer', name)]);
    },
  });
  return gateway;
}

/** The port in each server's status URL: what a lost ports file is rebuilt from. */
function portsFromStatus(records: RecordBook): Record<string, number> {
  const ports: Record<string, number> = {};
  for (const key of records.keys()) {
    const { kind, name } = parseResourceKey(key);
    const url = kind === 'MCPServer' ? (records.get(kind, name)?.status as MCPServerStatus | undefined)?.url : undefined;
    const port = url !== undefined && URL.canParse(url) ? Number(new URL(url).port) : NaN;
    if (Number.isInteger(port) && port > 0) ports[name] = port;
  }
  return ports;
}

/** The servers' keys among `keys`, for a backend's `keys()`. */
export function serverKeys(names: Iterable<string>): ResourceKey[] {
  return [...new Set(names)].map((name) => resourceKey('MCPServer', name));
}
