/**
 * `subscriptions/listen` at every endpoint apiary serves, with the SDK v2
 * client pinned to 2026-07-28 under the controller: a spec.tools edit reaches
 * a listener at a stdio server's endpoint and at an HTTP server's proxy, and a
 * suspended server reaches the aggregate's listeners, each as
 * notifications/tools/list_changed tagged with the subscription id.
 */
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { Bridge } from '../src/mcp/bridge.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { HttpEndpoint } from '../src/mcp/http-endpoint.js';
import type { JsonRpcMessage, JsonRpcRequest } from '../src/mcp/jsonrpc.js';
import { StateLayout } from '../src/state/layout.js';
import { systemClock } from '../src/util/clock.js';
import { harness, isAlive, nodeServer, tinyServer, type Harness } from './helpers/controller.js';
import { scriptedServer } from './helpers/scripted-server.js';
import { waitFor } from './helpers/wait.js';

const MODERN = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

function manifest(name: string, extra = ''): string {
  return nodeServer(name, extra.includes('transport:') ? [MODERN, '--http'] : [MODERN], extra);
}

async function ready(h: Harness, name: string): Promise<string> {
  return h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s!.url ? s!.url : undefined;
  }, 30_000);
}

/** A client pinned to 2026-07-28, listening for tool list changes; `next()` waits (bounded) for the next one and says when it came. */
async function listener(h: Harness | undefined, url: string): Promise<{ client: Client; subscription: Awaited<ReturnType<Client['listen']>>; next: () => Promise<{ meta: Record<string, unknown>; at: number }> }> {
  const token = h === undefined ? undefined : await readEndpointToken(new StateLayout(h.stateDir));
  const client = new Client({ name: 'listener', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {} } }));
  const heard: { meta: Record<string, unknown>; at: number }[] = [];
  let wake: (() => void) | undefined;
  client.setNotificationHandler('notifications/tools/list_changed', (n) => {
    heard.push({ meta: (n.params?._meta ?? {}) as Record<string, unknown>, at: performance.now() });
    wake?.();
  });
  const subscription = await client.listen({ toolsListChanged: true });
  const next = async (): Promise<{ meta: Record<string, unknown>; at: number }> => {
    if (heard.length === 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (wake = resolve)),
        new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`no tools/list_changed at ${url} within 30s`)), 30_000))),
      ]).finally(() => clearTimeout(timer));
    }
    return heard.shift()!;
  };
  return { client, subscription, next };
}

