/**
 * The fake Kubernetes API server the runtime is tested against, checked
 * first against the real `kubectl` (1.32, on these machines): discovery,
 * server-side apply with field managers and conflicts, get, delete, and the
 * kubelet's waiting reasons for a missing secret; then the watch protocol
 * (resume from a resourceVersion, 410 once it is compacted) over raw HTTP.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeApiServer } from './helpers/fake-apiserver.js';
import { podVerdict } from '../src/kubernetes/pod-status.js';
import { ROOT, runCli } from './helpers/cli.js';
import { workspace } from './helpers/tmp.js';
import { INSTALL, requireTool } from './helpers/tools.js';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node';

const run = promisify(execFile);
const KUBECTL = process.env['APIARY_KUBECTL'] ?? '/usr/bin/kubectl';
/** Skipped, saying why, where kubectl is missing (these machines have 1.32 at /usr/bin/kubectl; APIARY_KUBECTL names another); under CI the file fails instead. */
const kubectlTool = requireTool(KUBECTL, INSTALL.kubectl);

let fake: FakeApiServer | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const child = run(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { timeout: 20_000 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function started(): Promise<{ fake: FakeApiServer; kubeconfig: string; dir: string; env: NodeJS.ProcessEnv }> {
  fake = new FakeApiServer();
  await fake.listen();
  const ws = await workspace();
  await mkdir(ws.dir, { recursive: true });
  const kubeconfig = join(ws.root, 'kubeconfig');
  await writeFile(kubeconfig, fake.kubeconfig('mcp'));
  return { fake, kubeconfig, dir: ws.dir, env: ws.env };
}

describe.skipIf(!kubectlTool.available)('the fake API server, driven by the real kubectl', () => {
  it('takes kubectl apply --server-side of what apiary renders; the pod waits on the missing secret in the kubelet\'s words, and runs once it is there', async () => {
    const { fake, kubeconfig, dir, env } = await started();
    await cp(join(ROOT, 'manifests'), dir, { recursive: true });
    const hello = join(dir, 'hello.yaml');
    await writeFile(hello, (await readFile(hello, 'utf8')).replace('spec:\n', 'spec:\n  image: node:20-slim\n'));
    const rendered = await runCli(['render', '--runtime', 'kubernetes', '--namespace', 'mcp'], { env: { ...env, APIARY_DIR: dir } });
    const file = join(dir, '..', 'rendered.yaml');
    await writeFile(file, rendered.stdout);

    const applied = await kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=apiary', '--validate=false', '-f', file]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe('deployment.apps/hello serverside-applied');
    const deployment = JSON.parse((await kubectl(kubeconfig, ['get', 'deployment', 'hello', '-n', 'mcp', '-o', 'json', '--show-managed-fields'])).stdout) as { metadata: { managedFields: { manager: string; operation: string }[]; labels: Record<string, string> } };
    expect(deployment.metadata.managedFields.map((f) => [f.manager, f.operation])).toEqual([['apiary', 'Apply']]);
    expect(deployment.metadata.labels['app.kubernetes.io/managed-by']).toBe('apiary');

    // The kubelet cannot start the container: its environment names a secret that is not there.
    const pods = JSON.parse((await kubectl(kubeconfig, ['get', 'pods', '-n', 'mcp', '-l', 'apiary.dev/name=hello', '-o', 'json'])).stdout) as { items: V1Pod[] };
    expect(pods.items).toHaveLength(1);
    expect(podVerdict(pods.items[0], 1)).toMatchObject({ phase: 'Stuck', reason: 'SecretNotFound', missing: { secret: 'hello-credentials' } });

    // A secret without the key: still waiting, now on the key.
    const secret = (data: Record<string, string>) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: hello-credentials\n  namespace: mcp\nstringData:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`;
    await writeFile(join(dir, '..', 's1.yaml'), secret({ other: 'x' }));
    expect((await kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=apiary', '--validate=false', '-f', join(dir, '..', 's1.yaml')])).code).toBe(0);
    const waiting = fake.get('pods', 'mcp', (pods.items[0]!.metadata!.name)!) as unknown as V1Pod;
    expect(podVerdict(waiting, 1)).toMatchObject({ phase: 'Stuck', reason: 'SecretKeyNotFound', missing: { secret: 'hello-credentials', key: 'token' } });
    await writeFile(join(dir, '..', 's2.yaml'), secret({ token: 'y' }));
    expect((await kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=apiary', '--validate=false', '-f', join(dir, '..', 's2.yaml')])).code).toBe(0);
    const running = JSON.parse((await kubectl(kubeconfig, ['get', 'pods', '-n', 'mcp', '-o', 'json'])).stdout) as { items: V1Pod[] };
    expect(podVerdict(running.items[0], 1)).toMatchObject({ phase: 'Running', ready: true });

    // Another manager changing a field apiary owns is a conflict, unless it forces (then the field changes hands).
    const scaled = rendered.stdout.split('---').find((d) => d.includes('kind: Deployment'))!.replace('replicas: 1', 'replicas: 2');
    await writeFile(join(dir, '..', 'scaled.yaml'), scaled);
    const conflict = await kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=someone', '--validate=false', '-f', join(dir, '..', 'scaled.yaml')]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain('conflict with .spec.replicas (owned by "apiary")');
    const forced = await kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '--field-manager=someone', '--validate=false', '-f', join(dir, '..', 'scaled.yaml')]);
    expect(forced.code, forced.stderr).toBe(0);
    const after = fake.get('deployments', 'mcp', 'hello')!;
    expect((after['spec'] as { replicas: number }).replicas).toBe(2);
    expect(after.metadata.managedFields!.find((f) => f.manager === 'apiary')!.fieldsV1).not.toHaveProperty(['spec.replicas']);
    expect(after.metadata.managedFields!.find((f) => f.manager === 'someone')!.fieldsV1).toHaveProperty(['spec.replicas']);

    const deleted = await kubectl(kubeconfig, ['delete', 'deployment', 'hello', '-n', 'mcp', '--wait=false']);
    expect(deleted.stdout.trim()).toBe('deployment.apps "hello" deleted');
    expect(fake.get('deployments', 'mcp', 'hello')).toBeUndefined();
    const gone = await kubectl(kubeconfig, ['get', 'deployment', 'hello', '-n', 'mcp']);
    expect(gone.stderr).toContain('deployments.apps "hello" not found');
  }, 60_000);
});

describe.skipIf(!kubectlTool.available)('a sandboxed server, rendered and applied with the real kubectl', () => {
  it('takes the restricted Deployment and its NetworkPolicy as rendered, and gives them back unchanged', async () => {
    const { kubeconfig, dir, env } = await started();
    await writeFile(
      join(dir, 'notes.yaml'),
      'apiVersion: apiary.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: notes }\nspec:\n  image: node:24.11.1-bookworm-slim\n  command: npx\n  args: ["-y", "notes-mcp@1.0.0"]\n  resources: { limits: { memory: 256Mi } }\n  sandbox:\n    network: allow\n    allow: ["registry.npmjs.org:443", "10.1.2.3:5432"]\n',
    );
    const rendered = await runCli(['render', '--runtime', 'kubernetes', '--namespace', 'mcp', '-o', 'json'], { env: { ...env, APIARY_DIR: dir } });
    expect(rendered.code, rendered.stderr).toBe(0);
    const file = join(dir, '..', 'rendered.json');
    await writeFile(file, rendered.stdout);
    const applied = await kubectl(kubeconfig, ['apply', '--server-side', '--field-manager=apiary', '--validate=false', '-f', file]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim().split('\n')).toEqual(['networkpolicy.networking.k8s.io/notes serverside-applied', 'deployment.apps/notes serverside-applied']);
    const items = (JSON.parse(rendered.stdout) as { items: { kind: string; spec: unknown }[] }).items;
    const policy = JSON.parse((await kubectl(kubeconfig, ['get', 'netpol', 'notes', '-n', 'mcp', '-o', 'json'])).stdout) as { spec: unknown; metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
    expect(policy.spec).toEqual(items.find((o) => o.kind === 'NetworkPolicy')!.spec);
    expect(policy.metadata.labels['app.kubernetes.io/managed-by']).toBe('apiary');
    expect(policy.metadata.annotations['apiary.dev/unenforced-hosts']).toBe('registry.npmjs.org:443');
    const deployment = JSON.parse((await kubectl(kubeconfig, ['get', 'deployment', 'notes', '-n', 'mcp', '-o', 'json'])).stdout) as { spec: { template: { spec: { securityContext: unknown; containers: { securityContext: unknown; resources: unknown }[] } } } };
    expect(deployment.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(deployment.spec.template.spec.containers[0]).toMatchObject({ securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }, resources: { limits: { memory: '256Mi' } } });
    // And kubectl deletes it by its short name, as apiary's prune does by kind.
    expect((await kubectl(kubeconfig, ['delete', 'netpol', 'notes', '-n', 'mcp'])).stdout.trim()).toBe('networkpolicy.networking.k8s.io "notes" deleted');
  }, 60_000);
});

describe('the fake\'s watch', () => {
  it('resumes from a resourceVersion, and answers 410 Gone once that version is compacted away', async () => {
    const { fake } = await started();
    const apply = (name: string, value: string) =>
      fetch(`${fake.url}/api/v1/namespaces/mcp/secrets/${name}?fieldManager=apiary`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/apply-patch+yaml' },
        body: `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: mcp }\nstringData: { k: "${value}" }\n`,
      });
    expect((await apply('a', '1')).status).toBe(201);
    const list = (await (await fetch(`${fake.url}/api/v1/namespaces/mcp/secrets`)).json()) as { metadata: { resourceVersion: string }; items: unknown[] };
    expect(list.items).toHaveLength(1);
    expect((await apply('a', '2')).status).toBe(200);
    expect((await apply('b', '1')).status).toBe(201);
    // A watch from the list's version gets what happened since, in order.
    const controller = new AbortController();
    const watch = await fetch(`${fake.url}/api/v1/namespaces/mcp/secrets?watch=true&resourceVersion=${list.metadata.resourceVersion}`, { signal: controller.signal });
    const reader = watch.body!.getReader();
    let text = '';
    while (text.split('\n').filter(Boolean).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text.split('\n').filter(Boolean).map((l) => { const e = JSON.parse(l) as { type: string; object: { metadata: { name: string } } }; return `${e.type} ${e.object.metadata.name}`; })).toEqual(['MODIFIED a', 'ADDED b']);
    // Compacted: the same version is too old now.
    fake.compact();
    const expired = await (await fetch(`${fake.url}/api/v1/namespaces/mcp/secrets?watch=true&resourceVersion=${list.metadata.resourceVersion}`)).text();
    expect(JSON.parse(expired.trim())).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  });
});
