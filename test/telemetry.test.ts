/**
 * Issue 26 item 5, telemetry: src/mcp/otel.ts driven through the Telemetry
 * interface of src/api/gate.ts, as the endpoints call it. Spans are read with
 * the SDK's InMemorySpanExporter, metrics with a reader the test collects
 * from, OTLP/HTTP export by a plain node:http receiver (the exporter sends
 * JSON), and /metrics by Debian's real Prometheus, queried through its HTTP
 * API. And the SDK stays out of every verb that did not ask for it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestTelemetry, Telemetry } from '../src/api/gate.js';
import { isApiaryError } from '../src/errors.js';
import { createLogger, type LogRecord } from '../src/util/logger.js';
import { MAX_NAMES_PER_SERVER, openTelemetry, type GatewayTelemetry, type OpenTelemetry } from '../src/mcp/otel.js';
import { ROOT } from './helpers/cli.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';
import { needsPrometheus } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN}-01`;

const opened: OpenTelemetry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

/** A reader the test collects from when it wants (no export loop). */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

async function open(spec: GatewayTelemetry = {}): Promise<{ telemetry: OpenTelemetry; spans: InMemorySpanExporter; reader: CollectingReader }> {
  const spans = new InMemorySpanExporter();
  const reader = new CollectingReader();
  const telemetry = await openTelemetry(spec, { spanExporter: spans, metricReader: reader });
  opened.push(telemetry);
  return { telemetry, spans, reader };
}

/** One request through the interface, as an endpoint makes it. */
function call(telemetry: Telemetry, request: Partial<RequestTelemetry>, outcome: Parameters<ReturnType<Telemetry['startRequest']>['end']>[0] = 'ok', error?: { code?: number; message?: string }): Record<string, string> {
  const span = telemetry.startRequest({ method: 'tools/call', server: 'mini', name: 'echo', ...request });
  const upstream = span.upstreamMeta();
  span.end(outcome, error);
  return upstream;
}

async function metric(reader: CollectingReader, name: string): Promise<MetricData | undefined> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

/** The data points of a metric as {attributes, value} pairs, for toContainEqual. */
async function points(reader: CollectingReader, name: string): Promise<{ attributes: Record<string, unknown>; value: unknown }[]> {
  return ((await metric(reader, name))?.dataPoints ?? []).map((p: DataPoint<unknown>) => ({ attributes: { ...p.attributes }, value: p.value }));
}

const only = (spans: InMemorySpanExporter): ReadableSpan => {
  const finished = spans.getFinishedSpans();
  expect(finished).toHaveLength(1);
  return finished[0]!;
};

