/** Liveness settings (spec.healthCheck), in milliseconds. */
export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

export const DEFAULT_HEALTH: HealthOptions = { intervalMs: 30_000, timeoutMs: 5_000, failureThreshold: 3 };
