/**
 * What keeping secrets out of responses costs (issue 28 item 2): the matcher
 * in process (1 KiB tools/call results, 100 secrets: one combined RegExp, as
 * built, against an Aho-Corasick automaton), and end to end: calls/s through a stdio
 * server's endpoint with 100 secrets in its environment against the same
 * server with none, two apiary instances measured in turns; and the same for
 * an HTTP server behind apiary's proxy (a 2025 server answering JSON, its
 * calls passed through: with secrets each answer is parsed and scanned,
 * without it is piped as it came).
 */
import { spawn } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactValue, SecretRedactor, secretForms, type NamedSecret, type SecretMatch } from '../src/api/secret-redactor.js';
import { AhoCorasick } from './aho-corasick.js';
import { createKeyFile } from '../src/crypto/keys.js';
import { authorizationHeader, readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { EgressRedaction } from '../src/mcp/egress-redaction.js';
import { HttpProxy } from '../src/mcp/http-proxy.js';
import { systemClock } from '../src/util/clock.js';
import { inTurns, leanClient, leanModernClient, ROOT, roundShare, stop, type Result } from './mcp.js';
import { fmtMs, now, type Row } from './stats.js';

const LEAKY = join(ROOT, 'test', 'fixtures', 'servers', 'leaky-server.mjs');
const LEAKY_HTTP = join(ROOT, 'test', 'fixtures', 'servers', 'leaky-http-server.mjs');
const SECRETS = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function secrets(): NamedSecret[] {
  return Array.from({ length: SECRETS }, (_, i) => ({ secret: 'bench', key: `k${i}`, value: randomBytes(24).toString('base64url') }));
}

/** A tools/call answer with 1 KiB of text, as the leaky server's `kib` form sends it. */
function answer(): unknown {
  return { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(18).slice(0, 1024) }] } };
}

/** The fastest of `rounds` rounds of each, taken in turns (the machine is shared: the least disturbed round is the code's own cost), in ms per call. */
function perCall(n: number, fns: readonly (() => void)[], rounds = 7): number[] {
  const best = fns.map(() => Infinity);
  for (const fn of fns) for (let i = 0; i < 2000; i++) fn();
  for (let round = 0; round < rounds; round++) {
    fns.forEach((fn, i) => {
      const t = now();
      for (let k = 0; k < n; k++) fn();
      best[i] = Math.min(best[i]!, (now() - t) / n);
    });
  }
  return best;
}

/** The matcher apiary used before the FormMatcher: one RegExp of every form, longest first, each search resumed a character after the last find. */
function regExpOf(list: readonly NamedSecret[]): (text: string) => number {
  const forms = [...new Set(list.flatMap((s) => secretForms(s.value)))].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => {
    let found = 0;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      found++;
      pattern.lastIndex = m.index + 1;
    }
    return found;
  };
}

export function inProcess(): { rows: Row[]; walkedMs: number } {
  const list = secrets();
  let t = now();
  const redactor = SecretRedactor.build(list)!;
  const buildMs = now() - t;
  const message = answer();
  const text = JSON.stringify(message);
  t = now();
  const regExp = regExpOf(list);
  const reBuild = now() - t;
  t = now();
  const automaton = new AhoCorasick(list);
  const acBuild = now() - t;
  // The case that reads the most blocks: 64 KiB of random base64 (an image in a result) shares the forms' alphabet.
  const image = randomBytes(48 * 1024).toString('base64');
  const [imageFm, imageRe] = perCall(100, [() => redactor.find(image), () => regExp(image)], 5) as [number, number];
  const [walked, fm, re, ac, rewritten, checked] = perCall(5000, [
    () => redactValue(redactor, message, [] as SecretMatch[]),
    () => redactor.find(text),
    () => regExp(text),
    () => automaton.find(text),
    // What the HTTP proxy did more for each answer when it redacted, before it looked at the text first (with this matcher).
    () => JSON.stringify(redactValue(redactor, JSON.parse(text) as unknown, [] as SecretMatch[])),
    // What it does now for an answer that holds no value: the text looked at, passed on as it came.
    () => redactor.mayHoldJson(text),
  ]) as [number, number, number, number, number, number];
  const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs per answer`;
  const rows: Row[] = [
    { measure: `matcher: a 1 KiB tools/call answer, ${SECRETS} secrets (${redactor.size} forms), FormMatcher (Wu-Manber, as built)`, result: us(fm), note: `built in ${fmtMs(buildMs)}, once per secret set; ${us(walked)} with the walk over the message; fastest of 7 rounds taken in turns` },
    { measure: 'matcher: the same, one RegExp of every form (as built before)', result: us(re), note: `${(re / fm).toFixed(1)}x the FormMatcher's time; built in ${fmtMs(reBuild)}` },
    { measure: 'matcher: 64 KiB of random base64 (an image), FormMatcher against the RegExp', result: `${(imageFm * 1000).toFixed(0)} against ${(imageRe * 1000).toFixed(0)} µs`, note: `the RegExp ${(imageRe / imageFm).toFixed(0)}x slower; fastest of 5 rounds` },
    { measure: 'matcher: the same, Aho-Corasick (bench/aho-corasick.ts)', result: us(ac), note: `${(ac / fm).toFixed(1)}x the FormMatcher's time; built in ${fmtMs(acBuild)} and a 256 KiB table per server` },
    { measure: "the HTTP proxy's look at the same answer as JSON text, holding no value (passed on as it came)", result: us(checked), note: `before, and still for an answer that may hold one: parsed, walked and scanned, written again, ${us(rewritten)}` },
  ];
  return { rows, walkedMs: walked };
}