describe('spans', () => {
  it('a tool call is a SERVER span named by method and tool, with the MCP semantic conventions\' attributes', async () => {
    const { telemetry, spans } = await open();
    call(telemetry, { requestId: 7, protocolVersion: '2025-11-25', sessionId: 's-1' });
    const span = only(spans);
    expect(span.name).toBe('tools/call echo');
    expect(span.kind).toBe(1); // SpanKind.SERVER
    expect(span.attributes).toEqual({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'gen_ai.operation.name': 'execute_tool',
      'jsonrpc.request.id': '7',
      'mcp.protocol.version': '2025-11-25',
      'mcp.session.id': 's-1',
      'apiary.server': 'mini',
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.resource.attributes['service.name']).toBe('apiary');
  });

  it('a prompt is named by its prompt; a resource read carries its URI but is named by the method alone', async () => {
    const { telemetry, spans } = await open({ serviceName: 'team-apiary' });
    call(telemetry, { method: 'prompts/get', name: 'greet' });
    call(telemetry, { method: 'resources/read', name: 'file:///private/notes.txt' });
    const [prompt, resource] = spans.getFinishedSpans();
    expect(prompt!.name).toBe('prompts/get greet');
    expect(prompt!.attributes['gen_ai.prompt.name']).toBe('greet');
    expect(prompt!.attributes['gen_ai.operation.name']).toBeUndefined();
    expect(resource!.name).toBe('resources/read');
    expect(resource!.attributes['mcp.resource.uri']).toBe('file:///private/notes.txt');
    expect(prompt!.resource.attributes['service.name']).toBe('team-apiary');
  });

  it('continues the trace of _meta.traceparent, and upstreamMeta continues it from this span', async () => {
    const { telemetry, spans } = await open();
    const upstream = call(telemetry, { meta: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } });
    const span = only(spans);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(upstream).toEqual({ traceparent: `00-${TRACE_ID}-${span.spanContext().spanId}-01`, tracestate: 'vendor=abc' });
  });

  it('without a traceparent (or with a malformed one) the span starts a trace of its own, which upstream continues', async () => {
    const { telemetry, spans } = await open();
    const upstream = call(telemetry, { meta: { traceparent: 'not-a-traceparent', progressToken: 1 } });
    const span = only(spans);
    expect(span.parentSpanContext).toBeUndefined();
    expect(upstream['traceparent']).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });

  it('with nowhere to send spans (metrics only), none is made: upstream gets the caller\'s trace context as it came', async () => {
    const telemetry = await openTelemetry({ prometheus: { port: 0 } });
    opened.push(telemetry);
    expect(call(telemetry, { meta: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } })).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    expect(call(telemetry, {})).toEqual({});
  });

  it('an error is status ERROR with error.type the JSON-RPC code; a tool\'s isError is tool_error; a denial 403', async () => {
    const { telemetry, spans } = await open();
    call(telemetry, { name: 'nope' }, 'error', { code: -32602, message: 'Unknown tool: nope' });
    call(telemetry, { name: 'fail' }, 'tool_error');
    call(telemetry, { name: 'secret' }, 'denied', { code: 403, message: 'Forbidden by policy' });
    const [error, toolError, denied] = spans.getFinishedSpans();
    expect(error!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'Unknown tool: nope' });
    expect(error!.attributes['error.type']).toBe('-32602');
    expect(error!.attributes['rpc.response.status_code']).toBe('-32602');
    expect(toolError!.status.code).toBe(SpanStatusCode.ERROR);
    expect(toolError!.attributes['error.type']).toBe('tool_error');
    expect(toolError!.attributes['rpc.response.status_code']).toBeUndefined();
    expect(denied!.attributes['error.type']).toBe('403');
  });

  it('a span ends once, whatever calls end again', async () => {
    const { telemetry, spans, reader } = await open();
    const span = telemetry.startRequest({ method: 'tools/call', server: 'mini', name: 'echo' });
    span.end('ok');
    span.end('error', { code: -32603 });
    expect(spans.getFinishedSpans()).toHaveLength(1);
    expect(await points(reader, 'apiary.calls')).toEqual([{ attributes: expect.objectContaining({ 'apiary.outcome': 'ok' }) as unknown, value: 1 }]);
  });
});

