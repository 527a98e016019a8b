/**
 * The fault harness (`npm run chaos`; a short run is part of the tests): a
 * real controller with real servers, faults injected round after round,
 * and the invariants checked after each. Seeded, so a failing run can be
 * replayed with the seed it prints.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { hangingGitRemote } from './git-hang.js';
import { hostedYaml, startHosted, type Hosted } from './hosted.js';
import { dropUploads, pingEndpoint, stallUploads } from './ingress.js';
import { controllerAlive, noCanary, oneProcessEach, stateFilesSound } from './invariants.js';
import { seededRandom } from './seeded.js';
import { killGroup, rssKb, sleep, World, type ServerDecl } from './world.js';

export const FAULTS = [
  'edit-kill',
  'secret-kill',
  'crash-kill',
  'corrupt-state',
  'dir-vanishes',
  'client-flood',
  'secret-gone',
  'dropped-upload',
  'stalled-upload',
  'header-crlf',
  'no-newline',
  'git-hang',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  rounds: number;
  soakEdits: number;
  seed?: number;
  /** How long a round may take to converge before it counts as a violation. */
  convergeMs?: number;
  /** random (default): faults drawn with the seed; cycle: each fault in turn, so a short run has them all. */
  order?: 'random' | 'cycle';
  /** Only these faults (default: all of FAULTS). */
  faults?: readonly Fault[];
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  rounds: number;
  faults: Record<string, number>;
  /** Per round: from the fault's end (controller back up) to every server that honours SIGTERM converged, ms. */
  convergeMs: number[];
  /** The same, until the server that ignores SIGTERM has converged too (it may wait out its grace). */
  stubbornMs: number[];
  violations: string[];
  flood: { idlePingMs: number[]; floodPingMs: number[]; floodCalls: number; floodErrors: number };
  soak: { edits: number; rssKb: { at: number; kb: number }[]; seconds: number };
}

