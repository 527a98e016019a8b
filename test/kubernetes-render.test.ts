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
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { findCondition } from '../src/api/status.js';
import { podVerdict } from '../src/kubernetes/pod-status.js';
import { clusterServerStatus } from '../src/kubernetes/server-status.js';
import { renderKubernetes } from '../src/kubernetes/render.js';
import { NODE_IMAGE } from '../src/api/runner-images.js';
import { formatManifestError } from '../src/manifests/errors.js';
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
  const Model = kind === 'Deployment' ? Deployment : kind === 'Service' ? Service : kind === 'Secret' ? Secret : kind === 'NetworkPolicy' ? NetworkPolicy : undefined;
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
      { kind: 'MCPServer', name: 'noimage', message: 'spec.image is required to run on Kubernetes (the container image the command runs in); apiary install fills it in only for npm (npx) and PyPI (uvx) packages' },
      { kind: 'MCPServer', name: 'once', message: 'restartPolicy Never cannot be kept by a Deployment (its pods always restart); use Always, or run this server locally' },
    ]);
    const cli = await runCli(['render', '--runtime', 'kubernetes'], { env: ws.env });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('error: mcpserver/noimage not rendered: spec.image is required');
  });
});

const server = (name: string, spec: string): string => `apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: ${name} }\nspec:\n${spec}`;
type Doc = Record<string, unknown> & { kind: string; metadata: { name: string; annotations?: Record<string, string> } };
type PodSpec = { securityContext?: unknown; volumes?: unknown; containers: { securityContext?: unknown; volumeMounts?: unknown; resources?: unknown; env?: { name: string; value?: string }[] }[] };
const podSpec = (o: Doc): PodSpec => (o['spec'] as { template: { spec: PodSpec } }).template.spec;

