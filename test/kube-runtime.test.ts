/**
 * The Kubernetes runtime's contract: `up --runtime kubernetes` turns the
 * manifest directory into Deployments, Services and Secrets by server-side
 * apply, reads status back through informers, keeps the missing-secret rules
 * in the kubelet's terms, and prunes only what it made.
 *
 * By default it runs against the stateful fake API server on 127.0.0.1 (no
 * real one can run on these machines). With APIARY_K8S_LIVE=1 and KUBECONFIG
 * the same contract runs against that cluster, in a namespace made for the
 * run and deleted after it; the tests that need the fake's hands (ending
 * watches, compacting history, taking the API server away) are skipped there.
 */
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Deployment, type V1Secret } from '@kubernetes/client-node';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { findCondition } from '../src/api/status.js';
import { systemClock } from '../src/util/clock.js';
import { KubeCluster } from '../src/kubernetes/cluster.js';
import { FakeApiServer, type FakeApiServerOptions } from './helpers/fake-apiserver.js';
import { BIN, ROOT, runCli } from './helpers/cli.js';
import { harness, secretYaml, type Harness } from './helpers/controller.js';
import { startConsole } from './helpers/console.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { readEndpointToken } from '../src/mcp/endpoint-token.js';
import { StateLayout } from '../src/state/layout.js';
import { needsKubectl } from './helpers/tools.js';

const LIVE = process.env['APIARY_K8S_LIVE'] === '1';
if (LIVE && process.env['KUBECONFIG'] === undefined) throw new Error('APIARY_K8S_LIVE=1 needs KUBECONFIG pointing at the cluster to test against');
if (!LIVE) console.info('kube-runtime: against the fake API server (set APIARY_K8S_LIVE=1 and KUBECONFIG to run the contract against a real cluster)');

/** What each test drives: the cluster apiary is pointed at, and a client of the test's own to look at it. */
interface Target {
  namespace: string;
  kubeconfigFile: string;
  fake?: FakeApiServer;
  objects: KubernetesObjectApi;
  core: CoreV1Api;
  cleanup(): Promise<void>;
}

const targets: Target[] = [];
afterEach(async () => {
  await Promise.allSettled(targets.splice(0).map((t) => t.cleanup()));
});

/** `cwd`: where the fake's kubelet runs commands from (relative paths in args resolve there); `fakeOptions`: more of the fake's. */
async function target(h: Harness, cwd = ROOT, fakeOptions: Omit<FakeApiServerOptions, 'runContainers'> = {}): Promise<Target> {
  const config = new KubeConfig();
  let t: Target;
  if (LIVE) {
    config.loadFromFile(process.env['KUBECONFIG']!);
    const namespace = `apiary-test-${Date.now().toString(36)}`;
    const core = config.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    t = { namespace, kubeconfigFile: process.env['KUBECONFIG']!, objects: KubernetesObjectApi.makeApiClient(config), core, cleanup: async () => void (await core.deleteNamespace({ name: namespace })) };
  } else {
    const fake = new FakeApiServer({ ...fakeOptions, runContainers: { cwd } });
    await fake.listen();
    const kubeconfigFile = join(h.stateDir, '..', 'kubeconfig');
    await writeFile(kubeconfigFile, fake.kubeconfig('apiary-test'));
    config.loadFromString(fake.kubeconfig('apiary-test'));
    t = { namespace: 'apiary-test', kubeconfigFile, fake, objects: KubernetesObjectApi.makeApiClient(config), core: config.makeApiClient(CoreV1Api), cleanup: () => fake.shutdown() };
  }
  targets.push(t);
  return t;
}

/**
 * Real MCP servers. On the fake, its kubelet runs the container's command on
 * this machine from the repository root (the image is not pulled); on a live
 * cluster the image fetches server-everything with npx.
 */
