/**
 * Telemetry (issue 26 item 5) with the OpenTelemetry JS SDK: a SERVER span
 * per MCP request under the MCP semantic conventions, the request duration
 * histogram and apiary's own counters, exported over OTLP/HTTP and served to
 * Prometheus at /metrics on a listener of apiary's own.
 *
 * The SDK costs ~140 ms of CPU to load (research note §5), so this module is
 * only ever imported with `await import()`, by the controller, when a Gateway
 * sets spec.telemetry; test/telemetry.test.ts checks that nothing reaches it
 * statically. No globals are set (no global tracer provider, no async hooks):
 * each span's parent is the request's `_meta` context, passed explicitly, so
 * several of these live side by side in one process (tests, a reconfigured
 * Gateway while the old one drains).
 *
 * The semantic-conventions package is not imported (9.7 MB, and the MCP names
 * are only in its incubating entry): the names are written below, from
 * semantic-conventions docs/gen-ai/mcp.md (c9e48b1d1^, status Development).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Counter, type Histogram, type Meter, type Span, type TextMapGetter, type UpDownCounter } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { AuditOutcome } from '../api/audit.js';
import type { RequestSpan, RequestTelemetry, Telemetry } from '../api/gate.js';
import type { GatewaySpec } from '../api/manifests.js';
import { ApiaryError, messageOf } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { loopbackRefusal } from '../util/loopback.js';

export type GatewayTelemetry = NonNullable<GatewaySpec['telemetry']>;

export interface TelemetryOptions {
  /** Also sends every span here as it ends (tests: the SDK's InMemorySpanExporter). */
  spanExporter?: SpanExporter;
  /** Also reads the metrics (tests: a reader they collect from). */
  metricReader?: MetricReader;
  /** Where a failing OTLP export is said (once per signal until it works again); the SDK itself says nothing without a global logger. */
  logger?: Logger;
  /** How long close waits for the last export (default CLOSE_GRACE_MS). */
  closeGraceMs?: number;
}

/**
 * How long close waits for the last spans and metrics to reach the
 * collector. The OTLP exporter retries a collector that is down for ~8 s
 * (measured), which would hold up apiary's stop; past this, what is pending
 * is dropped, and the log says so.
 */
export const CLOSE_GRACE_MS = 2000;

export interface OpenTelemetry extends Telemetry {
  /** Exports what is pending now (spans, a round of metrics). */
  flush(): Promise<void>;
  /** Exports what is pending (spans, a last round of metrics) and stops the exporters and the /metrics listener. */
  close(): Promise<void>;
  /** Where /metrics is served, when spec.prometheus asked for it (the port the OS gave for port 0). */
  metricsUrl?: string;
}

/** The histogram's buckets, in seconds, as the MCP conventions give them. */
export const DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/**
 * How many tool (or prompt) names one server may put in metric labels. Names
 * come from callers, and a forced call to a tool that does not exist must
 * not make a series of its own: a name becomes a label only once a call to it
 * succeeded (or failed as a tool, isError), which only a real tool does, and
 * at most this many per server (a server that answers any name). Every other
 * name is counted as `other`; spans and the audit log keep the real one.
 */
export const MAX_NAMES_PER_SERVER = 200;
export const OTHER = 'other';

const ATTR = {
  method: 'mcp.method.name',
  tool: 'gen_ai.tool.name',
  prompt: 'gen_ai.prompt.name',
  resource: 'mcp.resource.uri',
  requestId: 'jsonrpc.request.id',
  operation: 'gen_ai.operation.name',
  protocolVersion: 'mcp.protocol.version',
  sessionId: 'mcp.session.id',
  errorType: 'error.type',
  statusCode: 'rpc.response.status_code',
  server: 'apiary.server',
  outcome: 'apiary.outcome',
} as const;

/**
 * The MCP methods a metric label may name (2025-11-25 and 2026-07-28); any
 * other method a caller sends is `other`, for the same reason as tool names.
 */
const METHODS = new Set([
  'initialize', 'ping', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/read',
  'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'completion/complete', 'logging/setLevel',
  'server/discover', 'subscriptions/listen', 'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel',
]);

/** How much of a caller's tool or prompt name a span's name carries (the attribute has it whole, up to the span limits). */
const NAME_IN_SPAN_NAME = 128;

const metaGetter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  get: (carrier, key) => (typeof carrier[key] === 'string' ? carrier[key] : undefined),
  keys: (carrier) => Object.keys(carrier),
};

interface Instruments {
  duration: Histogram;
  calls: Counter;
  denials: Counter;
  rateLimited: Counter;
  sessions: UpDownCounter;
  restarts: Counter;
  rollouts: Counter;
}

