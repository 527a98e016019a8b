/**
 * What telemetry costs per request, in CPU (the process's): the same loop of
 * JSON-RPC request parsing and response serialising, with the Telemetry of
 * src/api/gate.ts as an endpoint drives it (startRequest with the request's
 * _meta.traceparent, upstreamMeta, end). Once with NO_TELEMETRY, once with
 * metrics only (a Gateway with prometheus only: no span is made), once with
 * spans and metrics both exported over OTLP/HTTP to a collector in another
 * process (so its CPU is not counted), flushed at the end.
 */
import { spawn } from 'node:child_process';
import { NO_TELEMETRY, type Telemetry } from '../src/api/gate.js';
import { openTelemetry } from '../src/mcp/otel.js';
import type { Row } from './stats.js';

/** apiary's best calls/s through one endpoint (README, 4 lean clients): ≈197 µs of controller time per call. */
const CALL_US = 1e6 / 5072;
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** A collector that answers every OTLP request 200 and counts the spans it was sent. */
const COLLECTOR = `
const { createServer } = require('node:http');
let spans = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/v1/traces') for (const r of JSON.parse(Buffer.concat(chunks)).resourceSpans) for (const s of r.scopeSpans) spans += s.spans.length;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', () => process.send({ spans }));
`;

export async function benchTelemetry(n = 20_000): Promise<Row[]> {
  const collector = spawn(process.execPath, ['-e', COLLECTOR], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { port } = await new Promise<{ port: number }>((resolve) => collector.once('message', (m) => resolve(m as { port: number })));
    const spansReceived = (): Promise<number> => {
      collector.send('count');
      return new Promise((resolve) => collector.once('message', (m) => resolve((m as { spans: number }).spans)));
    };
    await loop(2000, NO_TELEMETRY);
    const none = await loop(n, NO_TELEMETRY);
    const metricsOnly = await openTelemetry({ prometheus: { port: 0 } });
    await loop(2000, metricsOnly);
    const local = await loop(n, metricsOnly, () => metricsOnly.close());
    const exporting = await openTelemetry({ otlp: { endpoint: `http://127.0.0.1:${port}`, intervalSeconds: 60 } });
    await loop(2000, exporting);
    const otlp = await loop(n, exporting, () => exporting.close());
    const sent = await spansReceived();
    const share = (us: number): string => `${((100 * (us - none)) / CALL_US).toFixed(1)}% of apiary's ≈${CALL_US.toFixed(0)} µs per call at 5,072 calls/s`;
    return [
      { measure: 'a tools/call handled in the loop, NO_TELEMETRY', result: `${none.toFixed(2)} µs CPU`, note: `mean of ${n}: JSON.parse of the request, JSON.stringify of the answer, the no-op span` },
      { measure: 'metrics only (a Prometheus reader; with no span exporter no span is made)', result: `${local.toFixed(2)} µs CPU`, note: `${(local / none).toFixed(2)}x the loop without; +${(local - none).toFixed(2)} µs, ${share(local)}` },
      { measure: 'span + metrics, both exported over OTLP/HTTP (JSON)', result: `${otlp.toFixed(2)} µs CPU`, note: `${(otlp / none).toFixed(2)}x; +${(otlp - none).toFixed(2)} µs, ${share(otlp)}; ${sent} of ${n + 2000} spans reached the collector` },
    ];
  } finally {
    collector.kill();
  }
}

/** CPU µs per iteration; every 100 iterations the loop yields, as a server between requests, so the batch exporter runs. */
async function loop(n: number, telemetry: Telemetry, end?: () => Promise<void>): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const text = `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world ${i}"},"_meta":{"traceparent":"${TRACEPARENT}"}}}`;
    const request = JSON.parse(text) as { id: number; method: string; params: { name: string; _meta: Record<string, unknown> } };
    const span = telemetry.startRequest({ method: request.method, server: 'mini', name: request.params.name, requestId: request.id, protocolVersion: '2025-11-25', meta: request.params._meta });
    const upstream = JSON.stringify({ ...request, params: { ...request.params, _meta: { ...request.params._meta, ...span.upstreamMeta() } } });
    const answer = JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { content: [{ type: 'text', text: `hello world ${i}` }] } });
    span.end(upstream.length > 0 && answer.length > 0 ? 'ok' : 'error');
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  await end?.();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / n;
}
