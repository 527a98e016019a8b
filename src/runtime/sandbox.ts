/**
 * Sandboxed servers (spec.sandbox) under bubblewrap: the argv that wraps a
 * server's command, and the probe that says whether bubblewrap can run here.
 *
 * What the sandbox is made of, and why each choice:
 * - new user, PID, IPC, UTS, cgroup and network namespaces, all capabilities
 *   dropped; the network namespace has only loopback, for `none` and for
 *   `allow` alike (a program that ignores HTTPS_PROXY reaches nothing):
 *   `allow` reaches apiary's egress proxy through its unix socket bound in,
 *   which a small forwarder inside serves as 127.0.0.1:EGRESS_PORT.
 * - an HTTP server listens on its $PORT in that namespace, where apiary
 *   cannot reach it: the same forwarder serves a unix socket in a folder of
 *   the state directory bound in (INGRESS_DIR_INSIDE) by piping each
 *   connection to 127.0.0.1:$PORT inside, and apiary listens on $PORT of the
 *   host's loopback and pipes to that socket (src/runtime/ingress.ts).
 * - the root is an empty tmpfs: only what is bound in exists. Mounts are
 *   applied parents first, so a hidden folder (the home, the state
 *   directory) stays hidden under a granted parent, and a path declared
 *   inside a hidden one is visible again.
 * - --die-with-parent: a stdio server cannot be adopted by the next
 *   controller anyway (its pipes went with the old one), and an HTTP or
 *   egress-using one is reached only through sockets the controller serves:
 *   it goes with the controller at once rather than run on unattended, and
 *   the next controller starts it again (one it finds alive all the same is
 *   ended, never adopted: see ProcessRuntime.adopt).
 * - no --new-session, on purpose: the server must stay in the process group
 *   apiary signals, so a stop's SIGTERM reaches it and it can shut down
 *   cleanly. Measured with bwrap 0.8: with a new session the SIGTERM reaches
 *   only bwrap, and the server is left running (without --die-with-parent)
 *   or SIGKILLed when bwrap goes (with it), never asked to stop.
 *   --new-session guards a controlling terminal (TIOCSTI); a server has none
 *   (it is started detached, in a session of its own, with pipes and a log
 *   file).
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';

/** spec.sandbox, resolved: defaults filled in, `~` not yet expanded (the home is the launch's). */
export interface SandboxSpec {
  profile: 'default' | 'none';
  read: readonly string[];
  write: readonly string[];
  network: 'none' | 'allow';
  /** host:port, lower-case. */
  allow: readonly string[];
  /**
   * Files made unreadable where a grant would show them: the manifest
   * directory's Secret manifests, which the default profile's working
   * directory usually holds. /dev/null is bound over each; a device node
   * mounted in a user namespace cannot be opened (EACCES).
   */
  hide?: readonly string[];
}

export type SandboxSupport = { available: true; bwrap: string } | { available: false; reason: string };

/** Where the server's egress socket appears inside the sandbox, and the port the forwarder serves there. */
export const EGRESS_SOCKET_INSIDE = '/run/apiary-egress.sock';
export const EGRESS_PORT = 3128;
/** Where the folder of an HTTP server's ingress socket (src/runtime/ingress.ts) appears inside the sandbox. */
export const INGRESS_DIR_INSIDE = '/run/apiary-ingress';

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const SYSTEM_ETC = [
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/pki',
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/passwd',
  '/etc/group',
  '/etc/localtime',
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
];

export const SANDBOX_WAY_OUT = 'install bubblewrap (apt install bubblewrap), enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), or remove spec.sandbox';

/** bubblewrap's path: APIARY_BWRAP when set (a seam for tests and unusual installs), else `bwrap` on PATH. */
export function findBwrap(env: NodeJS.ProcessEnv): string | undefined {
  const set = env['APIARY_BWRAP'];
  if (set !== undefined && set !== '') return set;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    const candidate = join(dir, 'bwrap');
    if (lstatOrUndefined(candidate) !== undefined) return candidate;
  }
  return undefined;
}

/**
 * Whether bubblewrap can make the namespaces a sandbox needs here: one run
 * of `bwrap --unshare-user --unshare-net --ro-bind / / true` (about 10 ms).
 * Fails where bubblewrap is missing, or user namespaces are off.
 */