describe('render --runtime kubernetes: sandboxing (issue 28 item 4)', () => {
  it('a Deployment is restricted by default (non-root, read-only root, no capabilities, RuntimeDefault seccomp); podSecurity baseline is the way out; resources as written', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'a.yaml'), server('plain', '  image: busybox:1.37\n  command: x\n'));
    await writeFile(join(ws.dir, 'b.yaml'), server('rooty', '  image: busybox:1.37\n  command: x\n  podSecurity: baseline\n'));
    await writeFile(join(ws.dir, 'c.yaml'), server('sized', '  image: busybox:1.37\n  command: x\n  env: [{ name: HOME, value: /data }]\n  resources:\n    requests: { cpu: 100m, memory: 128Mi }\n    limits: { cpu: 1, memory: 512Mi }\n'));
    const result = await runCli(['render', '--runtime', 'kubernetes', '-o', 'json'], { env: ws.env });
    expect(result.code, result.stderr).toBe(0);
    const objects = (JSON.parse(result.stdout) as { items: Doc[] }).items;
    for (const o of objects) validate(o);
    const byName = new Map(objects.map((o) => [o.metadata.name, podSpec(o)]));
    const plain = byName.get('plain')!;
    expect(plain.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(plain.containers[0]!.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(plain.volumes).toEqual([{ name: 'tmp', emptyDir: {} }, { name: 'home', emptyDir: {} }]);
    expect(plain.containers[0]!.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'home', mountPath: '/home/apiary' }]);
    // npx and uvx write their caches under $HOME: the writable emptyDir, since the root is read-only.
    expect(plain.containers[0]!.env).toEqual([{ name: 'HOME', value: '/home/apiary' }]);
    const rooty = byName.get('rooty')!;
    expect(rooty.securityContext).toBeUndefined();
    expect(rooty.volumes).toBeUndefined();
    expect(rooty.containers[0]).not.toHaveProperty('securityContext');
    expect(rooty.containers[0]).not.toHaveProperty('env');
    const sized = byName.get('sized')!;
    expect(sized.containers[0]!.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: 1, memory: '512Mi' } });
    // A HOME the manifest sets is its own (its volume is the user's business).
    expect(sized.containers[0]!.env).toEqual([{ name: 'HOME', value: '/data' }]);
  });

  it('spec.resources: a quantity Kubernetes would refuse, or a request above its limit, is an error at file:line:col', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'a.yaml'), server('bad', '  image: busybox:1.37\n  command: x\n  resources:\n    limits: { cpu: 2 cores, memory: 1Gi }\n'));
    await writeFile(join(ws.dir, 'b.yaml'), server('over', '  image: busybox:1.37\n  command: x\n  resources:\n    requests: { memory: 2Gi }\n    limits: { memory: 1Gi }\n'));
    await writeFile(join(ws.dir, 'c.yaml'), server('typo', '  image: busybox:1.37\n  command: x\n  resources:\n    limit: { cpu: 1 }\n'));
    const errors = (await loadDirectory(ws.dir)).documents.flatMap((d) => d.errors.map(formatManifestError));
    expect(errors).toEqual([
      expect.stringMatching(/a\.yaml:8:20: spec\.resources\.limits\.cpu: must be a Kubernetes quantity: a number with an optional suffix, e\.g\. 500m or 1 \(cpu\), 256Mi or 1G \(memory\); got "2 cores"$/),
      expect.stringMatching(/b\.yaml:8:25: spec\.resources\.requests\.memory: must be less than or equal to the memory limit \(1Gi\), as Kubernetes requires; got "2Gi"$/),
      expect.stringMatching(/c\.yaml:8:5: spec\.resources.*limit/),
    ]);
    // explain names a quantity's two forms, as the schema takes them.
    const explained = await runCli(['explain', 'mcpserver.spec.resources.limits']);
    expect(explained.stdout).toMatch(/cpu +<number\|string>\n +CPU cores: 500m is half a core, 2 is two/);
  });

  it('spec.sandbox.network becomes a NetworkPolicy: none denies all egress (DNS too); allow opens literal addresses as ipBlocks and names by port only, saying so', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'a.yaml'), server('closed', '  image: busybox:1.37\n  command: x\n  sandbox: {}\n'));
    await writeFile(join(ws.dir, 'b.yaml'), server('github', '  image: busybox:1.37\n  command: x\n  sandbox:\n    network: allow\n    allow: ["api.github.com:443", "10.0.0.5:5432", "[fd00::1]:8443", "uploads.github.com:443"]\n'));
    await writeFile(join(ws.dir, 'c.yaml'), server('open', '  image: busybox:1.37\n  command: x\n'));
    const json = await runCli(['render', '--runtime', 'kubernetes', '-n', 'mcp', '-o', 'json'], { env: ws.env });
    expect(json.code, json.stderr).toBe(0);
    const objects = (JSON.parse(json.stdout) as { items: Doc[] }).items;
    for (const o of objects) validate(o);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['NetworkPolicy/closed', 'Deployment/closed', 'NetworkPolicy/github', 'Deployment/github', 'Deployment/open']);
    const policy = (name: string): Doc => objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === name)!;
    expect(policy('closed')).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'closed', namespace: 'mcp', labels: { 'app.kubernetes.io/managed-by': 'apiary', 'apiary.dev/name': 'closed', 'apiary.dev/kind': 'mcpserver' } },
      spec: { podSelector: { matchLabels: { 'apiary.dev/name': 'closed' } }, policyTypes: ['Ingress', 'Egress'] },
    });
    // The policy selects exactly the Deployment's pods.
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'closed')! as Doc & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } };
    expect(deployment.spec.selector.matchLabels).toEqual({ 'apiary.dev/name': 'closed' });
    expect(deployment.spec.template.metadata.labels).toMatchObject({ 'apiary.dev/name': 'closed' });
    expect(policy('github')['spec']).toEqual({
      podSelector: { matchLabels: { 'apiary.dev/name': 'github' } },
      policyTypes: ['Ingress', 'Egress'],
      egress: [
        { to: [{ ipBlock: { cidr: '10.0.0.5/32' } }], ports: [{ protocol: 'TCP', port: 5432 }] },
        { to: [{ ipBlock: { cidr: 'fd00::1/128' } }], ports: [{ protocol: 'TCP', port: 8443 }] },
        { ports: [{ protocol: 'TCP', port: 443 }] },
        { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
      ],
    });
    expect(policy('github').metadata.annotations).toEqual({ 'apiary.dev/unenforced-hosts': 'api.github.com:443,uploads.github.com:443' });
    const said = 'NetworkPolicy cannot match host names: api.github.com:443, uploads.github.com:443 are allowed by port only, to any address (and DNS, port 53, to resolve them)';
    expect(json.stderr).toContain(`note: networkpolicy/github: ${said}`);
    // In the YAML, above the object it is about.
    const yaml = await runCli(['render', '--runtime', 'kubernetes'], { env: ws.env });
    expect(yaml.stdout).toContain(`---\n# ${said}\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: github\n`);
  });

  it('a server with no image: the npm and PyPI runners are told the image apiary install writes; anything else that only npm and PyPI get one; the rest is still printed, exit 1', async () => {
    const ws = await workspace();
    await mkdir(ws.dir, { recursive: true });
    await writeFile(join(ws.dir, 'a.yaml'), server('fromnpm', '  command: npx\n  args: ["-y", "@modelcontextprotocol/server-everything@2026.8.31"]\n'));
    await writeFile(join(ws.dir, 'b.yaml'), server('indocker', '  command: docker\n  args: ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server:v1.10.1"]\n'));
    await writeFile(join(ws.dir, 'c.yaml'), server('fine', '  image: busybox:1.37\n  command: x\n'));
    const result = await runCli(['render', '--runtime', 'kubernetes'], { env: ws.env });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error: mcpserver/fromnpm not rendered: spec.image is required to run on Kubernetes (the container image the command runs in); for npx, e.g. spec.image: ${NODE_IMAGE} (what apiary install writes)`);
    expect(result.stderr).toContain('error: mcpserver/indocker not rendered: spec.image is required to run on Kubernetes (the container image the command runs in); apiary install fills it in only for npm (npx) and PyPI (uvx) packages');
    expect(parseAllDocuments(result.stdout).map((d) => (d.toJSON() as Doc).metadata.name)).toEqual(['fine']);
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
