/** Liveness settings (spec.healthCheck), in milliseconds. */
export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

export const DEFAULT_HEALTH: HealthOptions = { intervalMs: 30_000, timeoutMs: 5_000, failureThreshold: 3 };

/**
 * Why the gateway found a running process failing, as its termination and
 * event say: its pings failed (Unhealthy), or it broke MCP's framing
 * (ProtocolError: a message over the cap). Either way it is restarted.
 */
export type HealthFailure = 'Unhealthy' | 'ProtocolError';
