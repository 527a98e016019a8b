/**
 * What a restart really does to a server, said before it is done: that
 * depends on how the server is rolled (spec.strategy; a rolling update is
 * for stdio servers only) and on what runs now (a Stuck or suspended server
 * has no process to restart). The reconciler's rules, in words: see
 * planServer in src/reconcilers/mcpserver-plan.ts.
 */
import type { ApiObject, ServerSpec } from './types.js';

export interface RestartEffect {
  /** What happens, in a sentence or two. */
  text: string;
  /** Whether the restart changes anything at all now. */
  acts: boolean;
}

interface Spec extends ServerSpec {
  strategy?: { type?: string };
  remote?: { url?: string };
}

function stalledWhy(server: ApiObject): string {
  const stalled = server.status?.conditions?.find((c) => c.type === 'Stalled' && c.status === 'True');
  return stalled?.message ? ` (${stalled.message})` : '';
}

/** The restart's effect on `server`; `missing` names the secrets it needs that are not there. */
export function restartEffect(server: ApiObject, missing: readonly string[]): RestartEffect {
  const spec = server.spec as Spec | undefined;
  const phase = server.status?.phase;
  const needs = missing.join(', ');
  if (spec?.remote !== undefined) return { acts: false, text: 'A hosted server runs no process here: there is nothing to restart.' };
  if (spec?.suspend === true || phase === 'Suspended') return { acts: false, text: 'It is suspended: nothing runs, so a restart does nothing. Resume starts it.' };
  if (phase === 'Stuck') {
    const until = missing.length > 0 ? `until ${needs} ${missing.length === 1 ? 'is' : 'are'} back` : 'until what it waits for is fixed';
    return { acts: false, text: `Nothing is running: it is Stuck${stalledWhy(server)}. A restart does nothing ${until}; then it starts by itself.` };
  }
  if (missing.length > 0) return { acts: false, text: `It needs ${needs}, which ${missing.length === 1 ? 'is' : 'are'} missing: apiary keeps it running rather than stop a server that could not start again.` };
  if (phase === 'CrashLoopBackOff' || phase === 'Failed' || phase === 'Completed') {
    return { acts: true, text: `It is not running (${phase}): a restart starts it now, without waiting for a back-off.` };
  }
  const stdio = (spec?.transport ?? 'stdio') === 'stdio';
  const strategy = spec?.strategy?.type ?? (stdio ? 'RollingUpdate' : 'Recreate');
  if (stdio && strategy === 'RollingUpdate') {
    return { acts: true, text: 'Rolling update: a new process starts beside the running one and takes over once it answers the MCP handshake. Calls keep going to the old one until then: none is lost.' };
  }
  const why = strategy === 'Recreate' ? (spec?.strategy?.type === 'Recreate' ? 'strategy Recreate' : 'an HTTP server is recreated') : 'a rolling update is for stdio servers only';
  return { acts: true, text: `Recreate (${why}): the server is stopped, then started again. Calls in flight are lost, and calls fail until it is back.` };
}