const EVERYTHING_VERSION = '2026.8.31';
function server(name: string, options: { secret?: string; transport?: string; edit?: string } = {}): string {
  const http = options.transport !== undefined && options.transport !== 'stdio';
  const [command, args] = LIVE
    ? ['npx', ['-y', `@modelcontextprotocol/server-everything@${EVERYTHING_VERSION}`, ...(http ? ['streamableHttp'] : [])]]
    : http ? ['node', ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'streamableHttp']] : ['node', ['examples/hello-server.mjs']];
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: ${name}
spec:
  image: docker.io/library/node:22-alpine
  command: ${command}
  args: ${JSON.stringify(args)}
  transport: ${options.transport ?? 'stdio'}
${http ? '  strategy: { type: Recreate }\n' : ''}  env:
    - name: GREETING
      value: ${options.edit ?? 'Hello'}
${options.secret !== undefined ? `    - name: HELLO_TOKEN\n      valueFrom:\n        secretKeyRef: { name: ${options.secret}, key: token }\n` : ''}`;
}

/** An MCP client of apiary's endpoint for a server, with the state directory's token. */
async function connectTo(h: Harness, url: string): Promise<Client> {
  const token = await readEndpointToken(new StateLayout(h.stateDir));
  const client = new Client({ name: 'kube-runtime-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

async function read<T extends KubernetesObject>(t: Target, apiVersion: string, kind: string, name: string): Promise<T | undefined> {
  try {
    return (await t.objects.read({ apiVersion, kind, metadata: { name, namespace: t.namespace } })) as T;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function podOf(t: Target, name: string): Promise<string | undefined> {
  const pods = await t.core.listNamespacedPod({ namespace: t.namespace, labelSelector: `apiary.dev/name=${name}` });
  return pods.items.find((p) => p.metadata?.deletionTimestamp === undefined)?.metadata?.name;
}

async function startOn(h: Harness, t: Target): Promise<KubeCluster> {
  const cluster = KubeCluster.load({ kubeconfig: t.kubeconfigFile, namespace: t.namespace }, systemClock);
  await h.start({}, { cluster });
  return cluster;
}

const ready = (h: Harness, name: string) => async () => {
  const s = await h.status(name);
  return s?.phase === 'Running' && findCondition(s.conditions, 'Ready')?.status === 'True' && s;
};

const timeout = LIVE ? 180_000 : 20_000;

/** The fake with one stdio server, a, applied and Ready. */
async function oneReadyServer(): Promise<{ h: Harness; t: Target; fake: FakeApiServer }> {
  const h = await harness();
  const t = await target(h);
  await h.write('a.yaml', server('a'));
  await startOn(h, t);
  await h.waitFor('a Ready', ready(h, 'a'), timeout);
  return { h, t, fake: t.fake! };
}

describe(`Kubernetes runtime (${LIVE ? 'live cluster' : 'fake API server'})`, () => {
  it('applies Deployments, a Service and the Secret by server-side apply as "apiary"; status comes from the kubelet', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('creds.yaml', secretYaml('creds', { token: 's3cret-value' }));
    await h.write('a.yaml', server('a', { secret: 'creds' }));
    await h.write('web.yaml', server('web', { transport: 'streamable-http' }));
    await startOn(h, t);
    const a = await h.waitFor('a Ready', ready(h, 'a'), timeout);
    await h.waitFor('web Ready', ready(h, 'web'), timeout);
    expect(findCondition(a.conditions, 'Ready')?.reason).toBe('Initialized');
    expect(findCondition(a.conditions, 'SecretsResolved')?.status).toBe('True');
    expect(a.pod).toMatch(new RegExp(`^${t.namespace}/a-`));
    // Reached as a local server is: apiary's endpoint, attached to the container's stdin and stdout.
    const client = await connectTo(h, a.url!);
    const greeting = await client.callTool({ name: 'greet', arguments: { name: 'cluster' } });
    expect(greeting.content).toEqual([{ type: 'text', text: 'Hello, cluster!' }]);
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain(createHash('sha256').update('s3cret-value').digest('hex').slice(0, 12));
    // A secret value in an answer is kept from the client as for a local server (here the tool echoes it back).
    const echoed = await client.callTool({ name: 'greet', arguments: { name: 's3cret-value' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'Hello, [redacted: secret creds/token]!' }]);
    await client.close();
    // And an HTTP server through the port-forward apiary keeps, behind its proxy.
    const web = (await h.status('web'))!;
    const webClient = await connectTo(h, web.url!);
    const echo = await webClient.callTool({ name: 'echo', arguments: { message: 'through the port-forward' } });
    expect(JSON.stringify(echo.content)).toContain('through the port-forward');
    await webClient.close();
    // The console's API reads it as it reads a local server.
    const consoleApi = await startConsole(h);
    const fromConsole = (await consoleApi.request('GET', '/api/v1/mcpservers/a')).json<{ status: { phase: string; pod?: string; url?: string } }>();
    expect(fromConsole.status).toMatchObject({ phase: 'Running', pod: a.pod, url: a.url });
    // The aggregate endpoint has both, as it has local servers.
    const all = await connectTo(h, h.controller!.aggregateUrl!);
    const names = (await all.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(expect.arrayContaining(['a__greet', 'web__echo']));
    await all.close();

    const deployment = await read<V1Deployment>(t, 'apps/v1', 'Deployment', 'a');
    expect(deployment?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'apiary', 'apiary.dev/name': 'a', 'apiary.dev/kind': 'mcpserver' });
    expect(deployment?.metadata?.managedFields?.some((f) => f.manager === 'apiary' && f.operation === 'Apply')).toBe(true);
    expect(deployment?.spec?.template.spec?.containers[0]?.env).toContainEqual({ name: 'HELLO_TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } });
    const secret = await read<V1Secret>(t, 'v1', 'Secret', 'creds');
    expect(Buffer.from(secret!.data!['token']!, 'base64').toString()).toBe('s3cret-value');
    expect(secret?.metadata?.managedFields?.some((f) => f.manager === 'apiary')).toBe(true);
    expect(await read(t, 'v1', 'Service', 'web')).toBeDefined();
    expect(await read(t, 'v1', 'Service', 'a')).toBeUndefined();
    // The value went to the API server and nowhere else: not in status, events or logs.
    expect(JSON.stringify((await h.view()).objects.map((o) => o.record))).not.toContain('s3cret-value');
    expect(JSON.stringify(h.logs)).not.toContain('s3cret-value');
    const events = (await h.server('a'))?.record?.events ?? [];
    expect(events.map((e) => `${e.reason}: ${e.message}`)).toContainEqual(expect.stringContaining(`Applied: Deployment ${t.namespace}/a applied (generation 1)`));
  }, timeout * 2);

  it('a deleted secret: the pod keeps running; restarted, it is Stuck naming the secret; the secret back, it runs again by itself', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('creds.yaml', secretYaml('creds', { token: 'one' }));
    await h.write('a.yaml', server('a', { secret: 'creds' }));
    await startOn(h, t);
    await h.waitFor('a Ready', ready(h, 'a'), timeout);
    const first = await podOf(t, 'a');

    await rm(join(h.dir, 'creds.yaml'));
    await h.waitFor('the cluster Secret deleted', async () => (await read(t, 'v1', 'Secret', 'creds')) === undefined, timeout);
    const kept = await h.waitFor('SecretsResolved False while running', async () => {
      const s = await h.status('a');
      return s?.phase === 'Running' && findCondition(s.conditions, 'SecretsResolved')?.status === 'False' && s;
    }, timeout);
    expect(kept.message).toContain('keeps running');
    expect(await podOf(t, 'a')).toBe(first);

    // The pod restarts (a node drain, an eviction): the kubelet cannot configure the new one.
    await t.core.deleteNamespacedPod({ name: first!, namespace: t.namespace });
    const stuck = await h.waitFor('Stuck', async () => {
      const s = await h.status('a');
      return s?.phase === 'Stuck' && s;
    }, timeout);
    expect(findCondition(stuck.conditions, 'Ready')?.reason).toBe('SecretNotFound');
    expect(findCondition(stuck.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
    expect(findCondition(stuck.conditions, 'Ready')?.message).toContain('secret "creds" not found');

    await h.write('creds.yaml', secretYaml('creds', { token: 'one' }));
    const back = await h.waitFor('Running again', ready(h, 'a'), timeout);
    expect(findCondition(back.conditions, 'SecretsResolved')?.status).toBe('True');
  }, timeout * 3);

  it('a missing key is Stuck with SecretKeyNotFound; a new value rolls the pod', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('creds.yaml', secretYaml('creds', { other: 'x' }));
    await h.write('a.yaml', server('a', { secret: 'creds' }));
    await startOn(h, t);
    // A server the cluster has never run is applied even so: what status shows is the kubelet's word.
    const stuck = await h.waitFor('Stuck on the key', async () => {
      const s = await h.status('a');
      return s?.phase === 'Stuck' && s;
    }, timeout);
    expect(findCondition(stuck.conditions, 'Ready')?.reason).toBe('SecretKeyNotFound');
    expect(findCondition(stuck.conditions, 'Ready')?.message).toContain('secret "creds" has no key "token"');

    await h.write('creds.yaml', secretYaml('creds', { token: 'one' }));
    const first = await h.waitFor('a Ready', ready(h, 'a'), timeout);
    const before = await podOf(t, 'a');
    const client = await connectTo(h, first.url!);
    const fingerprint = async (): Promise<string> => JSON.stringify((await client.callTool({ name: 'whoami', arguments: {} })).content);
    expect(await fingerprint()).toContain(createHash('sha256').update('one').digest('hex').slice(0, 12));
    await h.write('creds.yaml', secretYaml('creds', { token: 'two' }));
    await h.waitFor('a new pod for the new value', async () => {
      const pod = await podOf(t, 'a');
      return pod !== undefined && pod !== before && (await ready(h, 'a')()) && (await h.status('a'))?.pod?.endsWith(pod);
    }, timeout);
    // The same client session, now answered by the new pod with the new value.
    expect(await fingerprint()).toContain(createHash('sha256').update('two').digest('hex').slice(0, 12));
    await client.close();
  }, timeout * 3);

  it('a deleted manifest prunes what apiary made for it, and nothing it did not make', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('web.yaml', server('web', { transport: 'streamable-http' }));
    await h.write('creds.yaml', secretYaml('creds', { token: 'one' }));
    await startOn(h, t);
    await h.waitFor('web applied', async () => (await read(t, 'v1', 'Service', 'web')) !== undefined, timeout);
    // Someone else's Secret in the same namespace, with no apiary label.
    await t.objects.patch({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'theirs', namespace: t.namespace }, stringData: { k: 'v' } } as KubernetesObject, undefined, undefined, 'someone', true, 'application/apply-patch+yaml');

    await rm(join(h.dir, 'web.yaml'));
    await rm(join(h.dir, 'creds.yaml'));
    await h.waitFor('pruned', async () => (await read(t, 'apps/v1', 'Deployment', 'web')) === undefined && (await read(t, 'v1', 'Service', 'web')) === undefined && (await read(t, 'v1', 'Secret', 'creds')) === undefined, timeout);
    expect(await h.server('web')).toBeUndefined();
    expect(await read(t, 'v1', 'Secret', 'theirs')).toBeDefined();
  }, timeout * 2);

  it('a sandboxed server gets its NetworkPolicy beside its Deployment; without the sandbox the policy goes, and with the manifest everything goes', async () => {
    const h = await harness();
    const t = await target(h);
    // On a live cluster npx fetches the server from the npm registry: allowed too (by port only, as a name).
    const allow = ['10.9.8.7:443', ...(LIVE ? ['registry.npmjs.org:443'] : [])];
    const sandboxed = `${server('a')}  sandbox:\n    network: allow\n    allow: ${JSON.stringify(allow)}\n`;
    await h.write('a.yaml', sandboxed);
    await startOn(h, t);
    await h.waitFor('a Ready', ready(h, 'a'), timeout);
    const policy = await h.waitFor('the NetworkPolicy applied', () => read<KubernetesObject & { spec: unknown }>(t, 'networking.k8s.io/v1', 'NetworkPolicy', 'a'), timeout);
    expect(policy.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'apiary', 'apiary.dev/name': 'a' });
    expect(policy.metadata?.managedFields?.some((f) => f.manager === 'apiary' && f.operation === 'Apply')).toBe(true);
    expect(policy.spec).toMatchObject({ podSelector: { matchLabels: { 'apiary.dev/name': 'a' } }, policyTypes: ['Ingress', 'Egress'] });
    expect((policy.spec as { egress: unknown[] }).egress).toEqual([{ to: [{ ipBlock: { cidr: '10.9.8.7/32' } }], ports: [{ protocol: 'TCP', port: 443 }] }, ...(LIVE ? [{ ports: [{ protocol: 'TCP', port: 443 }] }, { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }] : [])]);
    // The restricted pod the kubelet was given (and still runs the server, $HOME its emptyDir).
    const deployment = await read<V1Deployment>(t, 'apps/v1', 'Deployment', 'a');
    expect(deployment?.spec?.template.spec?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    const events = async (): Promise<string[]> => ((await h.server('a'))?.record?.events ?? []).map((e) => `${e.reason}: ${e.message}`);
    expect(await events()).toContainEqual(expect.stringContaining(`NetworkPolicy ${t.namespace}/a and Deployment ${t.namespace}/a applied (generation 1)`));

    await h.write('a.yaml', server('a'));
    await h.waitFor('the NetworkPolicy deleted with the sandbox', async () => (await read(t, 'networking.k8s.io/v1', 'NetworkPolicy', 'a')) === undefined, timeout);
    expect(await read(t, 'apps/v1', 'Deployment', 'a')).toBeDefined();

    await h.write('a.yaml', sandboxed);
    await h.waitFor('the NetworkPolicy back', async () => (await read(t, 'networking.k8s.io/v1', 'NetworkPolicy', 'a')) !== undefined, timeout);
    await rm(join(h.dir, 'a.yaml'));
    await h.waitFor('pruned', async () => (await read(t, 'apps/v1', 'Deployment', 'a')) === undefined && (await read(t, 'networking.k8s.io/v1', 'NetworkPolicy', 'a')) === undefined, timeout);
  }, timeout * 3);

  it.skipIf(LIVE)('a Role without networkpolicies: the other servers run as before; a sandboxed one is not deployed unsandboxed, and says why', async () => {
    const h = await harness();
    const t = await target(h, ROOT, { forbidden: ['networkpolicies'] });
    await h.write('a.yaml', server('a'));
    await h.write('b.yaml', `${server('b')}  sandbox: { network: none }\n`);
    const cluster = await startOn(h, t);
    await h.waitFor('a Ready', ready(h, 'a'), timeout);
    // The refused list was heard (and is retried), and is no lost API server: nothing says unreachable, not even for a moment.
    await h.waitFor('the policy list refused', async () => t.fake!.requests.some((r) => r.startsWith('GET /apis/networking.k8s.io/v1/namespaces/apiary-test/networkpolicies')), timeout);
    expect(cluster.reachable.ok).toBe(true);
    expect(h.logs.filter((l) => l.msg.includes('unreachable')).map((l) => l.msg)).toEqual([]);
    const refused = await h.waitFor('b Stalled on the refused policy', async () => {
      const s = await h.status('b');
      return findCondition(s?.conditions, 'Stalled')?.reason === 'ApplyFailed' && s;
    }, timeout);
    expect(findCondition(refused.conditions, 'Stalled')?.message).toContain('networkpolicies.networking.k8s.io "b" is forbidden: User "system:serviceaccount:apiary:apiary" cannot patch resource "networkpolicies"');
    expect(((await h.server('b'))?.record?.events ?? []).map((e) => `${e.type} ${e.reason}`)).toContain('Warning ApplyFailed');
    // Never its pod without the policy.
    expect(await read(t, 'apps/v1', 'Deployment', 'b')).toBeUndefined();
    expect(findCondition((await h.status('a'))?.conditions, 'Ready')?.status).toBe('True');
  }, timeout * 2);

  it('a container that exits is in CrashLoopBackOff, with how it ended', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('bad.yaml', server('bad').replace(/command: .*\n {2}args: .*\n/, 'command: node\n  args: ["-e", "process.exit(3)"]\n'));
    await startOn(h, t);
    const crashing = await h.waitFor('CrashLoopBackOff', async () => {
      const s = await h.status('bad');
      return s?.phase === 'CrashLoopBackOff' && s.lastTermination !== undefined && s;
    }, timeout);
    expect(crashing.lastTermination?.exitCode).toBe(3);
    expect(crashing.restartCount).toBeGreaterThanOrEqual(1);
    expect(findCondition(crashing.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'CrashLoopBackOff', message: expect.stringContaining('(exit code 3)') });
  }, timeout * 2);

  it('a hosted server (spec.remote) is fronted from here, as without a cluster; nothing is deployed for it', async () => {
    const hosted = createServer((req, res) => {
      const server = new McpServer({ name: 'hosted', version: '9.9.9' });
      server.registerTool('shout', { description: 'Upper-cases a word', inputSchema: { word: z.string() } }, async ({ word }) => ({ content: [{ type: 'text', text: word.toUpperCase() }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void transport.close());
      void server.connect(transport).then(() => transport.handleRequest(req, res));
    });
    await new Promise<void>((r) => hosted.listen(0, '127.0.0.1', r));
    try {
      const h = await harness();
      const t = await target(h);
      await h.write('hosted.yaml', `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata:\n  name: hosted\nspec:\n  remote:\n    url: http://127.0.0.1:${(hosted.address() as AddressInfo).port}/mcp\n`);
      await startOn(h, t);
      const s = await h.waitFor('hosted Ready', ready(h, 'hosted'), timeout);
      const client = await connectTo(h, s.url!);
      expect((await client.callTool({ name: 'shout', arguments: { word: 'hi' } })).content).toEqual([{ type: 'text', text: 'HI' }]);
      await client.close();
      expect(await read(t, 'apps/v1', 'Deployment', 'hosted')).toBeUndefined();
    } finally {
      hosted.closeAllConnections();
      await new Promise<void>((r) => hosted.close(() => r()));
    }
  }, timeout * 2);

  it.skipIf(LIVE)('objects left by an earlier run whose manifests are gone are pruned at start', async () => {
    const h = await harness();
    const t = await target(h);
    await h.write('a.yaml', server('a'));
    await h.write('b.yaml', server('b'));
    await startOn(h, t);
    await h.waitFor('a and b applied', async () => (await read(t, 'apps/v1', 'Deployment', 'b')) !== undefined && (await read(t, 'apps/v1', 'Deployment', 'a')) !== undefined, timeout);
    await h.controller!.stop();
    // Still running there without apiary, as under Flux.
    expect(await read(t, 'apps/v1', 'Deployment', 'a')).toBeDefined();
    await rm(join(h.dir, 'b.yaml'));
    await startOn(h, t);
    await h.waitFor('b pruned', async () => (await read(t, 'apps/v1', 'Deployment', 'b')) === undefined, timeout);
    expect(await read(t, 'apps/v1', 'Deployment', 'a')).toBeDefined();
  }, 30_000);

  it.skipIf(LIVE)('informers resume an ended watch from its resourceVersion, and list afresh after 410 Gone', async () => {
    const { h, fake } = await oneReadyServer();
    const lists = (): number => fake.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/apiary-test/pods?') && !r.includes('watch=true')).length;
    const watches = (): string[] => fake.requests.filter((r) => r.startsWith('GET /api/v1/namespaces/apiary-test/pods?') && r.includes('watch=true'));
    const listed = lists();
    const watched = watches().length;

    fake.endWatches();
    await h.waitFor('the pod watch resumed', async () => watches().length > watched, 5_000);
    const resumed = watches().at(-1)!;
    expect(Number(new URL(resumed.slice(4), 'http://x').searchParams.get('resourceVersion'))).toBeGreaterThan(1);
    expect(lists()).toBe(listed);

    // History compacted: the resumed watch is told 410 Expired, and the informer lists again.
    await h.write('b.yaml', server('b'));
    await h.waitFor('b Ready', ready(h, 'b'), timeout);
    fake.compact();
    await h.write('a.yaml', server('a', { edit: 'Hi' }));
    fake.endWatches();
    await h.waitFor('listed again', async () => lists() > listed, 5_000);
    // The cache is whole again: a's new pod is seen, and status follows.
    await h.waitFor('a on generation 2', async () => {
      const s = await ready(h, 'a')();
      return s !== false && findCondition(s.conditions, 'Ready')?.observedGeneration === 2;
    }, timeout);
  }, 30_000);

  it.skipIf(LIVE)('a lost API server is a condition, not a crash; an edit made meanwhile is applied when it is back', async () => {
    const { h, fake } = await oneReadyServer();
    const port = Number(new URL(fake.url).port);

    await fake.close();
    await h.write('a.yaml', server('a', { edit: 'EditedWhileAway' }));
    const lost = await h.waitFor('ClusterUnreachable', async () => {
      const s = await h.status('a');
      return findCondition(s?.conditions, 'Ready')?.reason === 'ClusterUnreachable' && s;
    }, timeout);
    expect(findCondition(lost.conditions, 'Ready')?.status).toBe('Unknown');
    expect(findCondition(lost.conditions, 'Ready')?.message).toContain('cannot reach the API server');
    expect(lost.phase).toBe('Running');

    await fake.listen(port);
    await h.waitFor('the edit applied and Ready', async () => {
      const s = await ready(h, 'a')();
      const d = fake.get('deployments', 'apiary-test', 'a');
      return s !== false && JSON.stringify(d).includes('EditedWhileAway') && findCondition(s.conditions, 'Ready')?.observedGeneration === 2;
    }, 20_000);
  }, 40_000);
});