describe('metrics', () => {
  it('calls, denials, rate limits and the duration histogram (seconds, the conventions\' buckets) per server, method, tool and outcome', async () => {
    const { telemetry, reader } = await open();
    for (let i = 0; i < 3; i++) call(telemetry, {});
    call(telemetry, {}, 'denied', { code: 403 });
    call(telemetry, {}, 'rate_limited', { code: 429 });
    call(telemetry, { method: 'tools/list', name: undefined });
    const echo = { 'apiary.server': 'mini', 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo' };
    const calls = await points(reader, 'apiary.calls');
    expect(calls).toContainEqual({ attributes: { ...echo, 'apiary.outcome': 'ok' }, value: 3 });
    expect(calls).toContainEqual({ attributes: { ...echo, 'apiary.outcome': 'denied' }, value: 1 });
    expect(calls).toContainEqual({ attributes: { ...echo, 'apiary.outcome': 'rate_limited' }, value: 1 });
    expect(calls).toContainEqual({ attributes: { 'apiary.server': 'mini', 'mcp.method.name': 'tools/list', 'apiary.outcome': 'ok' }, value: 1 });
    expect(await points(reader, 'apiary.denials')).toEqual([{ attributes: echo, value: 1 }]);
    expect(await points(reader, 'apiary.rate_limited')).toEqual([{ attributes: echo, value: 1 }]);

    const duration = await metric(reader, 'mcp.server.operation.duration');
    expect(duration?.descriptor.unit).toBe('s');
    const ok = duration?.dataPoints.find((p) => p.attributes['apiary.outcome'] === 'ok' && p.attributes['gen_ai.tool.name'] === 'echo');
    const histogram = ok?.value as Histogram;
    expect(histogram.count).toBe(3);
    expect(histogram.buckets.boundaries).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]);
    const denied = duration?.dataPoints.find((p) => p.attributes['apiary.outcome'] === 'denied');
    expect(denied?.attributes['error.type']).toBe('403');
  });

  it('sessions go up and down per server; restarts and rollouts are counted', async () => {
    const { telemetry, reader } = await open();
    telemetry.sessions('mini', 1);
    telemetry.sessions('mini', 1);
    telemetry.sessions('mini', -1);
    telemetry.sessions('other', 1);
    telemetry.lifecycle('mini', 'restart');
    telemetry.lifecycle('mini', 'restart');
    telemetry.lifecycle('mini', 'rollout');
    expect(await points(reader, 'apiary.sessions.active')).toEqual(
      expect.arrayContaining([
        { attributes: { 'apiary.server': 'mini' }, value: 1 },
        { attributes: { 'apiary.server': 'other' }, value: 1 },
      ]),
    );
    expect(await points(reader, 'apiary.restarts')).toEqual([{ attributes: { 'apiary.server': 'mini' }, value: 2 }]);
    expect(await points(reader, 'apiary.rollouts')).toEqual([{ attributes: { 'apiary.server': 'mini' }, value: 1 }]);
  });

  it('a session closed that this telemetry never saw open (opened under the Gateway\'s previous telemetry) does not take the count below 0', async () => {
    const { telemetry, reader } = await open();
    telemetry.sessions('mini', -1);
    telemetry.sessions('mini', 1);
    expect(await points(reader, 'apiary.sessions.active')).toEqual([{ attributes: { 'apiary.server': 'mini' }, value: 1 }]);
  });

  it('names from callers are bounded: a tool becomes a label once a call to it worked, every other name (and method) is other', async () => {
    const { telemetry, reader, spans } = await open();
    // Forced calls to tools that do not exist, each refused: none gets a series.
    for (let i = 0; i < 50; i++) call(telemetry, { name: `made-up-${i}` }, 'error', { code: -32602 });
    call(telemetry, { name: 'echo' }, 'denied', { code: 403 }); // not yet seen to exist
    call(telemetry, { name: 'echo' }); // it does
    call(telemetry, { name: 'echo' }, 'denied', { code: 403 }); // now its denials are its own
    call(telemetry, { method: 'x/custom-method-1', name: undefined }, 'error', { code: -32601 });
    const calls = await points(reader, 'apiary.calls');
    const tools = new Set(calls.map((p) => p.attributes['gen_ai.tool.name']));
    expect(tools).toEqual(new Set(['other', 'echo', undefined]));
    expect(calls).toContainEqual({ attributes: { 'apiary.server': 'mini', 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'other', 'apiary.outcome': 'error' }, value: 50 });
    expect(calls).toHaveLength(5); // other: error, denied; echo: ok, denied; the made-up method
    expect(calls).toContainEqual({ attributes: { 'apiary.server': 'mini', 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'other', 'apiary.outcome': 'denied' }, value: 1 });
    expect(calls).toContainEqual({ attributes: { 'apiary.server': 'mini', 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo', 'apiary.outcome': 'denied' }, value: 1 });
    expect(calls).toContainEqual({ attributes: { 'apiary.server': 'mini', 'mcp.method.name': 'other', 'apiary.outcome': 'error' }, value: 1 });
    // The span keeps the name the caller sent (its name, the first 128 characters of a long one).
    expect(spans.getFinishedSpans()[0]!.attributes['gen_ai.tool.name']).toBe('made-up-0');
    call(telemetry, { name: 'x'.repeat(5000) }, 'error', { code: -32602 });
    expect(spans.getFinishedSpans().at(-1)!.name).toBe(`tools/call ${'x'.repeat(128)}`);
    expect(spans.getFinishedSpans().at(-1)!.attributes['gen_ai.tool.name']).toBe('x'.repeat(1024));
    // A server that answers any name still gets at most MAX_NAMES_PER_SERVER of them.
    for (let i = 0; i < MAX_NAMES_PER_SERVER + 20; i++) call(telemetry, { server: 'lenient', name: `t${i}` });
    const lenient = (await points(reader, 'apiary.calls')).filter((p) => p.attributes['apiary.server'] === 'lenient');
    expect(lenient).toHaveLength(MAX_NAMES_PER_SERVER + 1);
    expect(lenient).toContainEqual({ attributes: { 'apiary.server': 'lenient', 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'other', 'apiary.outcome': 'ok' }, value: 20 });
  });
});

interface Received {
  path: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

/** An OTLP/HTTP collector: what it was sent, JSON-parsed, and a wait for a path. */
async function collector(status: () => number = () => 200): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(status(), { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

describe('export', () => {
  it('sends spans to /v1/traces and metrics to /v1/metrics over OTLP/HTTP (JSON); close flushes both', async () => {
    const otlp = await collector();
    try {
      const telemetry = await openTelemetry({ otlp: { endpoint: `${otlp.url}/`, intervalSeconds: 3600 }, serviceName: 'apiary-otlp' });
      call(telemetry, { meta: { traceparent: TRACEPARENT } });
      call(telemetry, { name: 'fail' }, 'tool_error');
      await telemetry.close();
      const traces = otlp.received.filter((r) => r.path === '/v1/traces');
      const metrics = otlp.received.filter((r) => r.path === '/v1/metrics');
      expect(traces.length).toBeGreaterThan(0);
      expect(metrics.length).toBeGreaterThan(0);
      expect(traces[0]!.contentType).toBe('application/json');

      type Attr = { key: string; value: { stringValue?: string } };
      const value = (attrs: Attr[], key: string): string | undefined => attrs.find((a) => a.key === key)?.value.stringValue;
      type ResourceSpans = { resource: { attributes: Attr[] }; scopeSpans: { spans: { name: string; traceId: string; parentSpanId?: string; attributes: Attr[]; status?: { code?: number } }[] }[] };
      const resourceSpans = traces.flatMap((t) => t.body['resourceSpans'] as ResourceSpans[]);
      expect(value(resourceSpans[0]!.resource.attributes, 'service.name')).toBe('apiary-otlp');
      const sent = resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
      expect(sent.map((s) => s.name)).toEqual(['tools/call echo', 'tools/call fail']);
      expect(sent[0]!.traceId).toBe(TRACE_ID);
      expect(sent[0]!.parentSpanId).toBe(PARENT_SPAN);
      expect(value(sent[1]!.attributes, 'error.type')).toBe('tool_error');
      expect(sent[1]!.status?.code).toBe(2); // STATUS_CODE_ERROR

      type ResourceMetrics = { scopeMetrics: { metrics: { name: string; sum?: { dataPoints: { asDouble?: number; attributes: Attr[] }[] } }[] }[] };
      const sentMetrics = metrics.flatMap((m) => (m.body['resourceMetrics'] as ResourceMetrics[]).flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)));
      expect(sentMetrics.map((m) => m.name)).toEqual(expect.arrayContaining(['mcp.server.operation.duration', 'apiary.calls']));
      const calls = sentMetrics.find((m) => m.name === 'apiary.calls')!.sum!.dataPoints;
      expect(calls.map((p) => [value(p.attributes, 'gen_ai.tool.name'), p.asDouble]).sort()).toEqual([['echo', 1], ['fail', 1]]);
    } finally {
      await new Promise((done) => otlp.server.close(done));
    }
  });

  it('a failing OTLP export is logged once per signal (without the URL\'s credentials), and so is its recovery', async () => {
    const records: LogRecord[] = [];
    const logger = createLogger((r) => records.push(r));
    // 400 is not retried by the exporter: each export fails at once, until the collector is fixed.
    let answer = 400;
    const otlp = await collector(() => answer);
    try {
      const endpoint = otlp.url.replace('http://', 'http://user:hunter2@');
      const telemetry = await openTelemetry({ otlp: { endpoint, intervalSeconds: 3600 } }, { logger });
      opened.push(telemetry);
      call(telemetry, {});
      await telemetry.flush();
      call(telemetry, {});
      await telemetry.flush();
      const said = (): string[][] => records.map((r) => [r.level, r.msg, String(r['signal']), String(r['endpoint'])]).sort();
      expect(said()).toEqual([
        ['warn', 'telemetry export failed; will keep trying', 'metrics', `${otlp.url}/v1/metrics`],
        ['warn', 'telemetry export failed; will keep trying', 'traces', `${otlp.url}/v1/traces`],
      ]);
      answer = 200;
      call(telemetry, {});
      await telemetry.flush();
      expect(said().slice(0, 2)).toEqual([
        ['info', 'telemetry export works again', 'metrics', `${otlp.url}/v1/metrics`],
        ['info', 'telemetry export works again', 'traces', `${otlp.url}/v1/traces`],
      ]);
      expect(JSON.stringify(records)).not.toContain('hunter2');
      await telemetry.close(); // while the collector is there to take the last round
    } finally {
      await new Promise((done) => otlp.server.close(done));
    }
  });

  it('close gives a collector that went away a short grace, not the exporter\'s ~8 s of retries, and says what it dropped', async () => {
    const records: LogRecord[] = [];
    const port = await freePort(); // nothing listens there
    const telemetry = await openTelemetry({ otlp: { endpoint: `http://127.0.0.1:${port}` } }, { logger: createLogger((r) => records.push(r)), closeGraceMs: 300 });
    call(telemetry, {});
    const started = performance.now();
    await telemetry.close();
    expect(performance.now() - started).toBeLessThan(3000);
    expect(records.map((r) => r.msg)).toContain('telemetry not all exported at close: the collector did not answer within 300 ms');
  });

  it('serves /metrics in the Prometheus text format on its own listener, 404 elsewhere; close stops it', async () => {
    const telemetry = await openTelemetry({ prometheus: { port: 0 } });
    opened.push(telemetry);
    expect(telemetry.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    call(telemetry, {});
    call(telemetry, {});
    telemetry.sessions('mini', 1);
    const text = await (await fetch(telemetry.metricsUrl!)).text();
    expect(text).toMatch(/^apiary_calls_total\{apiary_server="mini",mcp_method_name="tools\/call",gen_ai_tool_name="echo",apiary_outcome="ok"[^}]*\} 2$/m);
    expect(text).toMatch(/^mcp_server_operation_duration_bucket\{[^}]*le="\+Inf"\} 2$/m);
    expect(text).toMatch(/^apiary_sessions_active\{apiary_server="mini"[^}]*\} 1$/m);
    expect((await fetch(new URL('/', telemetry.metricsUrl))).status).toBe(404);
    expect((await fetch(new URL('/metrics/x', telemetry.metricsUrl))).status).toBe(404);
    const kept = await fetch(telemetry.metricsUrl!, { keepalive: true }); // a scraper's open connection does not hold the port
    await kept.text();
    await telemetry.close();
    await expect(fetch(telemetry.metricsUrl!)).rejects.toThrow();
    // The port is free at once: a changed Gateway's new telemetry listens where the old one did.
    const again = await openTelemetry({ prometheus: { port: Number(new URL(telemetry.metricsUrl!).port) } });
    opened.push(again);
    expect(again.metricsUrl).toBe(telemetry.metricsUrl);
  });

  it('on loopback, /metrics answers only to a loopback Host (DNS rebinding: a web page must not read the tool names)', async () => {
    const telemetry = await openTelemetry({ prometheus: { port: 0 } });
    opened.push(telemetry);
    const url = new URL(telemetry.metricsUrl!);
    const get = (host: string): Promise<{ status: number | undefined; body: string }> =>
      new Promise((done, fail) => {
        request({ host: url.hostname, port: url.port, path: '/metrics', headers: { host } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => done({ status: res.statusCode, body }));
        })
          .on('error', fail)
          .end();
      });
    expect(await get('rebound.example:80')).toEqual({ status: 403, body: 'Host "rebound.example:80" is not allowed: apiary answers only to 127.0.0.1, localhost and [::1]\n' });
    expect((await get(`localhost:${url.port}`)).status).toBe(200);
  });

  it('a /metrics port in use is a StartFailed error that names the address and port', async () => {
    const taken = createServer();
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    const port = (taken.address() as AddressInfo).port;
    try {
      const opening = openTelemetry({ prometheus: { port } });
      await expect(opening).rejects.toSatisfy((err: unknown) => isApiaryError(err, 'StartFailed'));
      await expect(opening).rejects.toThrow(`the Gateway's telemetry cannot serve /metrics on 127.0.0.1:${port}: port ${port} is already in use on 127.0.0.1`);
    } finally {
      await new Promise((done) => taken.close(done));
    }
  });
});