const canary = (): string => `CANARY-${randomBytes(9).toString('hex')}`;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const log = options.log ?? (() => undefined);
  const convergeLimit = options.convergeMs ?? 2_000;
  const faults = options.faults ?? FAULTS;
  const world = await World.create();
  const report: ChaosReport = {
    seed,
    rounds: 0,
    faults: {},
    convergeMs: [],
    stubbornMs: [],
    violations: [],
    flood: { idlePingMs: [], floodPingMs: [], floodCalls: 0, floodErrors: 0 },
    soak: { edits: 0, rssKb: [], seconds: 0 },
  };
  const canaries: string[] = [];
  // The servers: three that get edited and carry a secret, one that ignores SIGTERM and
  // closed stdin (never edited: a rollout of it waits out the grace periods), one bound to a
  // secret that comes and goes.
  const servers: ServerDecl[] = [
    { name: 's0', rev: 1, secret: { name: 'tok', key: 'token' } },
    { name: 's1', rev: 1, secret: { name: 'tok', key: 'token' } },
    { name: 's2', rev: 1 },
    { name: 'stubborn', rev: 1, flags: ['--ignore-stdin', '--ignore-sigterm'] },
    { name: 'fragile', rev: 1, secret: { name: 'extra', key: 'key' } },
  ];
  const secrets: Record<string, string> = {};
  let extraPresent = true;
  let hosted: Hosted | undefined;
  const setSecret = async (name: string, key: string): Promise<void> => {
    const value = canary();
    canaries.push(value);
    const result = await world.cli(['secret', 'set', name, key], value);
    if (result.code !== 0) throw new Error(`secret set failed: ${result.stderr}`);
    secrets[`${name}/${key}`] = value;
  };

  try {
    await setSecret('tok', 'token');
    await setSecret('extra', 'key');
    // A hosted server (spec.remote) whose header carries a secret: the CR/LF fault aims at it.
    await setSecret('hosted', 'key');
    hosted = await startHosted(secrets['hosted/key']!);
    await world.writeManifest('hosted.yaml', hostedYaml(hosted.url));
    for (const s of servers) await world.writeServer(s);
    await world.startController();
    const first = await converge(world, servers, secrets, extraPresent, 20_000);
    report.violations.push(...first.problems.map((p) => `at start: ${p}`));
    if (!(await until(20_000, () => hostedReady(world)))) report.violations.push('at start: the hosted server is not Ready');

    for (let round = 1; round <= options.rounds; round++) {
      const fault = options.order === 'cycle' ? faults[(round - 1) % faults.length]! : faults[Math.floor(random() * faults.length)]!;
      report.faults[fault] = (report.faults[fault] ?? 0) + 1;
      const texts: Record<string, string> = {};
      const s = servers[Math.floor(random() * 3)]!;
      // A fault that throws (a socket refused by a controller that died) is a violation of the round, not the end of the run.
      try {
        switch (fault) {
          case 'edit-kill': {
            s.rev += 1;
            await world.writeServer(s);
            await sleep(random() * 300);
            await world.killController();
            await world.startController();
            break;
          }
          case 'secret-kill': {
            const value = canary();
            canaries.push(value);
            const writer = world.spawnCli(['secret', 'set', 'tok', 'token'], value);
            await sleep(random() * 400);
            await world.killController();
            const code = await new Promise<number | null>((resolve) => (writer.exitCode !== null ? resolve(writer.exitCode) : writer.once('exit', resolve)));
            if (code === 0) secrets['tok/token'] = value;
            else report.violations.push(`round ${round}: secret set exited ${code}`);
            await world.startController();
            break;
          }
          case 'crash-kill': {
            const pid = world.serverProcesses()[s.name]?.[0];
            if (pid !== undefined) killGroup(pid);
            await sleep(random() * 300);
            await world.killController();
            await world.startController();
            break;
          }
          case 'corrupt-state': {
            const kill = random() < 0.5;
            if (kill) await world.killController();
            await corruptOne(world, random);
            if (kill) await world.startController();
            break;
          }
          case 'dir-vanishes': {
            const before = world.serverProcesses();
            const away = `${world.dir}.away`;
            await rename(world.dir, away);
            await sleep(2_500); // past one resync (2 s): losing the directory must not prune anything
            const during = world.serverProcesses();
            for (const name of Object.keys(before)) {
              if (JSON.stringify(before[name]) !== JSON.stringify(during[name])) report.violations.push(`round ${round}: ${name} changed while the manifest directory was gone`);
            }
            await rename(away, world.dir);
            break;
          }
          case 'client-flood': {
            const flood = await clientFlood(world, 's2');
            report.flood.idlePingMs.push(...flood.idle);
            report.flood.floodPingMs.push(...flood.during);
            report.flood.floodCalls += flood.calls;
            report.flood.floodErrors += flood.errors;
            texts['endpoint responses'] = flood.responses;
            break;
          }
          case 'secret-gone': {
            // Rule 2 then 1 then 3: a running server keeps running without its secret; once it
            // stops it is Stuck; when the secret is back it starts by itself.
            const del = await world.cli(['secret', 'delete', 'extra']);
            if (del.code !== 0) report.violations.push(`round ${round}: secret delete failed: ${del.stderr}`);
            extraPresent = false;
            // Rule 2: it keeps running, and status says the secret is gone.
            const seen = await until(convergeLimit, () => world.status('fragile')?.conditions?.some((c) => c.type === 'SecretsResolved' && c.status === 'False') === true);
            if (!seen) report.violations.push(`round ${round}: the deleted secret was not reported in fragile's status within ${convergeLimit} ms`);
            if (world.status('fragile')?.phase !== 'Running') report.violations.push(`round ${round}: fragile is ${world.status('fragile')?.phase} after its secret was deleted (want Running)`);
            const pid = world.serverProcesses()['fragile']?.[0];
            if (pid === undefined) report.violations.push(`round ${round}: fragile stopped when its secret was deleted`);
            else killGroup(pid);
            const stuck = await until(convergeLimit, () => world.status('fragile')?.phase === 'Stuck');
            if (!stuck) report.violations.push(`round ${round}: fragile is ${world.status('fragile')?.phase}, not Stuck, without its secret`);
            await setSecret('extra', 'key');
            extraPresent = true;
            break;
          }
          case 'dropped-upload': {
            // Uploads dropped halfway at a server's endpoint, the aggregate and the proxy of a hosted server.
            const headers = await world.endpointHeaders();
            const urls = world.endpointUrls([s.name, 'hosted']);
            report.violations.push(...(await dropUploads(urls, headers, 5)).map((p) => `round ${round}: ${p}`));
            // Each endpoint still answers a well-behaved client: a controller that died of a dropped upload would not.
            for (const url of urls) {
              const failed = await pingEndpoint(url, headers);
              if (failed !== undefined) report.violations.push(`round ${round}: after dropped uploads, a ping failed: ${failed}`);
            }
            break;
          }
          case 'stalled-upload': {
            // Uploads that stall halfway hold no one else up and are ended by the endpoint in seconds.
            const headers = await world.endpointHeaders();
            const url = world.status(s.name)?.url;
            if (url === undefined) {
              report.violations.push(`round ${round}: ${s.name} has no URL in status`);
              break;
            }
            const stall = await stallUploads(url, headers, 8);
            try {
              const failed = await pingEndpoint(url, headers);
              if (failed !== undefined) report.violations.push(`round ${round}: beside stalled uploads, a ping failed: ${failed}`);
              const ends = await stall.ended(STALL_LIMIT_MS);
              const open = ends.filter((e) => e === 'still open').length;
              if (open > 0) report.violations.push(`round ${round}: ${open} of 8 stalled uploads still open after ${STALL_LIMIT_MS} ms`);
            } finally {
              stall.destroy();
            }
            break;
          }
          case 'header-crlf': {
            // A secret with CR/LF in it, expanded into a hosted server's header: refused by name, never sent, never shown.
            const bad = `X\r\nX-Injected: yes ${canary()}`;
            canaries.push(bad.slice(bad.lastIndexOf(' ') + 1));
            const set = await world.cli(['secret', 'set', 'hosted', 'key'], bad);
            if (set.code !== 0) report.violations.push(`round ${round}: secret set failed: ${set.stderr}`);
            const refused = await until(convergeLimit, () => world.status('hosted')?.conditions?.some((c) => c.reason === 'SecretValueInvalid') === true);
            if (!refused) report.violations.push(`round ${round}: a header value with CR/LF was not reported as SecretValueInvalid within ${convergeLimit} ms`);
            const url = world.status('hosted')?.url;
            // Refused or not, a request through the proxy must not take the controller down (checked after the round).
            if (url !== undefined) await pingEndpoint(url, await world.endpointHeaders());
            await setSecret('hosted', 'key');
            hosted!.key = secrets['hosted/key']!;
            break;
          }
          case 'no-newline': {
            // The server writes 5 MiB without a newline: a protocol error that restarts it, never a controller that grows without bound.
            const pid = world.serverProcesses()[s.name]?.[0];
            if (pid === undefined) break;
            process.kill(pid, 'SIGUSR2');
            const replaced = await until(convergeLimit * 2, () => world.status(s.name)?.pid !== undefined && world.status(s.name)?.pid !== pid && world.status(s.name)?.phase === 'Running');
            if (!replaced) report.violations.push(`round ${round}: ${s.name} was not replaced after writing 5 MiB without a newline`);
          else if (world.status(s.name)?.lastTermination?.reason !== 'ProtocolError') report.violations.push(`round ${round}: ${s.name} was replaced, but its last termination says ${world.status(s.name)?.lastTermination?.reason} (want ProtocolError)`);
            break;
          }
          case 'git-hang': {
            report.violations.push(...(await hangingGitRemote(world.env, 5_000)).map((p) => `round ${round}: ${p}`));
            break;
          }
        }
      } catch (err) {
        report.violations.push(`round ${round} (${fault}): the fault could not run: ${String(err)}`);
      }
      const converged = await converge(world, servers, secrets, extraPresent, convergeLimit);
      const problems = converged.problems;
      const dead = controllerAlive(world);
      problems.push(...dead);
      // Record it and carry on: the next rounds still test something.
      if (dead.length > 0) await world.startController();
      if (!(await until(convergeLimit, () => hostedReady(world)))) problems.push('the hosted server is not Ready');
      report.convergeMs.push(converged.ms);
      report.stubbornMs.push(converged.allMs);
      if (round % 10 === 0 || round === options.rounds) {
        const get = await world.cli(['get', 'all', '-o', 'json']);
        const describe = await world.cli(['describe', 'mcp']);
        texts['get -o json'] = get.stdout + get.stderr;
        texts['describe'] = describe.stdout + describe.stderr;
      }
      // A damaged state file is rewritten at the controller's next pass over it: one resync (2 s here).
      let files = await stateFilesSound(world);
      for (const deadline = Date.now() + 3_000; files.length > 0 && Date.now() < deadline; files = await stateFilesSound(world)) await sleep(50);
      problems.push(...files, ...(await noCanary(world, canaries, texts)));
      for (const p of problems) report.violations.push(`round ${round} (${fault}): ${p}`);
      report.rounds = round;
      log(`round ${round} ${fault}: ${problems.length === 0 ? 'ok' : problems.join('; ')} (${converged.ms} ms; all ${converged.allMs} ms)`);
    }

    await soak(world, servers, options.soakEdits, report, log);
    const final = await converge(world, servers, secrets, extraPresent, 10_000);
    report.violations.push(...final.problems.map((p) => `after the soak: ${p}`));
    await world.stopController();
    // A graceful stop leaves no server behind, the one that ignores SIGTERM included.
    report.violations.push(...oneProcessEach(world, [], servers.map((x) => x.name)).map((p) => `after stop: ${p}`));
  } finally {
    await world.dispose();
    await hosted?.close();
  }
  return report;
}