function instruments(meter: Meter): Instruments {
  return {
    duration: meter.createHistogram('mcp.server.operation.duration', { unit: 's', description: 'How long MCP requests took at apiary\'s endpoints', advice: { explicitBucketBoundaries: DURATION_BUCKETS } }),
    calls: meter.createCounter('apiary.calls', { description: 'MCP requests answered, by server, method, name and outcome' }),
    denials: meter.createCounter('apiary.denials', { description: 'Requests refused by an access policy' }),
    rateLimited: meter.createCounter('apiary.rate_limited', { description: 'Requests refused over a rate limit' }),
    sessions: meter.createUpDownCounter('apiary.sessions.active', { description: 'Sessions open at a server\'s endpoint' }),
    restarts: meter.createCounter('apiary.restarts', { description: 'Server processes restarted' }),
    rollouts: meter.createCounter('apiary.rollouts', { description: 'Servers rolled out to a new generation' }),
  };
}

/** Tool and prompt names as metric labels: learned from calls that reached a real one, bounded per server (MAX_NAMES_PER_SERVER). */
class NameLabels {
  readonly #known = new Map<string, Set<string>>();

  label(server: string, method: string, name: string, outcome: AuditOutcome): string {
    const key = `${server}\0${method}`;
    let names = this.#known.get(key);
    if (names?.has(name) === true) return name;
    if (outcome !== 'ok' && outcome !== 'tool_error') return OTHER;
    if (names === undefined) this.#known.set(key, (names = new Set()));
    if (names.size >= MAX_NAMES_PER_SERVER) return OTHER;
    names.add(name);
    return name;
  }
}

/** What the span's error.type says: the JSON-RPC code, `tool_error`, or the outcome's own code when none was given. */
function errorTypeOf(outcome: AuditOutcome, code: number | undefined): string | undefined {
  if (outcome === 'ok') return undefined;
  if (outcome === 'tool_error') return 'tool_error';
  if (code !== undefined) return String(code);
  return { denied: '403', rate_limited: '429', unauthenticated: '401', error: '_OTHER' }[outcome];
}

/** error.type as a metric label: JSON-RPC's reserved range and the HTTP-like codes apiary answers with; an upstream's own codes are `_OTHER`. */
function errorTypeLabel(type: string | undefined): string | undefined {
  if (type === undefined || !/^-?\d+$/.test(type)) return type;
  const code = Number(type);
  return (code >= -32768 && code <= -32000) || [401, 403, 404, 429].includes(code) ? type : '_OTHER';
}

/** The name a request is about, under the attribute its method calls it. */
function targetAttribute(method: string): string | undefined {
  if (method === 'tools/call') return ATTR.tool;
  if (method === 'prompts/get') return ATTR.prompt;
  if (method.startsWith('resources/') && !method.endsWith('/list')) return ATTR.resource;
  return undefined;
}

function startAttributes(request: RequestTelemetry): Attributes {
  const attributes: Attributes = { [ATTR.method]: request.method, [ATTR.server]: request.server };
  const target = targetAttribute(request.method);
  if (target !== undefined && request.name !== undefined) attributes[target] = request.name;
  if (request.method === 'tools/call') attributes[ATTR.operation] = 'execute_tool';
  if (request.requestId !== undefined) attributes[ATTR.requestId] = String(request.requestId);
  if (request.protocolVersion !== undefined) attributes[ATTR.protocolVersion] = request.protocolVersion;
  if (request.sessionId !== undefined) attributes[ATTR.sessionId] = request.sessionId;
  return attributes;
}

/** The span's name: `{mcp.method.name} {target}`, the target a tool or prompt (never a resource URI, which may be long or private). */
function spanName(request: RequestTelemetry): string {
  const target = targetAttribute(request.method);
  return target !== undefined && target !== ATTR.resource && request.name !== undefined ? `${request.method} ${request.name.slice(0, NAME_IN_SPAN_NAME)}` : request.method;
}

class Recorder {
  readonly #names = new NameLabels();
  readonly #propagator = new W3CTraceContextPropagator();
  readonly #sessions = new Map<string, number>();

  /**
   * `tracer` undefined: spans go nowhere (a Gateway with prometheus only), so
   * none is made; the caller's own context, as extracted, is what goes
   * upstream, and apiary is not a hop in the trace.
   */
  constructor(
    private readonly tracer: ReturnType<BasicTracerProvider['getTracer']> | undefined,
    private readonly meters: Instruments,
  ) {}

