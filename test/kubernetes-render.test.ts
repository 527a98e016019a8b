/**
 * The Kubernetes runtime's pure parts: rendering (each object validated by
 * kubernetes-models against the real OpenAPI schemas, and a golden file) and
 * reading pods the way the kubelet writes them.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { findCondition } from '../src/api/status.js';
import { podVerdict } from '../src/kubernetes/pod-status.js';
import { clusterServerStatus } from '../src/kubernetes/server-status.js';
import { renderKubernetes } from '../src/kubernetes/render.js';
import { loadDirectory } from '../src/manifests/loader.js';
import { ROOT, runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';

const GOLDEN = fileURLToPath(new URL('./fixtures/kubernetes/render.golden.yaml', import.meta.url));

const WEB = `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: web
spec:
  image: ghcr.io/example/web-mcp:1.4.2
  command: web-mcp
  transport: streamable-http
  envFrom:
    - secretRef: { name: web-config }
      prefix: WEB_
  strategy:
    type: Recreate
`;

/** The bundled example directory with spec.image set, and an HTTP server beside it. */
async function exampleDir(): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const ws = await workspace();
  await mkdir(ws.dir, { recursive: true });
  await cp(join(ROOT, 'manifests'), ws.dir, { recursive: true });
  const hello = join(ws.dir, 'hello.yaml');
  await writeFile(hello, (await readFile(hello, 'utf8')).replace('spec:\n', 'spec:\n  image: node:20-slim\n'));
  await writeFile(join(ws.dir, 'web.yaml'), WEB);
  return { dir: ws.dir, env: ws.env };
}

function validate(object: Record<string, unknown>): void {
  const kind = object['kind'];
  const Model = kind === 'Deployment' ? Deployment : kind === 'Service' ? Service : kind === 'Secret' ? Secret : undefined;
  if (Model === undefined) throw new Error(`unexpected kind ${String(kind)}`);
  new Model(object as never).validate();
}

describe('render --runtime kubernetes', () => {
  it('the bundled example becomes objects the Kubernetes schemas accept, labelled as apiary\'s, secrets as references only', async () => {
    const { dir, env } = await exampleDir();
    const result = await runCli(['render', '--runtime', 'kubernetes', '--namespace', 'mcp'], { env: { ...env, APIARY_DIR: dir } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('# Secret hello-credentials (keys: token): values not printed.');
    const objects = parseAllDocuments(result.stdout).map((d) => d.toJSON() as Record<string, unknown>).filter((o) => o !== null);
    expect(objects.map((o) => `${String(o['kind'])}/${String((o['metadata'] as { name: string }).name)}`)).toEqual(['Deployment/hello', 'Deployment/web', 'Service/web']);
    for (const o of objects) validate(o);
    for (const o of objects) expect((o['metadata'] as { labels: Record<string, string>; namespace: string }).labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'apiary' });
    // The golden file is what a reviewer reads: regenerate it only on purpose.
    expect(result.stdout.trimEnd()).toBe((await readFile(GOLDEN, 'utf8')).trimEnd());
  });

  it('--include-secret-values renders the Secrets whole, decrypted with this machine\'s key', async () => {
    const { dir, env } = await exampleDir();
    const set = await runCli(['secret', 'set', 'hello-credentials', 'token'], { env: { ...env, APIARY_DIR: dir }, input: 'k8s-canary-41\n' });
    expect(set.code, set.stderr).toBe(0);
    const result = await runCli(['render', '--runtime', 'kubernetes', '--include-secret-values', '-o', 'json'], { env: { ...env, APIARY_DIR: dir } });
    const list = JSON.parse(result.stdout) as { items: Record<string, unknown>[] };
    const secret = list.items.find((o) => o['kind'] === 'Secret')!;
    validate(secret);
    expect(secret['stringData']).toEqual({ token: 'k8s-canary-41' });
  });

  it('refuses a namespace Kubernetes would refuse, as a usage error that says what a namespace may be', async () => {
    const { dir, env } = await exampleDir();
    for (const namespace of ['Team_A', '../kube-system', 'a'.repeat(64), '-mcp', '']) {
      const result = await runCli(['render', '--runtime', 'kubernetes', '-n', namespace], { env: { ...env, APIARY_DIR: dir } });
      expect(result.code, namespace).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain(`error: --namespace ${JSON.stringify(namespace)} is not a valid namespace name: `);
    }
    // up takes the same flag for where servers run, and refuses the same names before reading any kubeconfig.
    const up = await runCli(['up', '--runtime', 'kubernetes', '-n', '../kube-system', '--no-ui'], { env: { ...env, APIARY_DIR: dir, KUBECONFIG: join(dir, 'no-such-kubeconfig') } });
    expect(up.code, up.stderr).toBe(2);
    expect(up.stderr).toContain('error: --namespace "../kube-system" is not a valid namespace name: ');
    const ok = await runCli(['render', '--runtime', 'kubernetes', '-n', 'a'.repeat(63)], { env: { ...env, APIARY_DIR: dir } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`namespace: ${'a'.repeat(63)}`);
  });

  it('says which servers cannot run on Kubernetes as written, and why', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'a.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: noimage }\nspec:\n  command: x\n');
    await writeFile(join(ws.dir, 'b.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: once }\nspec:\n  image: busybox:1\n  command: x\n  restartPolicy: Never\n');
    await writeFile(join(ws.dir, 'c.yaml'), 'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: hosted }\nspec:\n  remote: { url: "https://example.com/mcp" }\n');
    const rendered = await renderKubernetes((await loadDirectory(ws.dir)).resources);
    expect(rendered.objects).toEqual([]);
    expect(rendered.problems).toEqual([
      { kind: 'MCPServer', name: 'hosted', message: 'a hosted server (spec.remote) runs nowhere to deploy; apiary fronts it from where it runs', skipped: true },
      { kind: 'MCPServer', name: 'noimage', message: 'spec.image is required to run on Kubernetes (the container image the command runs in)' },
      { kind: 'MCPServer', name: 'once', message: 'restartPolicy Never cannot be kept by a Deployment (its pods always restart); use Always, or run this server locally' },
    ]);
    const cli = await runCli(['render', '--runtime', 'kubernetes'], { env: ws.env });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('error: mcpserver/noimage not rendered: spec.image is required');
  });
});

/** A pod as the kubelet writes it, with one container in the given state. */
function pod(container: Record<string, unknown> | undefined, extra: Partial<V1Pod> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'hello-7d9f8c6b5-x2x9q', namespace: 'mcp', labels: { 'apiary.dev/name': 'hello' } },
    status: {
      phase: 'Pending',
      ...(container !== undefined ? { containerStatuses: [{ name: 'server', image: 'node:20-slim', imageID: '', ready: false, restartCount: 0, ...container }] } : {}),
    },
    ...extra,
  } as V1Pod;
}