export function probeSandbox(env: NodeJS.ProcessEnv): SandboxSupport {
  const bwrap = findBwrap(env);
  if (bwrap === undefined) return { available: false, reason: `bubblewrap (bwrap) is not installed; ${SANDBOX_WAY_OUT}` };
  const run = spawnSync(bwrap, ['--unshare-user', '--unshare-net', '--ro-bind', '/', '/', 'true'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.error !== undefined) {
    const code = (run.error as NodeJS.ErrnoException).code ?? run.error.name;
    return { available: false, reason: `bubblewrap at ${bwrap} cannot run (${code}); ${SANDBOX_WAY_OUT}` };
  }
  if (run.status !== 0) {
    const said = (run.stderr ?? '').trim().split('\n').at(-1)?.slice(0, 200) ?? '';
    return { available: false, reason: `bubblewrap at ${bwrap} cannot create a sandbox here${said !== '' ? ` (${said})` : ''}; ${SANDBOX_WAY_OUT}` };
  }
  return { available: true, bwrap };
}

/** `~` and `~/x` under the server's home; other paths as written. */
export function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  return path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

export interface SandboxInput {
  sandbox: SandboxSpec;
  command: string;
  args: readonly string[];
  cwd: string;
  /** The server's HOME: an empty tmpfs inside. */
  home: string;
  /** apiary's state directory: hidden even when under a granted folder. */
  stateDir: string;
  /** The node apiary runs on (process.execPath): its prefix is granted by the default profile, and it runs the egress forwarder. */
  nodePath: string;
  /** This server's egress socket on the host (network allow). */
  egressSocket?: string;
  /** An HTTP server: the host folder its ingress socket is made in (bound in writable), and the port it listens on inside. */
  ingress?: { dir: string; socketName: string; port: number };
}

type Mount = { op: '--ro-bind-try' | '--bind-try' | '--bind'; source: string; dest: string } | { op: '--tmpfs'; dest: string } | { op: '--symlink'; target: string; dest: string };

/** The bwrap arguments, then the command to run inside (argv[0] is bwrap's path, not included). */
export function sandboxArgs(input: SandboxInput): string[] {
  const args = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--unshare-net', '--die-with-parent', '--cap-drop', 'ALL'];
  for (const mount of orderedMounts(mountsOf(input))) args.push(...mountArgs(mount));
  args.push('--proc', '/proc', '--dev', '/dev', '--chdir', input.cwd);
  const forward = forwarding(input);
  // The forwarder runs first, then execs nothing: it spawns the command and follows its exit.
  if (forward !== undefined) return [...args, '--', input.nodePath, '-e', FORWARDER, JSON.stringify(forward), input.command, ...input.args];
  return [...args, '--', input.command, ...input.args];
}

/** What the forwarder inside serves: the egress proxy on the namespace's loopback, an HTTP server's port on a unix socket; undefined when neither. */
function forwarding(input: SandboxInput): { egress?: { socket: string; port: number }; ingress?: { socket: string; port: number } } | undefined {
  const egress = input.sandbox.network === 'allow' ? { socket: EGRESS_SOCKET_INSIDE, port: EGRESS_PORT } : undefined;
  const ingress = input.ingress !== undefined ? { socket: `${INGRESS_DIR_INSIDE}/${input.ingress.socketName}`, port: input.ingress.port } : undefined;
  if (egress === undefined && ingress === undefined) return undefined;
  return { ...(egress !== undefined ? { egress } : {}), ...(ingress !== undefined ? { ingress } : {}) };
}

function mountsOf(input: SandboxInput): Mount[] {
  const { sandbox, home } = input;
  const mounts: Mount[] = [];
  if (sandbox.profile === 'default') mounts.push(...systemMounts());
  mounts.push({ op: '--tmpfs', dest: '/tmp' }, { op: '--tmpfs', dest: home });
  const ro = (source: string): Mount => ({ op: '--ro-bind-try', source, dest: source });
  const rw = (source: string): Mount => ({ op: '--bind-try', source, dest: source });
  if (sandbox.profile === 'default') {
    mounts.push(...nodeMounts(input.nodePath, [home, homedir()]), ro(input.cwd), rw(join(home, '.npm')));
  } else if (forwarding(input) !== undefined) {
    mounts.push(ro(input.nodePath));
  }
  mounts.push(...sandbox.read.map((p) => ro(expandHome(p, home))), ...sandbox.write.map((p) => rw(expandHome(p, home))));
  // The state directory holds every server's logs and records, and the sealed secrets' key paths: hidden unless declared itself.
  const granted = mounts.filter((m) => m.op !== '--tmpfs' && m.op !== '--symlink').map((m) => m.dest);
  if (granted.some((dest) => isWithin(input.stateDir, dest) && dest !== input.stateDir)) mounts.push({ op: '--tmpfs', dest: input.stateDir });
  for (const file of sandbox.hide ?? []) if (granted.some((dest) => isWithin(file, dest))) mounts.push({ op: '--ro-bind-try', source: '/dev/null', dest: file });
  if (input.egressSocket !== undefined) mounts.push({ op: '--bind-try', source: input.egressSocket, dest: EGRESS_SOCKET_INSIDE });
  // Not -try: an HTTP server whose way in is missing must not start.
  if (input.ingress !== undefined) mounts.push({ op: '--bind', source: input.ingress.dir, dest: INGRESS_DIR_INSIDE });
  return mounts;
}

/**
 * What the default profile grants of the node apiary runs on: its install prefix (node, npm, npx, global packages),
 * nothing when the system dirs hold it. A prefix that holds a home (node installed right under it, as `n` with
 * N_PREFIX=~ does: ~/bin/node) is never granted whole, which would show all of the home: only node, npm's and
 * corepack's links in its bin and their packages.
 */
function nodeMounts(nodePath: string, homes: readonly string[]): Mount[] {
  const node = realOrSelf(nodePath);
  const prefix = dirname(dirname(node));
  const ro = (source: string): Mount => ({ op: '--ro-bind-try', source, dest: source });
  if (SYSTEM_DIRS.some((dir) => isWithin(prefix, dir))) return [];
  if (!homes.some((home) => isWithin(home, prefix))) return [ro(prefix)];
  const mounts: Mount[] = [ro(node)];
  for (const tool of ['npm', 'npx', 'corepack']) {
    const path = join(prefix, 'bin', tool);
    const info = lstatOrUndefined(path);
    // A link stays a link: npm's tools find their package relative to where the link points.
    if (info?.isSymbolicLink() === true) mounts.push({ op: '--symlink', target: readlinkSync(path), dest: path });
    else if (info !== undefined) mounts.push(ro(path));
  }
  for (const pkg of ['npm', 'corepack']) mounts.push(ro(join(prefix, 'lib', 'node_modules', pkg)));
  return mounts;
}

/** /usr and friends read-only, as the host has them (a merged-/usr symlink stays a symlink), and the few files of /etc a program needs. */
function systemMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const dir of SYSTEM_DIRS) {
    const info = lstatOrUndefined(dir);
    if (info === undefined) continue;
    if (info.isSymbolicLink()) mounts.push({ op: '--symlink', target: readlinkSync(dir), dest: dir });
    else mounts.push({ op: '--ro-bind-try', source: dir, dest: dir });
  }
  for (const path of SYSTEM_ETC) mounts.push({ op: '--ro-bind-try', source: path, dest: path });
  return mounts;
}