/** The CLI test deletes a pod with the real kubectl, as a person would. */
const kubectlTool = needsKubectl();

describe.skipIf(LIVE || !kubectlTool.available)('apiary up --runtime kubernetes (the built CLI, with the real kubectl beside it)', () => {
  it('the bundled example with spec.image: applied, Ready; its secret deleted and its pod deleted with kubectl: Stuck naming it; restored: Ready', async () => {
    const h = await harness();
    // The bundled server's path is relative to the bundled manifests' folder: the fake's kubelet runs it from there.
    const t = await target(h, join(ROOT, 'manifests'));
    // The bundled manifests, as a user would run them on a cluster: with an image.
    const hello = (await readFile(join(ROOT, 'manifests', 'hello.yaml'), 'utf8')).replace(/^spec:$/m, 'spec:\n  image: docker.io/library/node:22-alpine');
    await h.write('hello.yaml', hello);
    const credentials = await readFile(join(ROOT, 'manifests', 'hello-credentials.yaml'), 'utf8');
    await h.write('hello-credentials.yaml', credentials);
    const env = { ...h.env, KUBECONFIG: t.kubeconfigFile, NO_COLOR: '1' };
    const child = spawn(BIN, ['up', '--runtime', 'kubernetes', '--no-ui'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const ready = await runCli(['wait', 'mcpserver/hello', '--for=condition=Ready', '--timeout', '15s'], { env });
      expect(ready.code, output).toBe(0);
      expect(output).toContain('servers run on Kubernetes: context fake, namespace apiary-test');
      const table = await runCli(['get', 'mcp'], { env });
      expect(table.stdout).toMatch(/^NAME {4}PHASE {5}READY {3}RESTARTS {3}AGE {3}URL\nhello {3}Running {3}True {4}0 /);
      const described = await runCli(['describe', 'mcpserver', 'hello'], { env });
      expect(described.stdout).toMatch(/Pod: +apiary-test\/hello-/);
      expect(described.stdout).toContain('Image:            docker.io/library/node:22-alpine');
      expect(described.stdout).toMatch(/Normal {3}Applied {3}\d+s +apiary {3}Deployment apiary-test\/hello applied \(generation 1\)/);
      // Asynchronously: the fake API server answers from this very process.
      const kubectl = async (...args: string[]): Promise<string> => (await promisify(execFile)('kubectl', ['--kubeconfig', t.kubeconfigFile, ...args], { encoding: 'utf8' })).stdout;
      expect(await kubectl('get', 'deployment', 'hello', '-o', 'jsonpath={.metadata.managedFields[*].manager}')).toContain('apiary');

      await rm(join(h.dir, 'hello-credentials.yaml'));
      await h.waitFor('the Secret gone from the cluster', async () => (await read(t, 'v1', 'Secret', 'hello-credentials')) === undefined);
      expect((JSON.parse((await runCli(['get', 'mcp', 'hello', '-o', 'json'], { env })).stdout) as { status: { phase: string } }).status.phase).toBe('Running');
      await kubectl('delete', 'pod', '-l', 'apiary.dev/name=hello');
      const stuck = await runCli(['wait', 'mcpserver/hello', '--for=phase=Stuck', '--timeout', '15s'], { env });
      expect(stuck.code, output).toBe(0);
      const why = await runCli(['describe', 'mcpserver', 'hello'], { env });
      expect(why.stdout).toMatch(/Ready +False +SecretNotFound +\d+s +secret "hello-credentials" not found \(the kubelet cannot start pod hello-\S+: CreateContainerConfigError\)/);

      await h.write('hello-credentials.yaml', credentials);
      expect((await runCli(['wait', 'mcpserver/hello', '--for=condition=Ready', '--timeout', '15s'], { env })).code, output).toBe(0);

      // restart rolls the pod, as kubectl rollout restart does; logs says where the output is.
      const before = await podOf(t, 'hello');
      expect((await runCli(['restart', 'hello'], { env })).code).toBe(0);
      await h.waitFor('a new pod', async () => {
        const pod = await podOf(t, 'hello');
        return pod !== undefined && pod !== before;
      });
      expect((await runCli(['wait', 'mcpserver/hello', '--for=condition=Ready', '--timeout', '15s'], { env })).code, output).toBe(0);
      const logs = await runCli(['logs', 'hello'], { env });
      expect(logs.code).toBe(1);
      expect(logs.stderr).toMatch(/no logs for mcpserver\/hello here: it runs on Kubernetes, in pod apiary-test\/hello-\S+\n {2}kubectl logs -n apiary-test hello-/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Stopping apiary leaves the servers running in the cluster.
    expect(await read(t, 'apps/v1', 'Deployment', 'hello')).toBeDefined();
    expect(output).not.toContain('demo-not-a-real-token');
  }, 60_000);

  it('says there is no cluster configured, instead of trying localhost:8080', async () => {
    const h = await harness();
    const result = await runCli(['up', '--runtime', 'kubernetes', '--no-ui'], { env: { ...h.env, KUBECONFIG: '', HOME: h.dir } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: no Kubernetes cluster configured: no kubeconfig found');
  });
});