/** `http`: the leaky server over HTTP (2025, JSON answers) behind apiary's proxy, instead of over stdio. */
async function apiary(withSecrets: readonly NamedSecret[], http = false): Promise<{ url: string; headers: Record<string, string>; close(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-redact-'));
  const dir = join(root, 'manifests');
  await mkdir(dir);
  await createKeyFile(join(root, 'key'));
  const env = withSecrets.map((s) => `    - name: ${s.key.toUpperCase()}\n      valueFrom: { secretKeyRef: { name: bench, key: ${s.key} } }\n`).join('');
  if (withSecrets.length > 0) {
    await writeFile(join(dir, 'secret.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata: { name: bench }\nstringData:\n${withSecrets.map((s) => `  ${s.key}: ${JSON.stringify(s.value)}\n`).join('')}`);
  }
  const args = http ? [LEAKY_HTTP, '--legacy', '--json'] : [LEAKY];
  const transport = http ? '  transport: streamable-http\n' : '';
  await writeFile(join(dir, 'leaky.yaml'), `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: leaky }\nspec:\n  command: ${JSON.stringify(process.execPath)}\n  args: ${JSON.stringify(args)}\n${transport}${env ? `  env:\n${env}` : ''}`);
  const stateDir = join(root, 'state');
  const up = spawn(join(ROOT, 'bin', 'apiary'), ['up', '--dir', dir, '--state-dir', stateDir], { env: { ...process.env, APIARY_KEY_FILE: join(root, 'key') }, stdio: 'ignore' });
  const store = new StatusStore(new StateLayout(stateDir));
  let url: string | undefined;
  for (let i = 0; i < 300 && url === undefined; i++) {
    const s = (await store.read('MCPServer', 'leaky'))?.status as { url?: string; conditions?: { type: string; status: string }[] } | undefined;
    if (s?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) url = s.url;
    else await sleep(100);
  }
  const close = async (): Promise<void> => {
    await stop(up);
    await rm(root, { recursive: true, force: true });
  };
  if (url === undefined) {
    await close();
    throw new Error('bench: apiary never became Ready');
  }
  const token = await readEndpointToken(new StateLayout(stateDir));
  return { url, headers: token === undefined ? {} : authorizationHeader(token), close };
}

/** The leaky server's 1 KiB calls at two apiary instances in turns, one with no secrets and one with SECRETS: the two results, and how they differ. */
async function againstNone(http: boolean, client: typeof leanClient, calls: number): Promise<{ none: Result; hundred: Result; cost: string }> {
  const plain = await apiary([], http);
  const guarded = await apiary(secrets(), http);
  try {
    const [none, hundred] = await inTurns([() => client(plain.url, plain.headers), () => client(guarded.url, guarded.headers)], calls, 16, (c) => c.callTool({ name: 'leak', arguments: { form: 'kib' } }));
    const p50 = hundred!.p50 - none!.p50;
    return {
      none: none!,
      hundred: hundred!,
      cost: `${(100 * (hundred!.rps / none!.rps - 1)).toFixed(1)}% calls/s (median of the 16 rounds' ratios: ${roundShare(hundred!, none!)}) and ${p50 >= 0 ? '+' : '-'}${fmtMs(Math.abs(p50))} p50 against no secrets`,
    };
  } finally {
    await plain.close();
    await guarded.close();
  }
}

const rate = (r: Result): string => `p50 ${fmtMs(r.p50)}, ${r.rps.toFixed(0)} calls/s`;

async function endToEnd(walkedMs: number): Promise<Row[]> {
  const { none, hundred, cost } = await againstNone(false, leanModernClient, 16_000);
  return [
    { measure: 'tools/call, 1 KiB answer, lean 2026-07-28 client: no secrets', result: rate(none), note: 'two apiary instances measured in turns' },
    { measure: `tools/call, 1 KiB answer, lean 2026-07-28 client: ${SECRETS} secrets in the server's env`, result: rate(hundred), target: '<= 5% fewer calls/s', note: `${cost}, end to end (two shared cores: noise of several % either way); in process, the walk and scan of each answer is ${((100 * walkedMs * none.rps) / 1000).toFixed(1)}% of a call's time here` },
  ];
}

/** An HTTP server's calls through apiary's proxy, passed through: with secrets, each JSON answer is read whole and looked at (parsed only where a value may be). */
async function throughProxy(): Promise<Row[]> {
  const { none, hundred, cost } = await againstNone(true, leanClient, 8_000);
  return [
    { measure: 'HTTP server (2025, JSON answers) through the proxy, tools/call, 1 KiB answer, lean 2025 client: no secrets', result: rate(none), note: 'answers piped as they come; two apiary instances measured in turns' },
    { measure: `the same with ${SECRETS} secrets in the server's env`, result: rate(hundred), target: '<= 5% fewer calls/s', note: `${cost}: each answer read whole and looked at, parsed and written again only where a value may be` },
  ];
}

/** A keep-alive caller of one tools/call after another at a proxy's port. */
function proxyCaller(port: number): { call(): Promise<void>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let id = 0;
  const call = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', agent, headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'kib', arguments: {} } }));
    });
  return { call, close: () => agent.destroy() };
}

/**
 * The proxy alone, in process: an upstream that answers every call at once
 * with 1 KiB, behind two HttpProxy instances (no secrets; SECRETS), called
 * in turns. What redaction adds to the proxy's own share of a call.
 */
async function proxyAlone(): Promise<Row[]> {
  const body = JSON.stringify(answer());
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }).end(body));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const redaction = new EgressRedaction(systemClock, () => undefined);
  redaction.set('guarded', secrets());
  const proxies = [new HttpProxy(0, port, { name: 'plain' }), new HttpProxy(0, port, { name: 'guarded', redaction: redaction.forServer('guarded') })];
  await Promise.all(proxies.map((p) => p.listen()));
  const callers = proxies.map((p) => proxyCaller(p.port));
  const best = [Infinity, Infinity];
  try {
    for (let round = 0; round < 8; round++) {
      for (const [i, caller] of callers.entries()) {
        const t = now();
        for (let k = 0; k < 2000; k++) await caller.call();
        best[i] = Math.min(best[i]!, (now() - t) / 2000);
      }
    }
  } finally {
    for (const caller of callers) caller.close();
    await Promise.all(proxies.map((p) => p.close()));
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
  const [plain, guarded] = best as [number, number];
  return [
    {
      measure: `the proxy alone (in process, an upstream answering at once): a passed-through tools/call, 1 KiB answer, no secrets against ${SECRETS}`,
      result: `${(plain * 1000).toFixed(0)} against ${(guarded * 1000).toFixed(0)} µs per call`,
      note: `+${((guarded - plain) * 1000).toFixed(0)} µs (${(100 * (guarded / plain - 1)).toFixed(0)}% of the proxy's own share; a real server's call adds its own time to both); fastest of 8 rounds of 2000 taken in turns`,
    },
  ];
}

/** The stdio server's rows alone (end to end), for before/after. */
export async function benchRedactStdio(): Promise<Row[]> {
  return endToEnd(inProcess().walkedMs);
}

/** The HTTP proxy's rows alone: in process and end to end. */
export async function benchRedactHttp(): Promise<Row[]> {
  return [...(await proxyAlone()), ...(await throughProxy())];
}

export async function benchRedact(): Promise<Row[]> {
  const matcher = inProcess();
  return [...matcher.rows, ...(await proxyAlone()), ...(await endToEnd(matcher.walkedMs)), ...(await throughProxy())];
}