/** Parents before children (by depth, stably): what is applied later covers what is beneath it. */
function orderedMounts(mounts: Mount[]): Mount[] {
  const depth = (path: string): number => path.split('/').filter(Boolean).length;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.dest) - depth(b.m.dest) || a.i - b.i).map(({ m }) => m);
}

function mountArgs(mount: Mount): string[] {
  if (mount.op === '--tmpfs') return ['--tmpfs', mount.dest];
  if (mount.op === '--symlink') return ['--symlink', mount.target, mount.dest];
  return [mount.op, mount.source, mount.dest];
}

/** `path` is `dir` or inside it. */
function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Runs inside the sandbox, before the server. Given {egress?, ingress?}:
 * egress serves 127.0.0.1:PORT (the namespace's own loopback) by piping each
 * connection to apiary's egress socket; ingress serves a unix socket by
 * piping each connection to 127.0.0.1:PORT, where the HTTP server listens.
 * Once both listen, it runs the server with the same stdio and leaves with
 * its exit. It stays in the server's process group, so apiary's signals
 * reach both; it ignores SIGTERM and SIGINT itself and leaves when the
 * server does.
 */
const FORWARDER = `
const net = require('node:net'), fs = require('node:fs'), { spawn } = require('node:child_process');
const [config, command, ...args] = process.argv.slice(1);
const { egress, ingress } = JSON.parse(config);
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => undefined);
const pipe = (c, u) => {
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
  c.on('close', () => u.destroy());
  u.on('close', () => c.destroy());
};
const listen = (what, at, onConnection) => new Promise((resolve) => {
  const server = net.createServer(onConnection);
  server.on('error', (e) => { process.stderr.write('apiary sandbox: the ' + what + ' forwarder cannot listen on ' + at.join(':') + ' (' + e.code + ')\\n'); process.exit(70); });
  server.listen(...at, resolve);
});
const listening = [];
if (egress) listening.push(listen('egress', [egress.port, '127.0.0.1'], (c) => pipe(c, net.connect(egress.socket))));
if (ingress) {
  try { fs.unlinkSync(ingress.socket); } catch {}
  listening.push(listen('ingress', [ingress.socket], (c) => pipe(c, net.connect(ingress.port, '127.0.0.1'))));
}
Promise.all(listening).then(() => {
  const child = spawn(command, args, { stdio: 'inherit' });
  child.on('error', (e) => { process.stderr.write('apiary sandbox: cannot start ' + command + ' (' + e.code + ')\\n'); process.exit(127); });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 0) : 1)));
});
`;
