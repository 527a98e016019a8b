/**
 * `subscriptions/listen` with `resourceSubscriptions` at a 2025 stdio
 * server's endpoint: apiary subscribes at the server (resources/subscribe
 * over a session of its own), the server's notifications/resources/updated
 * for those URIs reach the listener tagged with its subscription id, and the
 * listen stream's end unsubscribes. server-everything sends an update for
 * each subscribed URI when its toggle-subscriber-updates tool is called, and
 * says so in a log message when it is subscribed and unsubscribed.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../src/mcp/jsonrpc.js';
import { ResourceWatch } from '../src/mcp/resource-watch.js';
import { StateLayout } from '../src/state/layout.js';
import { harness } from './helpers/controller.js';
import { SessionTable } from './helpers/session-host.js';
import { waitFor } from './helpers/wait.js';

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const MODERN_SERVER = fileURLToPath(new URL('./fixtures/servers/modern-server.mjs', import.meta.url));
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

/** Answers every request at once and remembers it; `update(uri)` is the server's notification to every open session. */
class RecordingHost extends SessionTable {
  readonly requests: JsonRpcRequest[] = [];
  fromClient(id: string, message: JsonRpcMessage): Promise<void> {
    if (isRequest(message)) {
      this.requests.push(message);
      this.sessions.get(id)?.({ jsonrpc: '2.0', id: message.id, result: {} });
    }
    return Promise.resolve();
  }
  update(uri: string): void {
    for (const deliver of this.sessions.values()) deliver({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } });
  }
  asked(): string[] {
    return this.requests.filter((r) => r.method !== 'initialize').map((r) => `${r.method} ${String(r.params?.['uri'])}`);
  }
}

/** The watch sends once its session's introduction is answered (a promise): what it sends has gone once pending callbacks ran. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('ResourceWatch', () => {
  it('subscribes a URI once for all its listeners (once the session is introduced), publishes only watched URIs, unsubscribes at the last listener\'s end and then closes its session', async () => {
    const host = new RecordingHost();
    const published: string[] = [];
    const watch = new ResourceWatch(host, (uri) => published.push(uri));
    const first = watch.watch(['a://1', 'a://2', 'a://1']);
    const second = watch.watch(['a://1']);
    await settled();
    expect(host.asked()).toEqual(['resources/subscribe a://1', 'resources/subscribe a://2']);
    host.update('a://1');
    host.update('a://other');
    expect(published).toEqual(['a://1']);
    first();
    first();
    await settled();
    expect(host.asked()).toEqual(['resources/subscribe a://1', 'resources/subscribe a://2', 'resources/unsubscribe a://2']);
    expect(host.sessions.size).toBe(1);
    second();
    await settled();
    expect(host.asked().at(-1)).toBe('resources/unsubscribe a://1');
    expect(host.sessions.size).toBe(0);
  });
});

/** A stdio server `node <args>` under the controller, Ready: its endpoint, and the headers that carry apiary's token. */
async function served(name: string, args: string[]): Promise<{ url: string; headers: Record<string, string> }> {
  const h = await harness();
  await h.write(`${name}.yaml`, `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n  command: node\n  args: ${JSON.stringify(args)}\n`);
  await h.start();
  const url = await h.waitFor(`${name} Ready`, async () => {
    const s = await h.status(name);
    return findCondition(s?.conditions, 'Ready')?.status === 'True' && s?.url ? s.url : undefined;
  }, 20_000);
  return { url, headers: { Authorization: `Bearer ${(await readEndpointToken(new StateLayout(h.stateDir)))!}` } };
}

/** A client pinned to 2026-07-28 listening for updates of `uri`: the URIs it heard of, in order. */
async function listening(url: string, headers: Record<string, string>, uri: string): Promise<{ modern: ModernClient; updates: string[]; subscription: Awaited<ReturnType<ModernClient['listen']>> }> {
  const modern = new ModernClient({ name: 'listener', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await modern.connect(new ModernTransport(new URL(url), { requestInit: { headers } }));
  const updates: string[] = [];
  modern.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params.uri));
  return { modern, updates, subscription: await modern.listen({ resourceSubscriptions: [uri] }) };
}

describe('resource updates on a 2026-07-28 listen stream', () => {
  it("a listener's resourceSubscriptions are subscribed at a 2025 stdio server, its updates reach the listener tagged, and the stream's end unsubscribes", async () => {
    const { url, headers } = await served('everything', [EVERYTHING, 'stdio']);

    // A 2025 client hears the server's log messages (every session at the bridge does): what it was asked to (un)subscribe.
    const legacy = new Client({ name: 'legacy', version: '1' });
    const logged: string[] = [];
    legacy.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logged.push(String(n.params.data)));
    await legacy.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    const uri = (await legacy.listResources()).resources[0]!.uri;

    const modern = new ModernClient({ name: 'listener', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await modern.connect(new ModernTransport(new URL(url), { requestInit: { headers } }));
    const updates: Array<{ uri: string; meta: Record<string, unknown> }> = [];
    modern.setNotificationHandler('notifications/resources/updated', (n) => void updates.push({ uri: n.params.uri, meta: (n.params._meta ?? {}) as Record<string, unknown> }));
    const subscription = await modern.listen({ resourceSubscriptions: [uri] });
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: [uri] });
    await waitFor('the server subscribed', () => logged.some((l) => l.includes(`Subscribe Resource request for URI: ${uri}`)), 10_000, { observe: () => logged });

    await legacy.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    const update = await waitFor('the update on the listen stream', () => updates[0], 10_000, { observe: () => updates });
    expect(update.uri).toBe(uri);
    // Tagged with the listen request's id, which the SDK client chose.
    expect(['string', 'number']).toContain(typeof update.meta[SUBSCRIPTION_ID]);

    await subscription.close();
    await waitFor('the server unsubscribed', () => logged.some((l) => l.includes(`Unsubscribe Resource request: ${uri}`)), 10_000, { observe: () => logged });
    await legacy.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await modern.close();
    await legacy.close();
  });
});

