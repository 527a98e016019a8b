/**
 * `status.lastAppliedRevision` on every resource that comes from a git
 * repository: the revision whose manifests the controller last reconciled it
 * against. A server still running an older generation because its update
 * cannot start yet (a missing secret, a failed rollout), or whose new
 * process is still starting beside the old one (a rolling update), keeps the
 * revision it was applied from: status never claims a commit runs before it
 * does.
 */
import { findCondition, type AnyStatus, type MCPServerStatus } from '../api/status.js';
import type { Kind } from '../api/names.js';
import type { StatusStamp } from '../state/record-book.js';

/** Stalled reasons under which a running server is not (yet) the one its manifest asks for. */
const HELD_BACK = new Set(['SecretNotFound', 'SecretKeyNotFound', 'SecretDecryptFailed', 'RolloutFailed', 'InvalidManifest']);

export function revisionStamp(revision: () => string | undefined): StatusStamp {
  return (kind: Kind, status: AnyStatus, previous: AnyStatus): AnyStatus => {
    if (kind === 'GitRepository') return status;
    const current = revision();
    const before = (previous as { lastAppliedRevision?: string }).lastAppliedRevision;
    let value = current;
    if (kind === 'MCPServer') {
      const server = status as MCPServerStatus;
      const stalled = findCondition(server.conditions, 'Stalled');
      const running = server.pid !== undefined || server.pod !== undefined;
      const rolling = findCondition(server.conditions, 'Reconciling');
      const heldBack = stalled?.status === 'True' && HELD_BACK.has(stalled.reason);
      // A rolling update: the old process serves until the new one answers; the revision moves with the switch.
      const rollingOut = rolling?.status === 'True' && rolling.reason === 'RollingUpdate';
      if (running && (heldBack || rollingOut) && before !== undefined) value = before;
    }
    return value === undefined ? status : { ...status, lastAppliedRevision: value };
  };
}