/** How long a stalled upload may hold its connection: the endpoint's body deadline and then some. */
const STALL_LIMIT_MS = 10_000;

function hostedReady(world: World): boolean {
  return world.status('hosted')?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}


/**
 * Waits until the world matches the manifests (each server Running at its
 * latest spec and secret value, or Suspended; one process each; status
 * current), up to `limitMs`; returns what still differs then. A server that
 * ignores SIGTERM is given its grace periods on top (stdin 1 s + SIGTERM 5 s):
 * after a controller crash its stdio is gone and it must be replaced.
 */
async function converge(world: World, servers: readonly ServerDecl[], secrets: Record<string, string>, extraPresent: boolean, limitMs: number): Promise<{ problems: string[]; ms: number; allMs: number }> {
  const started = Date.now();
  let ms: number | undefined;
  for (;;) {
    const problems: string[] = [];
    const late: string[] = [];
    const found = world.serverProcesses();
    problems.push(...oneProcessEach(world, [], [], found, servers.map((s) => s.name)));
    for (const s of servers) {
      const mine: string[] = oneProcessEach(world, s.suspend === true ? [] : [s.name], s.suspend === true ? [s.name] : [], found);
      const status = world.status(s.name);
      const want = s.suspend === true ? 'Suspended' : 'Running';
      if (status?.phase !== want || status.observedGeneration !== status.generation) mine.push(`${s.name}: status ${status?.phase ?? 'not written by the running controller'} (want ${want})`);
      const pid = found[s.name]?.[0];
      if (pid !== undefined) {
        if (status?.pid !== undefined && status.pid !== pid) mine.push(`${s.name}: status says pid ${status.pid}, the process is ${pid}`);
        const facts = world.processFacts(pid, 'TOKEN');
        if (facts.rev !== s.rev) mine.push(`${s.name}: runs rev ${facts.rev}, manifest says ${s.rev}`);
        if (s.secret !== undefined && (s.secret.name !== 'extra' || extraPresent) && facts.value !== secrets[`${s.secret.name}/${s.secret.key}`]) mine.push(`${s.name}: runs with an old value of ${s.secret.name}/${s.secret.key}`);
      }
      (s.flags?.includes('--ignore-sigterm') ? late : problems).push(...mine);
    }
    const elapsed = Date.now() - started;
    if (problems.length === 0) ms ??= elapsed;
    if (problems.length === 0 && late.length === 0) return { problems: [], ms: ms ?? elapsed, allMs: elapsed };
    if (elapsed > limitMs + STUBBORN_GRACE_MS) return { problems: [...problems, ...late], ms: ms ?? elapsed, allMs: elapsed };
    if (elapsed > limitMs && problems.length > 0) return { problems, ms: elapsed, allMs: elapsed };
    await sleep(20);
  }
}

