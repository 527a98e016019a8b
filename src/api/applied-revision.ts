/**
 * `status.lastAppliedRevision` on every resource that comes from a git
 * repository: the revision whose manifests the controller last reconciled it
 * against. Each reconciler sets it where it makes the status, from the
 * revision its desired-state entry was read from. A server still running an
 * older generation because its update cannot start yet (a missing secret, a
 * failed rollout, an invalid manifest), or whose new process is still
 * starting beside the old one (a rolling update), keeps the revision it was
 * applied from: status never claims a commit runs before it does.
 */
import { findCondition, type MCPServerStatus } from './status.js';

/** Stalled reasons under which a running server is not (yet) the one its manifest asks for. */
const HELD_BACK = new Set(['SecretNotFound', 'SecretKeyNotFound', 'SecretDecryptFailed', 'RolloutFailed', 'InvalidManifest']);

/** The revision a server's status names: `revision` once it runs what that revision asks for, else the one it was applied from. */
export function serverAppliedRevision(status: MCPServerStatus, revision: string | undefined, before: string | undefined): string | undefined {
  const stalled = findCondition(status.conditions, 'Stalled');
  const rolling = findCondition(status.conditions, 'Reconciling');
  const running = status.pid !== undefined || status.pod !== undefined;
  const heldBack = stalled?.status === 'True' && HELD_BACK.has(stalled.reason);
  // A rolling update: the old process serves until the new one answers; the revision moves with the switch.
  const rollingOut = rolling?.status === 'True' && rolling.reason === 'RollingUpdate';
  if (running && (heldBack || rollingOut) && before !== undefined) return before;
  return revision;
}

/** `status` with `lastAppliedRevision` set to `revision`, or as it is when there is none. */
export function withRevision<S extends object>(status: S, revision: string | undefined): S & { lastAppliedRevision?: string } {
  return revision === undefined ? status : { ...status, lastAppliedRevision: revision };
}
