/**
 * One client flooding a server (64 calls always in flight, from a process of
 * its own) while another pings the same server through apiary's endpoint. The
 * server spends 5 ms of CPU on each call and works through its stdin in order,
 * as most stdio servers do: what a ping waits for is the requests queued at
 * the server ahead of it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sleep, World } from '../chaos/world.js';
import { fmtMs, percentile, type Row } from './stats.js';

const FLOODER = fileURLToPath(new URL('./flooder.js', import.meta.url));
const IN_FLIGHT = 64;
const FLOOD_MS = 4_000;

export async function benchFairness(): Promise<Row[]> {
  const world = await World.create();
  try {
    await world.writeServer({ name: 'busy', rev: 1, flags: ['--busy-list', '5'] });
    await world.startController();
    let url: string | undefined;
    for (let i = 0; i < 400 && (url = world.status('busy')?.url) === undefined; i++) await sleep(25);
    if (url === undefined) throw new Error('bench: the server never got a URL');
    const probe = new Client({ name: 'probe', version: '1' });
    const headers = await world.endpointHeaders();
    await probe.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    const pings = async (until: number, max: number): Promise<number[]> => {
      const times: number[] = [];
      while (times.length < max && Date.now() < until) {
        const started = performance.now();
        await probe.ping();
        if (Date.now() < until) times.push(performance.now() - started);
        await sleep(10);
      }
      return times;
    };
    const idle = await pings(Infinity, 50);
    const flooder = spawn(process.execPath, [FLOODER, url, String(IN_FLIGHT), String(FLOOD_MS)], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, APIARY_ENDPOINT_TOKEN: headers['Authorization']?.slice('Bearer '.length) ?? '' } });
    let out = '';
    flooder.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((resolve) => flooder.on('exit', resolve));
    const floodEnds = Date.now() + FLOOD_MS;
    await sleep(1_000);
    const during = await pings(floodEnds - 100, 1_000);
    await done;
    await probe.close();
    return [
      { measure: 'ping, server idle', result: `p50 ${fmtMs(percentile(idle, 50))} / p99 ${fmtMs(percentile(idle, 99))}` },
      {
        measure: `ping beside one client with ${IN_FLIGHT} calls in flight`,
        result: `p50 ${fmtMs(percentile(during, 50))} / p99 ${fmtMs(percentile(during, 99))}`,
        note: `${during.length} pings; the flooder made ${out.trim()} calls (server: 5 ms each); it may have 8 at the server at once`,
      },
    ];
  } finally {
    await world.dispose();
  }
}