const STUBBORN_GRACE_MS = 6_000;

async function until(limitMs: number, probe: () => boolean): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Truncates or garbles one state file: a status record, ports.json, controller.json or a process record. */
async function corruptOne(world: World, random: () => number): Promise<void> {
  const candidates: string[] = [join(world.stateDir, 'ports.json'), join(world.stateDir, 'controller.json')];
  for (const sub of ['status/mcpserver', 'status/secret', 'processes']) {
    const folder = join(world.stateDir, sub);
    for (const f of await readdir(folder).catch(() => [] as string[])) if (f.endsWith('.json')) candidates.push(join(folder, f));
  }
  const target = candidates[Math.floor(random() * candidates.length)]!;
  if (random() < 0.5) await truncate(target, 7).catch(() => undefined);
  else await writeFile(target, '{"garbage": [1, 2').catch(() => undefined);
}

/**
 * 16 clients, each with 8 calls always in flight, for one second against one
 * server, while another client pings the same server: its ping times before
 * and during the flood.
 */
async function clientFlood(world: World, name: string): Promise<{ idle: number[]; during: number[]; calls: number; errors: number; responses: string }> {
  const url = world.status(name)?.url;
  if (url === undefined) return { idle: [], during: [], calls: 0, errors: 1, responses: '' };
  const headers = await world.endpointHeaders();
  const connect = async (): Promise<Client> => {
    const client = new Client({ name: 'chaos', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return client;
  };
  const probe = await connect();
  const pings = async (count: number): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await probe.ping();
      times.push(performance.now() - t);
      await sleep(20);
    }
    return times;
  };
  const idle = await pings(20);
  const flooders = await Promise.all(Array.from({ length: 16 }, connect));
  let calls = 0;
  let errors = 0;
  let responses = '';
  const stopAt = Date.now() + 1_000;
  const loops = flooders.flatMap((client) =>
    Array.from({ length: 8 }, async () => {
      while (Date.now() < stopAt) {
        try {
          const result = await client.listTools();
          calls++;
          if (calls % 50 === 0) responses += JSON.stringify(result);
        } catch (err) {
          errors++;
          responses += String(err);
        }
      }
    }),
  );
  const during = await pings(20);
  await Promise.all(loops);
  await Promise.all([probe, ...flooders].map((c) => c.close()));
  return { idle, during, calls, errors, responses };
}