  start(request: RequestTelemetry): RequestSpan {
    const parent = request.meta === undefined ? ROOT_CONTEXT : this.#propagator.extract(ROOT_CONTEXT, request.meta, metaGetter);
    const span = this.tracer?.startSpan(spanName(request), { kind: SpanKind.SERVER, attributes: startAttributes(request) }, parent) ?? trace.getSpan(parent);
    const started = performance.now();
    let ended = false;
    return {
      upstreamMeta: () => this.#upstreamMeta(parent, span),
      end: (outcome, error) => {
        if (ended) return;
        ended = true;
        const seconds = (performance.now() - started) / 1000;
        const errorType = errorTypeOf(outcome, error?.code);
        this.#endSpan(span, errorType, error);
        this.#count(request, outcome, errorType, seconds);
      },
    };
  }

  /**
   * Kept here too, so a session this telemetry never saw open (opened under
   * the Gateway's previous one, closed under this) cannot count below 0.
   */
  sessions(server: string, delta: number): void {
    const open = this.#sessions.get(server) ?? 0;
    const applied = Math.max(delta, -open);
    if (applied === 0) return;
    this.#sessions.set(server, open + applied);
    this.meters.sessions.add(applied, { [ATTR.server]: server });
  }

  lifecycle(server: string, event: 'restart' | 'rollout'): void {
    (event === 'restart' ? this.meters.restarts : this.meters.rollouts).add(1, { [ATTR.server]: server });
  }

  #upstreamMeta(parent: Context, span: Span | undefined): Record<string, string> {
    const meta: Record<string, string> = {};
    if (span === undefined) return meta;
    this.#propagator.inject(trace.setSpan(parent, span), meta, { set: (carrier, key, value) => void (carrier[key] = value) });
    return meta;
  }

  #endSpan(span: Span | undefined, errorType: string | undefined, error: { code?: number; message?: string } | undefined): void {
    // The caller's context (no tracer) is not ours to end.
    if (span === undefined || this.tracer === undefined) return;
    if (errorType !== undefined) {
      span.setAttribute(ATTR.errorType, errorType);
      if (error?.code !== undefined) span.setAttribute(ATTR.statusCode, String(error.code));
      span.setStatus({ code: SpanStatusCode.ERROR, ...(error?.message !== undefined ? { message: error.message } : {}) });
    }
    span.end();
  }

  #count(request: RequestTelemetry, outcome: AuditOutcome, errorType: string | undefined, seconds: number): void {
    const method = METHODS.has(request.method) ? request.method : OTHER;
    const labels: Attributes = { [ATTR.server]: request.server, [ATTR.method]: method };
    const target = targetAttribute(request.method);
    // Resource URIs are never labels: one series per URI is what a label must not be.
    if (target !== undefined && target !== ATTR.resource && request.name !== undefined) labels[target] = this.#names.label(request.server, method, request.name, outcome);
    const counted = { ...labels, [ATTR.outcome]: outcome };
    const type = errorTypeLabel(errorType);
    const version = request.protocolVersion !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(request.protocolVersion) ? request.protocolVersion : undefined;
    this.meters.duration.record(seconds, { ...counted, ...(type !== undefined ? { [ATTR.errorType]: type } : {}), ...(version !== undefined ? { [ATTR.protocolVersion]: version } : {}) });
    this.meters.calls.add(1, counted);
    if (outcome === 'denied') this.meters.denials.add(1, labels);
    if (outcome === 'rate_limited') this.meters.rateLimited.add(1, labels);
  }
}

type Signal = 'traces' | 'metrics';