const PROMETHEUS = 'prometheus';
const prometheusTool = needsPrometheus();

describe('Prometheus scrapes /metrics', () => {
  it.runIf(prometheusTool.available)('Debian\'s prometheus scrapes apiary and a query through its HTTP API returns the call count', async () => {
    const telemetry = await openTelemetry({ prometheus: { port: 0 } });
    opened.push(telemetry);
    for (let i = 0; i < 42; i++) call(telemetry, {});
    const dir = await tempDir('apiary-prometheus-');
    const port = await freePort();
    const target = new URL(telemetry.metricsUrl!).host;
    await writeFile(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: apiary\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['${target}']\n`);
    const child = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--storage.tsdb.retention.time=1h'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise((done) => child.on('exit', done));
    const api = `http://127.0.0.1:${port}`;
    const json = async (path: string): Promise<{ data?: { activeTargets?: { health: string }[]; result?: { value: [number, string] }[] } } | undefined> => {
      const res = await fetch(`${api}${path}`).catch(() => undefined);
      return res?.ok === true ? ((await res.json()) as { data?: never }) : undefined;
    };
    try {
      const look = { intervalMs: 50, observe: () => log };
      await waitFor('prometheus ready', async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.ok === true, 20_000, look);
      // Prometheus 2.42 scrapes a new target after ~5.5 s whatever the interval (research note §6).
      await waitFor('the apiary target up', async () => (await json('/api/v1/targets'))?.data?.activeTargets?.[0]?.health === 'up', 20_000, look);
      const query = `/api/v1/query?query=${encodeURIComponent('sum(apiary_calls_total{apiary_server="mini",mcp_method_name="tools/call"})')}`;
      const count = async (): Promise<string | undefined> => (await json(query))?.data?.result?.[0]?.value[1];
      expect(await waitFor('the query to answer 42', async () => (await count()) === '42', 20_000, { intervalMs: 50, observe: count })).toBe(true);
      for (let i = 0; i < 8; i++) call(telemetry, {});
      expect(await waitFor('the next scrape: 50', async () => (await count()) === '50', 20_000, { intervalMs: 50, observe: count })).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});

describe('the SDK is loaded only when a Gateway asks for telemetry', () => {
  /** The modules node loads before any code runs: static imports, followed from a built file. */
  function staticImports(file: string, seen = new Set<string>()): Set<string> {
    if (seen.has(file)) return seen;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // tsc leaves one statement per import or re-export; `import(` (dynamic) never matches `import ... from`.
    for (const [, spec] of text.matchAll(/^(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)) {
      if (spec === undefined) continue;
      if (spec.startsWith('.')) staticImports(resolve(dirname(file), spec), seen);
      else seen.add(spec);
    }
    return seen;
  }

  const DIST = join(ROOT, 'dist');

  it('no module the CLI loads at start imports @opentelemetry or src/mcp/otel statically, and the main bundle holds none of it', () => {
    expect(existsSync(join(DIST, 'src', 'cli', 'bin.js')), 'run npm run build first').toBe(true);
    const loaded = [...staticImports(join(DIST, 'src', 'cli', 'bin.js'))];
    expect(loaded.length).toBeGreaterThan(20);
    expect(loaded.filter((m) => m.startsWith('@opentelemetry/') || m.endsWith(join('mcp', 'otel.js')))).toEqual([]);
    // Every verb is reached dynamically from the entry: the controller (up) and the gateway too.
    const everything = readdirSync(join(DIST, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && !f.endsWith(join('mcp', 'otel.js')));
    const reached = everything.flatMap((f) => [...staticImports(join(DIST, 'src', f))]);
    expect(reached.filter((m) => m.startsWith('@opentelemetry/') || m.endsWith(join('mcp', 'otel.js')))).toEqual([]);
    // The bundle every verb reads: the SDK is in dist/vendor/otel.cjs, read when src/mcp/otel is first imported
    // (strings of the SDK's own code: apiary's names for its classes are in the bundle, as property reads).
    const bundle = readFileSync(join(DIST, 'apiary.cjs'), 'latin1');
    const markers = ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'Prometheus exporter server started', 'exportTimeoutMillis must be greater than 0'];
    expect(markers.filter((m) => bundle.includes(m))).toEqual([]);
  });
});