/**
 * Edits, one after another, each waited for: annotations of a running server
 * (no restart), args of a suspended one (a generation, no process) and, every
 * 100th, a real rollout. The controller's RSS is sampled as it goes.
 */
async function soak(world: World, servers: ServerDecl[], edits: number, report: ChaosReport, log: (line: string) => void): Promise<void> {
  if (edits <= 0) return;
  const idle: ServerDecl = { name: 'idle', rev: 1, suspend: true };
  servers.push(idle);
  await world.writeServer(idle);
  await until(5_000, () => world.status('idle')?.phase === 'Suspended');
  const pid = world.controller!.pid!;
  const started = Date.now();
  const rolled = servers[2]!;
  for (let i = 1; i <= edits; i++) {
    let done: () => boolean;
    if (i % 100 === 0) {
      const before = world.status(rolled.name)?.generation ?? 0;
      rolled.rev += 1;
      await world.writeServer(rolled);
      done = () => (world.status(rolled.name)?.generation ?? 0) > before && world.status(rolled.name)?.phase === 'Running';
    } else if (i % 2 === 0) {
      const before = world.status(idle.name)?.generation ?? 0;
      idle.rev += 1;
      await world.writeServer(idle);
      done = () => (world.status(idle.name)?.observedGeneration ?? 0) > before;
    } else {
      const note = `edit ${i}`;
      await world.annotate(rolled.name, note, rolled);
      done = () => world.status(rolled.name)?.annotations?.['chaos/note'] === note;
    }
    if (!(await until(5_000, done))) report.violations.push(`soak: edit ${i} not observed within 5 s`);
    if (i % Math.max(1, Math.floor(edits / 20)) === 0 || i === edits) {
      const kb = rssKb(pid);
      if (kb !== undefined) report.soak.rssKb.push({ at: i, kb });
      log(`soak: ${i} edits, controller RSS ${kb} kB`);
    }
  }
  report.soak.edits = edits;
  report.soak.seconds = (Date.now() - started) / 1000;
  // The last annotation stays: the soak's final edit is part of the world the harness converges on.
}
