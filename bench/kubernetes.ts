/**
 * The Kubernetes runtime's own cost, against the fake API server (no real
 * one runs on these machines): how long `apiary up --runtime kubernetes`
 * takes to apply 100 MCPServers from cold, and how long from a manifest
 * edit to the PATCH reaching the API server. The fake runs in this process
 * and apiary in its own, so apiary's figures do not include the fake's CPU,
 * and nothing here includes a real cluster's latency or its kubelet.
 *
 * The peer, in the same run against the same fake: the other way to get the
 * same objects there, `apiary render` piped to `kubectl apply
 * --server-side` (what a person does without the runtime).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeApiServer } from '../test/helpers/fake-apiserver.js';
import { StateLayout } from '../src/state/layout.js';
import { StatusStore } from '../src/state/status-store.js';
import { epochMs, sleep, until } from './stamps.js';
import { runProcess } from './stamps.js';
import { fmtMs, percentile, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'apiary');
const SERVERS = 100;
const EDITS = 30;

function server(name: string, edit = 0): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: ${name}
spec:
  image: docker.io/library/node:22-alpine
  command: node
  args: ["-e", "process.stdin.resume()"]
  env:
    - name: EDIT
      value: "${edit}"
    - name: TOKEN
      valueFrom:
        secretKeyRef: { name: shared, key: token }
`;
}

const SECRET = 'apiVersion: apiary.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: shared\nstringData:\n  token: bench-value\n';


export async function benchKubernetes(): Promise<Row[]> {
  const root = await mkdtemp(join(tmpdir(), 'apiary-bench-k8s-'));
  const dir = join(root, 'manifests');
  await mkdir(dir, { recursive: true });
  const { createKeyFile } = await import('../src/crypto/keys.js');
  const keyFile = join(root, 'key');
  await createKeyFile(keyFile);
  await writeFile(join(dir, 'shared.yaml'), SECRET);
  for (let i = 0; i < SERVERS; i++) await writeFile(join(dir, `s${i}.yaml`), server(`s${i}`));

  // Every PATCH of a Deployment, by name, with its arrival time.
  const patches = new Map<string, number[]>();
  const fake = new FakeApiServer({
    onRequest: (method, path) => {
      const m = method === 'PATCH' ? /\/deployments\/([^/]+)$/.exec(path) : null;
      if (m !== null) patches.set(m[1]!, [...(patches.get(m[1]!) ?? []), epochMs()]);
    },
  });
  await fake.listen();
  const kubeconfig = join(root, 'kubeconfig');
  await writeFile(kubeconfig, fake.kubeconfig('bench'));
  const env = { APIARY_KEY_FILE: keyFile, KUBECONFIG: kubeconfig };
  const rows: Row[] = [];

  // The peer first, into its own namespace: render, then kubectl apply --server-side of the 100 Deployments.
  const t0 = epochMs();
  const rendered = await runProcess(BIN, ['render', '--runtime', 'kubernetes', '--dir', dir, '-n', 'peer', '--include-secret-values'], env);
  const tRendered = epochMs();
  const applied = await runProcess('kubectl', ['apply', '--server-side', '--validate=false', '--field-manager=apiary', '-f', '-'], env, rendered.stdout);
  const peerMs = epochMs() - t0; // kubectl --validate=false: the fake serves no OpenAPI document
  if (applied.code !== 0) throw new Error(`bench: kubectl apply failed: ${applied.stderr}`);
  patches.clear();

  // apiary up --runtime kubernetes, from cold.
  const t1 = epochMs();
  const child: ChildProcess = spawn(BIN, ['up', '--runtime', 'kubernetes', '--no-ui', '--dir', dir, '--state-dir', join(root, 'state'), '-n', 'apiary'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    const lastPatch = await until('100 Deployments applied', async () => (patches.size === SERVERS ? Math.max(...[...patches.values()].map((t) => t[0]!)) : undefined), 120_000, 20);
    const firstPatch = Math.min(...[...patches.values()].map((t) => t[0]!));
    const store = new StatusStore(new StateLayout(join(root, 'state')));
    await until('100 Running', async () => {
      const records = await store.list('MCPServer');
      return records.length === SERVERS && records.every((r) => (r.status as { phase: string }).phase === 'Running') ? true : undefined;
    }, 120_000, 100);
    const allRunning = epochMs() - t1;
    const cold = lastPatch - t1;
    rows.push({
      measure: `${SERVERS} MCPServers + 1 Secret, cold: \`apiary up --runtime kubernetes\` spawned -> last Deployment PATCH received`,
      result: fmtMs(cold),
      note: `first PATCH after ${fmtMs(firstPatch - t1)} (node, keyring, state directory, informers' first lists); all ${SERVERS} Running in apiary's status after ${fmtMs(allRunning)} (the fake's kubelet is instant); peer \`apiary render | kubectl apply --server-side\` of the same objects: ${fmtMs(peerMs)} (render ${fmtMs(tRendered - t0)}), apiary ${ratio(cold, peerMs)}`,
    });

    // Edit one manifest, time until its Deployment's PATCH arrives.
    await sleep(500);
    const samples: number[] = [];
    for (let i = 1; i <= EDITS; i++) {
      const name = `s${i % SERVERS}`;
      const before = patches.get(name)?.length ?? 0;
      const at = epochMs();
      await writeFile(join(dir, `${name}.yaml`), server(name, i));
      const arrived = await until(`PATCH for ${name}`, async () => ((patches.get(name)?.length ?? 0) > before ? patches.get(name)![before] : undefined), 10_000, 1);
      samples.push(arrived! - at);
      await sleep(100);
    }
    rows.push({
      measure: 'manifest edit -> Deployment PATCH received by the API server',
      result: `p50 ${fmtMs(percentile(samples, 50))}`,
      note: `${EDITS} edits with ${SERVERS} servers applied; p99 ${fmtMs(percentile(samples, 99))}; includes the file watcher's settle time; the fake runs no containers here, so apiary's attaches are refused and back off meanwhile`,
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
    await fake.close();
    await rm(root, { recursive: true, force: true });
  }
  return rows;
}

function ratio(apiary: number, peer: number): string {
  return apiary <= peer ? `${(peer / apiary).toFixed(1)}x faster` : `${(apiary / peer).toFixed(1)}x slower`;
}
