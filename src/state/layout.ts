/**
 * Where things live in the state directory. A path is built from a resource
 * name only after the name has passed the DNS-1123 rule, here, at the one
 * place every per-resource path comes from: a name such as `../../x` can
 * never reach a file outside the state directory.
 */
import { join } from 'node:path';
import { isDns1123Label, KINDS, type Kind } from '../api/names.js';
import { ApiaryError } from '../errors.js';
import type { Slot } from '../api/slot.js';

/** The file name of the GitRepository `up --git URL` writes in the state directory's source folder. */
export const FLAG_SOURCE_FILE = 'gitrepository.yaml';

/** The live audit log's file name; rotated files add `.1` (newest) to `.N`. */
export const AUDIT_FILE = 'audit.jsonl';

/** The name, if it may name a file; otherwise a NameInvalid error. */
export function fileSafeName(name: string): string {
  if (isDns1123Label(name)) return name;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
  throw new ApiaryError('NameInvalid', `${shown} is not a valid resource name: names are DNS-1123 labels (lower-case letters, digits and "-", at most 63 characters)`);
}

export class StateLayout {
  constructor(readonly root: string) {}

  get statusDir(): string {
    return join(this.root, 'status');
  }
  statusFile(kind: Kind, name: string): string {
    return join(this.statusKindDir(kind), `${fileSafeName(name)}.json`);
  }
  get processDir(): string {
    return join(this.root, 'processes');
  }
  /** The record of a server's process in a slot: `NAME.json` for the current one, `NAME.next.json`, `NAME.old.json` during a rollout. */
  processRecord(name: string, slot: Slot = 'current'): string {
    return join(this.processDir, `${fileSafeName(name)}${slot === 'current' ? '' : `.${slot}`}.json`);
  }
  get logDir(): string {
    return join(this.root, 'logs');
  }
  logFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.log`);
  }
  /** Where a process started beside the current one (a rolling update) writes until it takes over. */
  nextLogFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.next.log`);
  }
  previousLogFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.previous.log`);
  }
  /** "size time" lines: when the log had grown to that size (for logs --timestamps). */
  logIndexFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.log.idx`);
  }
  previousLogIndexFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.previous.log.idx`);
  }
  rotatedLogFile(name: string): string {
    return join(this.logDir, `${fileSafeName(name)}.log.1`);
  }
  /** Held locked by the running controller (a kernel lock); its content means nothing. */
  get controllerLockFile(): string {
    return join(this.root, 'controller.lock');
  }
  get controllerFile(): string {
    return join(this.root, 'controller.json');
  }
  /** The controller's own log when it runs in the background (up --detach). */
  get controllerLogFile(): string {
    return join(this.root, 'controller.log');
  }
  get previousControllerLogFile(): string {
    return join(this.root, 'controller.previous.log');
  }
  /** The bearer token every MCP endpoint of this controller requires (unless up --no-auth). */
  get endpointTokenFile(): string {
    return join(this.root, 'endpoint.token');
  }
  /** The web console's address and API token (what `apiary ui` reads). */
  get consoleFile(): string {
    return join(this.root, 'console.json');
  }
  /** The console's live sessions, by the SHA-256 of each token (never a token). */
  get consoleSessionsFile(): string {
    return join(this.root, 'console-sessions.json');
  }
  /** One-time login codes waiting to be used, one file each, named by the SHA-256 of the code. */
  get consoleLoginsDir(): string {
    return join(this.root, 'console-logins');
  }
  /** What `client config --write` wrote into which client's file (for --remove). */
  get clientsFile(): string {
    return join(this.root, 'clients.json');
  }
  get stateKeyFile(): string {
    return join(this.root, 'state.key');
  }
  /** The audit log: `audit.jsonl`, rotated to `audit.jsonl.1` (newest) ... `.N`, and the head anchor. */
  get auditDir(): string {
    return join(this.root, 'audit');
  }
  get auditFile(): string {
    return join(this.auditDir, AUDIT_FILE);
  }
  /** Where the audit chain ends and starts, keyed (written atomically at every sync and rotation). */
  get auditHeadFile(): string {
    return join(this.auditDir, 'audit.head');
  }
  /**
   * The key of the audit chain's macs. Beside the audit folder, not in it: a
   * copy of the folder (shipped, backed up) carries no key, so whoever edits
   * that copy cannot seal a line.
   */
  get auditKeyFile(): string {
    return join(this.root, 'audit.key');
  }
  /** Hosted servers' OAuth tokens (one sealed file per server) and the clients registered with each issuer. */
  get oauthDir(): string {
    return join(this.root, 'oauth');
  }
  oauthTokensFile(name: string): string {
    return join(this.oauthDir, `${fileSafeName(name)}.json`);
  }
  get oauthClientsDir(): string {
    return join(this.oauthDir, 'clients');
  }
  /** Every folder apiary writes files into atomically (where a killed writer may leave a temp file). */
  writtenFolders(): string[] {
    return [this.root, this.processDir, this.requestsDir, this.auditDir, this.oauthDir, this.oauthClientsDir, this.toolsDir, ...KINDS.map((k) => this.statusKindDir(k))];
  }
  /** The tool definitions each server listed last, and those `apiary tools lock|approve` pinned. */
  get toolsDir(): string {
    return join(this.root, 'tools');
  }
  get requestsDir(): string {
    return join(this.root, 'requests');
  }
  get reconcileRequestFile(): string {
    return join(this.requestsDir, 'reconcile-source.json');
  }
  /** Following a git repository: the mirror, one folder per revision, and the `current` link. */
  get gitDir(): string {
    return join(this.root, 'git');
  }
  /** The link to the revision that runs (what the controller reads manifests from when following git). */
  get gitCurrent(): string {
    return join(this.gitDir, 'current');
  }
  /** What `up --git URL` declares its GitRepository in (the source directory of a URL). */
  get gitSourceDir(): string {
    return join(this.root, 'source');
  }
  /** The GitRepository `up --git URL` writes: there, the state directory knows it follows that repository. */
  get gitFlagSource(): string {
    return join(this.gitSourceDir, FLAG_SOURCE_FILE);
  }
  restartRequestFile(name: string): string {
    return join(this.requestsDir, `restart-${fileSafeName(name)}.json`);
  }
  /** The folder of one kind's status files. */
  statusKindDir(kind: Kind): string {
    return join(this.statusDir, kind.toLowerCase());
  }
}