describe('pods in apiary\'s words', () => {
  it.each([
    ['a missing secret: Stuck, naming it', pod({ state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "hello-credentials" not found' } } }), { phase: 'Stuck', reason: 'SecretNotFound', missing: { secret: 'hello-credentials' } }],
    ['a missing key: Stuck, naming secret and key', pod({ state: { waiting: { reason: 'CreateContainerConfigError', message: "couldn't find key token in Secret mcp/hello-credentials" } } }), { phase: 'Stuck', reason: 'SecretKeyNotFound', missing: { secret: 'hello-credentials', key: 'token' } }],
    ['crash looping', pod({ restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=server pod=hello-7d9f8c6b5-x2x9q_mcp(…)' } }, lastState: { terminated: { exitCode: 3, reason: 'Error', finishedAt: new Date('2026-11-29T10:00:00Z') } } }), { phase: 'CrashLoopBackOff', reason: 'CrashLoopBackOff', restartCount: 4, lastTermination: { exitCode: 3, signal: null, finishedAt: '2026-11-29T10:00:00.000Z', reason: 'Error' } }],
    ['an image that cannot be pulled', pod({ state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "node:99"' } } }), { phase: 'Stuck', reason: 'ImagePullBackOff' }],
    ['being created', pod({ state: { waiting: { reason: 'ContainerCreating' } } }), { phase: 'Pending', reason: 'Starting' }],
    ['running, not ready yet', pod({ state: { running: { startedAt: new Date() } } }), { phase: 'Running', ready: false, reason: 'ContainersNotReady' }],
    ['running and ready', pod({ ready: true, state: { running: { startedAt: new Date() } } }), { phase: 'Running', ready: true, reason: 'ContainerReady' }],
    ['exited cleanly', pod({ state: { terminated: { exitCode: 0, reason: 'Completed' } } }), { phase: 'Completed' }],
    ['unschedulable', pod(undefined, { status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient memory.' }] } }), { phase: 'Pending', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient memory.' }],
    ['being deleted', pod({ ready: true, state: { running: {} } }, { metadata: { name: 'hello-x', deletionTimestamp: new Date() } }), { phase: 'Terminating' }],
  ])('%s', (_name, input, expected) => {
    expect(podVerdict(input, 1)).toMatchObject(expected);
  });

  it('no pod yet is Pending; none with 0 replicas is Suspended', () => {
    expect(podVerdict(undefined, 1)).toMatchObject({ phase: 'Pending', reason: 'Starting' });
    expect(podVerdict(undefined, 0)).toMatchObject({ phase: 'Suspended' });
  });

  it('the message names the secret, as a local Stuck server does', () => {
    expect(podVerdict(pod({ state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "hello-credentials" not found' } } }), 1).message).toBe(
      'secret "hello-credentials" not found (the kubelet cannot start pod hello-7d9f8c6b5-x2x9q: CreateContainerConfigError)',
    );
  });
});

describe('an MCPServer\'s status on Kubernetes', () => {
  const running = pod({ ready: true, state: { running: { startedAt: new Date('2026-11-29T10:00:00Z') } } });
  const deployment = (generation: number, observed: number, updated = 1): V1Deployment => ({ metadata: { name: 'hello', generation }, spec: { replicas: 1, selector: {}, template: {} }, status: { observedGeneration: observed, replicas: 1, updatedReplicas: updated } });
  const base = { now: Date.parse('2026-11-29T10:01:00Z'), lastGeneration: 1, reachable: { ok: true, since: 0 } };
  const problem = { reason: 'SecretNotFound' as const, secret: 'creds', message: 'secret "creds" not found (needed for env TOKEN)' };

  it('reads like a local server: phase, Ready, the pod instead of a pid', () => {
    const s = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 1, problems: [] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    expect(s).toMatchObject({ phase: 'Running', observedGeneration: 1, pod: 'mcp/hello-7d9f8c6b5-x2x9q', startedAt: '2026-11-29T10:00:00.000Z', restartCount: 0 });
    expect(s.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'ContainerReady'],
      ['SecretsResolved', 'True', 'SecretsResolved'],
      ['Reconciling', 'False', 'Reconciled'],
      ['Stalled', 'False', 'Progressing'],
    ]);
  });

  it('a secret deleted under a running pod: it keeps running, and an update waits for the secret', () => {
    const kept = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 1, problems: [problem] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    expect(kept.phase).toBe('Running');
    expect(findCondition(kept.conditions, 'SecretsResolved')).toMatchObject({ status: 'False', reason: 'SecretNotFound', message: expect.stringContaining('the running pod keeps running') });
    expect(findCondition(kept.conditions, 'Stalled')?.status).toBe('False');
    const blocked = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 2, problems: [problem] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    expect(findCondition(blocked.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretNotFound', message: expect.stringContaining('update to generation 2 blocked') });
    expect(blocked.message).toBe('update blocked: secret "creds" not found (needed for env TOKEN)');
  });

  it('while a rollout runs, Ready speaks of the generation still serving', () => {
    const previous = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 1, problems: [] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    const rolling = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 2, problems: [] }, deployment: deployment(2, 1, 0), pods: [running], appliedGeneration: 2, previous });
    expect(findCondition(rolling.conditions, 'Ready')?.observedGeneration).toBe(1);
    expect(findCondition(rolling.conditions, 'Reconciling')).toMatchObject({ status: 'True', reason: 'RollingUpdate' });
    const done = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 2, problems: [] }, deployment: deployment(2, 2), pods: [running], appliedGeneration: 2, previous: rolling });
    expect(findCondition(done.conditions, 'Ready')?.observedGeneration).toBe(2);
  });

  it('a lost API server: Ready Unknown with the reason, the last phase kept as a guess', () => {
    const previous = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 1, problems: [] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    const lost = clusterServerStatus({ ...base, desired: { state: 'valid', generation: 1, problems: [] }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1, previous, reachable: { ok: false, error: 'cannot reach the API server at https://k8s:6443 (ECONNREFUSED)', since: 0 } });
    expect(lost.phase).toBe('Running');
    expect(findCondition(lost.conditions, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'ClusterUnreachable', message: expect.stringContaining('ECONNREFUSED') });
    expect(lost.message).toContain('the API server is unreachable');
  });

  it('a server that cannot run there, or an invalid manifest, is Stalled saying why', () => {
    const unrunnable = clusterServerStatus({ ...base, desired: { state: 'unrunnable', generation: 1, message: 'spec.image is required to run on Kubernetes' }, pods: [] });
    expect(unrunnable.phase).toBe('Stuck');
    expect(findCondition(unrunnable.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'Unrunnable' });
    const invalid = clusterServerStatus({ ...base, desired: { state: 'invalid', message: 'a.yaml:3:1: spec.command is required' }, deployment: deployment(1, 1), pods: [running], appliedGeneration: 1 });
    expect(invalid.phase).toBe('Running');
    expect(findCondition(invalid.conditions, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidManifest', message: expect.stringContaining('the cluster keeps running what was applied last') });
  });
});