/** OTLP/HTTP's two paths under the collector's base URL. */
function otlpUrl(endpoint: string, signal: Signal): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/${signal}`;
}

/** The URL as a log may show it: without user and password. */
function shownUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.href;
}

/**
 * Has the exporter's results said to the logger: the first failure of a
 * streak (a collector that is down fails every few seconds) and the recovery.
 * The exporter's own `export` is wrapped in place, so everything else it
 * offers its reader (temporality, aggregation) stays as it is.
 */
function reportExports<T>(exporter: { export(items: T, done: (result: ExportResult) => void): void }, signal: Signal, url: string, logger: Logger | undefined): void {
  if (logger === undefined) return;
  const send = exporter.export.bind(exporter);
  let failing = false;
  exporter.export = (items, done) =>
    send(items, (result) => {
      const failed = result.code !== ExportResultCode.SUCCESS;
      if (failed && !failing) logger.warn('telemetry export failed; will keep trying', { signal, endpoint: shownUrl(url), error: messageOf(result.error ?? 'failed') });
      if (!failed && failing) logger.info('telemetry export works again', { signal, endpoint: shownUrl(url) });
      failing = failed;
      done(result);
    });
}

function spanProcessors(spec: GatewayTelemetry, options: TelemetryOptions): SpanProcessor[] {
  const processors: SpanProcessor[] = [];
  if (options.spanExporter !== undefined) processors.push(new SimpleSpanProcessor(options.spanExporter));
  if (spec.otlp !== undefined) {
    const url = otlpUrl(spec.otlp.endpoint, 'traces');
    const exporter = new OTLPTraceExporter({ url });
    reportExports(exporter, 'traces', url, options.logger);
    processors.push(new BatchSpanProcessor(exporter));
  }
  return processors;
}

/**
 * The exporters pin sdk-metrics 2.12.0 (their own copy, beside apiary's
 * 2.12.1): their readers are the same interface, not the same class.
 */
function metricReaders(spec: GatewayTelemetry, options: TelemetryOptions, prometheus: PrometheusExporter | undefined): IMetricReader[] {
  const readers: IMetricReader[] = [];
  if (options.metricReader !== undefined) readers.push(options.metricReader);
  if (prometheus !== undefined) readers.push(prometheus);
  if (spec.otlp !== undefined) {
    const interval = (spec.otlp.intervalSeconds ?? 60) * 1000;
    const url = otlpUrl(spec.otlp.endpoint, 'metrics');
    const exporter = new OTLPMetricExporter({ url });
    reportExports(exporter, 'metrics', url, options.logger);
    // The SDK refuses an export timeout longer than the interval (its default is 30 s).
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 30_000) }));
  }
  return readers;
}

/**
 * GET /metrics answered by the exporter, 404 elsewhere: apiary's own
 * listener, so a port in use is an error apiary words. On loopback (the
 * default) the Host must be a loopback name, as on every port apiary serves
 * there: the labels name servers and tools, which a rebound web page should
 * not read. On another address Prometheus names the host as it knows it.
 */
function metricsHandler(exporter: PrometheusExporter, loopback: boolean): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const refused = loopback ? loopbackRefusal(req) : undefined;
    if (refused !== undefined) return void res.writeHead(403, { 'content-type': 'text/plain' }).end(`${refused}\n`);
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return exporter.getMetricsRequestHandler(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: apiary serves metrics at /metrics\n');
  };
}

function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

async function listenForMetrics(exporter: PrometheusExporter, port: number, address: string): Promise<{ server: Server; url: string }> {
  const server = createServer(metricsHandler(exporter, isLoopbackAddress(address)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `port ${port} is already in use on ${address}` : messageOf(err);
    throw new ApiaryError('StartFailed', `the Gateway's telemetry cannot serve /metrics on ${address}:${port}: ${why}`, {
      cause: err,
      hints: ['choose another spec.telemetry.prometheus.port in the Gateway manifest, or stop what listens there'],
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return { server, url: `http://${host}:${bound.port}/metrics` };
}

/** Whether `work` settled within `ms`; the timer keeps no process alive. */
async function withinGrace(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms).unref()));
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Telemetry as the Gateway's spec.telemetry asks: spans and metrics exported
 * over OTLP/HTTP when `otlp` is set, /metrics served when `prometheus` is.
 * Rejects (StartFailed) when the /metrics port cannot be listened on.
 */
export async function openTelemetry(spec: GatewayTelemetry, options: TelemetryOptions = {}): Promise<OpenTelemetry> {
  const resource = resourceFromAttributes({ 'service.name': spec.serviceName ?? 'apiary' });
  const prometheus = spec.prometheus !== undefined ? new PrometheusExporter({ preventServerStart: true }) : undefined;
  const processors = spanProcessors(spec, options);
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: processors, spanLimits: { attributeValueLengthLimit: 1024 } });
  const meterProvider = new MeterProvider({ resource, readers: metricReaders(spec, options, prometheus) });
  const grace = options.closeGraceMs ?? CLOSE_GRACE_MS;
  const stopSdk = async (): Promise<void> => {
    const stopped = await withinGrace(Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]), grace);
    if (!stopped) options.logger?.warn(`telemetry not all exported at close: the collector did not answer within ${grace} ms`);
  };
  let metrics: { server: Server; url: string } | undefined;
  if (prometheus !== undefined && spec.prometheus !== undefined) {
    metrics = await listenForMetrics(prometheus, spec.prometheus.port, spec.prometheus.address ?? '127.0.0.1').catch(async (err: unknown) => {
      await stopSdk();
      throw err;
    });
  }
  const recorder = new Recorder(processors.length > 0 ? tracerProvider.getTracer('apiary') : undefined, instruments(meterProvider.getMeter('apiary')));
  let closing: Promise<void> | undefined;
  return {
    startRequest: (request) => recorder.start(request),
    sessions: (server, delta) => recorder.sessions(server, delta),
    lifecycle: (server, event) => recorder.lifecycle(server, event),
    flush: async () => {
      await Promise.allSettled([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
    },
    close: () =>
      (closing ??= (async () => {
        if (metrics !== undefined) await closeServer(metrics.server);
        await stopSdk();
      })()),
    ...(metrics !== undefined ? { metricsUrl: metrics.url } : {}),
  };
}