const endpoints: HttpEndpoint[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

/**
 * Waits for list_changed until the tools listed are `expected` (a change
 * made before the client listened may still be on its way: each heard one is
 * checked against the list); gives back the one after which they were.
 */
async function heardUntil(l: Awaited<ReturnType<typeof listener>>, expected: string[]): Promise<{ meta: Record<string, unknown>; at: number }> {
  for (;;) {
    const heard = await l.next();
    const names = (await l.client.listTools()).tools.map((t) => t.name);
    if (JSON.stringify(names) === JSON.stringify(expected)) return heard;
  }
}

describe('subscriptions/listen at apiary endpoints', () => {
  it("a stdio server's own tools/list_changed and a rollout's promote reach a listener at its endpoint", async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const first = scriptedServer({ tools: ['echo'] });
    bridge.attach(first.toServer, first.fromServer, 1);
    await waitFor('the server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const endpoint = new HttpEndpoint(bridge, 0);
    await endpoint.listen();
    endpoints.push(endpoint);
    const listening = await listener(undefined, endpoint.url);
    expect(listening.subscription.honoredFilter).toEqual({ toolsListChanged: true });

    first.reply({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    expect((await listening.next()).meta[SUBSCRIPTION_ID]).toBeDefined();

    const fresh = scriptedServer({ tools: ['echo', 'more'] });
    bridge.prepare(fresh.toServer, fresh.fromServer, 2);
    await waitFor('the new process ready', () => bridge.status().next?.state === 'ready', 10_000, { observe: () => bridge.status() });
    expect(bridge.promote()).toBe(true);
    expect((await listening.next()).meta[SUBSCRIPTION_ID]).toBeDefined();
    expect((await listening.client.listTools()).tools.map((t) => t.name)).toEqual(['echo', 'more']);
    // The endpoint closing ends the stream gracefully (the listen result), not by a cut connection.
    await endpoint.close();
    expect(await listening.subscription.closed).toBe('graceful');
    await listening.client.close();
    bridge.close();
  }, 30_000);

  it('a spec.tools edit reaches listeners at a stdio endpoint and at an HTTP proxy, and a suspended server reaches the aggregate', async () => {
    const h = await harness();
    await h.write('m.yaml', manifest('modern'));
    await h.write('w.yaml', manifest('web', '  transport: streamable-http\n'));
    await h.start();
    const stdioUrl = await ready(h, 'modern');
    const httpUrl = await ready(h, 'web');

    const stdio = await listener(h, stdioUrl);
    expect(stdio.subscription.honoredFilter).toEqual({ toolsListChanged: true });
    const edited = performance.now();
    await h.write('m.yaml', manifest('modern', '  tools:\n    deny: [ask]\n'));
    const heard = await heardUntil(stdio, ['echo']);
    console.info(`listen: spec.tools edit -> tools/list_changed at the stdio endpoint in ${Math.round(heard.at - edited)} ms`);
    expect(heard.meta[SUBSCRIPTION_ID]).toBeDefined();
    expect((await stdio.client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);

    const proxy = await listener(h, httpUrl);
    expect(proxy.subscription.honoredFilter).toEqual({ toolsListChanged: true });
    const denied = performance.now();
    await h.write('w.yaml', manifest('web', '  transport: streamable-http\n  tools:\n    deny: [echo]\n'));
    const fromProxy = await heardUntil(proxy, ['ask']);
    console.info(`listen: spec.tools edit -> tools/list_changed at the HTTP proxy in ${Math.round(fromProxy.at - denied)} ms`);
    expect(fromProxy.meta[SUBSCRIPTION_ID]).toBeDefined();
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['ask']);

    const aggregate = await listener(h, h.controller!.aggregateUrl!);
    expect(aggregate.subscription.honoredFilter).toEqual({ toolsListChanged: true });
    expect((await aggregate.client.listTools()).tools.map((t) => t.name)).toEqual(['modern__echo', 'web__ask']);
    const suspended = performance.now();
    await h.write('w.yaml', manifest('web', '  transport: streamable-http\n  suspend: true\n'));
    const fromAggregate = await heardUntil(aggregate, ['modern__echo']);
    console.info(`listen: suspend -> tools/list_changed at the aggregate in ${Math.round(fromAggregate.at - suspended)} ms`);
    expect(fromAggregate.meta[SUBSCRIPTION_ID]).toBeDefined();
    expect((await aggregate.client.listTools()).tools.map((t) => t.name)).toEqual(['modern__echo']);

    for (const l of [stdio, proxy, aggregate]) {
      await l.subscription.close();
      await l.client.close();
    }
  }, 90_000);

  it("a 2026-07-28 stdio server's own tools/list_changed, on the listen stream apiary opens to it, reaches listeners and 2025 sessions", async () => {
    const bridge = new Bridge({ name: 's', clock: systemClock });
    const up = scriptedServer({ modern: true, listChanged: true, tools: ['echo'] });
    bridge.attach(up.toServer, up.fromServer, 1);
    await waitFor('the server ready', () => bridge.isReady(), 10_000, { observe: () => bridge.status() });
    const listen = await waitFor('apiary listening to the server', () => up.received.find((m): m is JsonRpcRequest => 'method' in m && m.method === 'subscriptions/listen'), 10_000, { observe: () => up.received });
    expect(listen.params?.['notifications']).toEqual({ toolsListChanged: true });
    expect((listen.params?.['_meta'] as Record<string, unknown>)['io.modelcontextprotocol/protocolVersion']).toBe('2026-07-28');
    const endpoint = new HttpEndpoint(bridge, 0);
    await endpoint.listen();
    endpoints.push(endpoint);
    const listening = await listener(undefined, endpoint.url);
    const legacy: JsonRpcMessage[] = [];
    bridge.openSession((m) => legacy.push(m));

    const tag = { _meta: { [SUBSCRIPTION_ID]: listen.id } };
    up.reply({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: { toolsListChanged: true }, ...tag } });
    up.reply({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: tag });
    const heard = await listening.next();
    // The client's own subscription, not apiary's with the server.
    expect(heard.meta[SUBSCRIPTION_ID]).toBeDefined();
    expect(heard.meta[SUBSCRIPTION_ID]).not.toBe(listen.id);
    await up.flush();
    expect(legacy).toEqual([{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }]);
    await listening.subscription.close();
    await listening.client.close();
    bridge.close();
  }, 30_000);

  it("a modern HTTP server's own tools/list_changed reaches a listener at its proxy (apiary's probe listens to the server)", async () => {
    const h = await harness();
    await h.write('g.yaml', manifest('grower', '  transport: streamable-http\n').replace('"--http"]', '"--http", "--grow"]'));
    await h.start();
    const url = await ready(h, 'grower');
    const proxy = await listener(h, url);
    expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(['ask', 'echo', 'grow']);
    await proxy.client.callTool({ name: 'grow', arguments: {} });
    const heard = await heardUntil(proxy, ['ask', 'echo', 'grow', 'grown']);
    expect(heard.meta[SUBSCRIPTION_ID]).toBeDefined();
    await proxy.subscription.close();
    await proxy.client.close();
  }, 60_000);

  it("a suspended server leaves the aggregate's lists as soon as it is suspended, not once its process has stopped", async () => {
    const h = await harness();
    // Its process outlives stdin's close and SIGTERM, so its stop takes the whole grace (SIGKILL at the end).
    await h.write('slow.yaml', tinyServer('slow', h, { args: ['--ignore-stdin', '--ignore-sigterm'] }));
    await h.start();
    await ready(h, 'slow');
    const pid = (await h.status('slow'))!.pid!;
    const aggregate = await listener(h, h.controller!.aggregateUrl!);
    expect((await aggregate.client.listTools()).tools.map((t) => t.name)).toEqual(['slow__noop']);
    // The aggregate offers prompts and resources too: their listeners hear a server going as well.
    const lists = await listener(h, h.controller!.aggregateUrl!);
    const others = new Set<string>();
    let othersHeard: (() => void) | undefined;
    for (const method of ['notifications/prompts/list_changed', 'notifications/resources/list_changed'] as const) {
      lists.client.setNotificationHandler(method, (n) => {
        if (n.params?._meta?.[SUBSCRIPTION_ID] !== undefined) others.add(method);
        if (others.size === 2) othersHeard?.();
      });
    }
    const both = await lists.client.listen({ promptsListChanged: true, resourcesListChanged: true });
    expect(both.honoredFilter).toEqual({ promptsListChanged: true, resourcesListChanged: true });
    await h.write('slow.yaml', tinyServer('slow', h, { args: ['--ignore-stdin', '--ignore-sigterm'], extra: '  suspend: true\n' }));
    expect((await heardUntil(aggregate, [])).meta[SUBSCRIPTION_ID]).toBeDefined();
    // Heard while the process is still being stopped: clients stop calling it at once.
    expect(isAlive(pid)).toBe(true);
    let timer: NodeJS.Timeout | undefined;
    if (others.size < 2) {
      await Promise.race([
        new Promise<void>((resolve) => (othersHeard = resolve)),
        new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`only ${[...others].join(', ') || 'nothing'} heard within 10s`)), 10_000))),
      ]).finally(() => clearTimeout(timer));
    }
    await both.close();
    await lists.subscription.close();
    await lists.client.close();
    // And a server coming (back): its listeners hear that too.
    await h.write('slow.yaml', tinyServer('slow', h, { args: ['--ignore-stdin', '--ignore-sigterm'] }));
    await heardUntil(aggregate, ['slow__noop']);
    await aggregate.subscription.close();
    await aggregate.client.close();
  }, 60_000);
});
