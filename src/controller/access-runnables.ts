/**
 * What the Gateway asks for beside authentication, each a runnable the
 * manager starts before the endpoints and stops after them, so the last
 * request's record is flushed and its span exported: the audit log and the
 * telemetry exporters. Both are opened, reopened or closed by the access
 * reconciler as the Gateway says (`use`); without a Gateway neither opens
 * anything, and no file appears.
 */
import type { AuditRecord, AuditSink } from '../api/audit.js';
import { NO_TELEMETRY, type Telemetry } from '../api/gate.js';
import type { Runnable } from '../api/runnable.js';
import { messageOf } from '../errors.js';
import type { AuditSettings, GatewayTelemetry } from '../reconcilers/access-plan.js';
import type { AuditOwner, OpenedTelemetry, TelemetryOwner } from '../reconcilers/access.js';
import { AuditLog } from '../state/audit-log.js';
import type { StateLayout } from '../state/layout.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/**
 * The state directory's audit log. The sink the endpoints are given stays
 * the same object while the log is reopened (new rotation settings):
 * records appended meanwhile wait and are written to the reopened log, and
 * a request that ends after the log was turned off appends to nothing.
 */
export class AuditLogRunnable implements Runnable, AuditOwner {
  readonly name = 'the audit log';
  readonly #layout: StateLayout;
  readonly #logger: Logger;
  #log: AuditLog | undefined;
  #settings: string | undefined;
  #waiting: AuditRecord[] | undefined;
  readonly #sink: AuditSink = {
    append: (record) => {
      if (this.#log !== undefined) this.#log.append(record);
      else this.#waiting?.push(record);
    },
  };

  constructor(layout: StateLayout, logger: Logger) {
    this.#layout = layout;
    this.#logger = logger;
  }

  async start(): Promise<void> {}

  async use(settings: AuditSettings | undefined): Promise<AuditSink | undefined> {
    const key = settings === undefined ? undefined : JSON.stringify(settings);
    if (key === this.#settings && (settings === undefined || this.#log !== undefined)) return settings === undefined ? undefined : this.#sink;
    this.#waiting = settings === undefined ? undefined : [];
    await this.#close();
    this.#settings = undefined;
    if (settings === undefined) return undefined;
    try {
      this.#log = await AuditLog.open(this.#layout, {
        maxFileBytes: settings.maxFileBytes,
        keepFiles: settings.maxFiles,
        onError: (err) => this.#logger.error('audit log write failed', { dir: this.#layout.auditDir, error: err.message }),
      });
      this.#settings = key;
      this.#logger.info('audit log open', { dir: this.#layout.auditDir, seq: this.#log.lastSeq });
    } finally {
      const waiting = this.#waiting ?? [];
      this.#waiting = undefined;
      for (const record of waiting) this.#log?.append(record);
    }
    return this.#sink;
  }

  async #close(): Promise<void> {
    const log = this.#log;
    this.#log = undefined;
    await log?.close().catch((err: unknown) => this.#logger.error('audit log could not be flushed', { dir: this.#layout.auditDir, error: messageOf(err) }));
  }

  /** After the endpoints: everything they appended is written, synced and anchored in the head. */
  async stop(): Promise<void> {
    await this.#close();
    this.#settings = undefined;
  }
}

/** How long exporters that failed to open are left before the same spec is tried again. */
const TELEMETRY_RETRY_MS = 30_000;

/** OpenTelemetry, opened from the injected factory only when the Gateway has spec.telemetry. */
export class TelemetryRunnable implements Runnable, TelemetryOwner {
  readonly name = 'the telemetry exporters';
  readonly #open: (spec: GatewayTelemetry) => Promise<OpenedTelemetry>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #current: { key: string; telemetry: OpenedTelemetry } | undefined;
  #failed: { key: string; at: number; error: unknown } | undefined;

  constructor(open: (spec: GatewayTelemetry) => Promise<OpenedTelemetry>, clock: Clock, logger: Logger) {
    this.#open = open;
    this.#clock = clock;
    this.#logger = logger;
  }

  async start(): Promise<void> {}

  async use(spec: GatewayTelemetry | undefined): Promise<{ telemetry: Telemetry; metricsUrl?: string }> {
    const key = spec === undefined ? undefined : JSON.stringify(spec);
    const current = this.#current;
    if (current !== undefined && current.key === key) return opened(current.telemetry);
    // Closed first: a Prometheus listener on the same port is freed for the new one.
    await this.#close();
    if (spec === undefined || key === undefined) return { telemetry: NO_TELEMETRY };
    const failed = this.#failed;
    if (failed?.key === key && this.#clock.now() - failed.at < TELEMETRY_RETRY_MS) throw failed.error;
    try {
      const telemetry = await this.#open(spec);
      this.#current = { key, telemetry };
      this.#failed = undefined;
      this.#logger.info('telemetry started', { otlp: spec.otlp?.endpoint, metrics: telemetry.metricsUrl });
      return opened(telemetry);
    } catch (err) {
      this.#failed = { key, at: this.#clock.now(), error: err };
      this.#logger.warn('telemetry cannot be started', { error: messageOf(err) });
      throw err;
    }
  }

  async #close(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    await current?.telemetry.close().catch((err: unknown) => this.#logger.warn('telemetry could not be flushed', { error: messageOf(err) }));
  }

  /** After the endpoints: the last spans and metrics exported. */
  async stop(): Promise<void> {
    await this.#close();
  }
}

function opened(telemetry: OpenedTelemetry): { telemetry: Telemetry; metricsUrl?: string } {
  return { telemetry, ...(telemetry.metricsUrl !== undefined ? { metricsUrl: telemetry.metricsUrl } : {}) };
}