describe('resource subscriptions in front of a 2026-07-28 stdio server', () => {
  it("a 2025 client's resources/subscribe and a modern listener's resourceSubscriptions are made on a listen stream apiary opens to the server; each update reaches only those subscribed", async () => {
    const { url, headers } = await served('notes', [MODERN_SERVER, '--resources']);
    const uri = 'note://one';

    const subscriber = new Client({ name: 'subscriber', version: '1' });
    const bystander = new Client({ name: 'bystander', version: '1' });
    const heard = { subscriber: 0, bystander: 0 };
    subscriber.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void (n.params.uri === uri && heard.subscriber++));
    bystander.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void heard.bystander++);
    for (const c of [subscriber, bystander]) await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    await subscriber.subscribeResource({ uri });

    const { modern, updates, subscription } = await listening(url, headers, uri);

    await waitFor('the update at both subscribers', async () => {
      await bystander.callTool({ name: 'touch', arguments: {} });
      return heard.subscriber > 0 && updates.length > 0;
    }, 10_000, { observe: () => ({ heard, updates }), intervalMs: 200 });
    expect(updates[0]).toBe(uri);
    expect(heard.bystander).toBe(0);
    await subscription.close();
    await subscriber.unsubscribeResource({ uri });
    await modern.close();
    for (const c of [subscriber, bystander]) await c.close();
  });
});

describe('resource subscriptions at the aggregate', () => {
  it("a 2025 client's resources/subscribe and a modern listener's resourceSubscriptions of apiary://<server>/<uri> reach the member; its updates come back under that URI to those subscribed only", async () => {
    const h = await harness();
    await h.write('e.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: everything\nspec:\n  command: node\n  args: ${JSON.stringify([EVERYTHING, 'stdio'])}\n`);
    const controller = await h.start();
    await h.waitFor('everything Ready', async () => findCondition((await h.status('everything'))?.conditions, 'Ready')?.status === 'True', 20_000);
    const url = controller.aggregateUrl!;
    const headers = { Authorization: `Bearer ${(await readEndpointToken(new StateLayout(h.stateDir)))!}` };

    const subscriber = new Client({ name: 'subscriber', version: '1' });
    const bystander = new Client({ name: 'bystander', version: '1' });
    const heard: Record<'subscriber' | 'bystander', string[]> = { subscriber: [], bystander: [] };
    subscriber.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.subscriber.push(n.params.uri));
    bystander.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.bystander.push(n.params.uri));
    for (const c of [subscriber, bystander]) await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    expect(subscriber.getServerCapabilities()?.resources?.subscribe).toBe(true);
    const uri = (await subscriber.listResources()).resources.find((r) => r.uri.startsWith('apiary://everything/'))!.uri;
    await subscriber.subscribeResource({ uri });

    const { modern, updates, subscription } = await listening(url, headers, uri);
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: [uri] });

    await bystander.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
    await waitFor('the update at both subscribers', () => heard.subscriber.length > 0 && updates.length > 0, 10_000, { observe: () => ({ heard, updates }) });
    expect(heard.subscriber[0]).toBe(uri);
    expect(updates[0]).toBe(uri);
    expect(heard.bystander).toEqual([]);
    await subscription.close();
    await modern.close();
    for (const c of [subscriber, bystander]) await c.close();
  });
});

describe('resource subscriptions of several clients at one 2025 stdio server', () => {
  it("one client's unsubscribe leaves another's subscription at the server (the process has one session for all), and updates go to the subscribed only", async () => {
    const { url, headers } = await served('everything', [EVERYTHING, 'stdio']);
    const clients = { a: new Client({ name: 'a', version: '1' }), b: new Client({ name: 'b', version: '1' }), c: new Client({ name: 'c', version: '1' }) };
    const heard: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const [name, client] of Object.entries(clients)) {
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard[name]!.push(n.params.uri));
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    }
    const uri = (await clients.a.listResources()).resources[0]!.uri;
    await clients.a.subscribeResource({ uri });
    await clients.b.subscribeResource({ uri });
    await clients.a.unsubscribeResource({ uri });
    await clients.c.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await waitFor("b hears the update after a's unsubscribe", () => heard['b']!.length > 0, 10_000, { observe: () => heard });
    expect(heard['b']![0]).toBe(uri);
    expect(heard['c']).toEqual([]);
    for (const client of Object.values(clients)) await client.close();
  });
});
