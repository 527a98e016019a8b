/**
 * The Secret reconciler: decrypts each secret version once (through the
 * resolver) and records its keys, their form, whether they decrypt here and
 * which servers use it. Servers that depend on a secret are enqueued by the
 * controller's Secret -> MCPServer mapping, not from here.
 */
import { withRevision } from '../api/applied-revision.js';
import { specHash } from '../api/generation.js';
import { resourceKey } from '../api/names.js';
import { setCondition, type Condition, type SecretStatus } from '../api/status.js';
import { secretForms } from '../crypto/secret-data.js';
import { formatManifestError } from '../manifests/errors.js';
import type { ReconcileContext, ReconcileResult } from './context.js';

const KIND = 'Secret';

/** What status for a Secret needs, whichever runtime runs the servers. */
export type SecretContext = Pick<ReconcileContext, 'desired' | 'records' | 'secrets' | 'clock' | 'logger'>;

export class SecretReconciler {
  readonly #ctx: SecretContext;

  constructor(ctx: SecretContext) {
    this.#ctx = ctx;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    // 1. Desired state.
    const entry = ctx.desired.get(resourceKey(KIND, name));
    if (entry === undefined) {
      if (ctx.records.get(KIND, name) !== undefined) ctx.logger.info('secret removed', { secret: name });
      await ctx.records.remove(KIND, name);
      return {};
    }
    const now = new Date(ctx.clock.now()).toISOString();
    const usedBy = ctx.desired.serversUsingSecret(name);
    const previous = ctx.records.get(KIND, name)?.status as SecretStatus | undefined;
    let conditions: Condition[] = previous?.conditions ?? [];

    // 2. Invalid manifest: report where.
    if (entry.resource === undefined || entry.resource.kind !== KIND) {
      ctx.records.ensure(KIND, name);
      const message = entry.errors.map(formatManifestError).join('; ');
      const generation = ctx.records.generation(KIND, name);
      conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'InvalidManifest', message, observedGeneration: generation }, now);
      conditions = setCondition(conditions, { type: 'Stalled', status: 'True', reason: 'InvalidManifest', message, observedGeneration: generation }, now);
      await ctx.records.setStatus(KIND, name, withRevision({ observedGeneration: generation, phase: 'Invalid', conditions, keys: [], forms: {}, decryptable: false, usedBy, message } satisfies SecretStatus, entry.revision));
      return {};
    }

    // 3. Decrypt (once per version) and record what is there.
    const resource = entry.resource;
    const { labels, annotations } = resource.manifest.metadata;
    const generation = ctx.records.observeSpec(KIND, name, specHash(resource.manifest), { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) });
    const lookup = await ctx.secrets.lookup(ctx.desired, name);
    const entries = lookup.state === 'ok' ? [...lookup.entries.values()] : [];
    const failures = entries.filter((e) => e.error !== undefined);
    const forms = Object.fromEntries([...secretForms(resource)].sort(([a], [b]) => a.localeCompare(b)));
    const decryptable = failures.length === 0;
    const message = failures.map((f) => f.error!.message).join('; ');
    const reason = failures[0]?.error?.code === 'KeyMismatch' || failures[0]?.error?.code === 'KeyUnavailable' ? failures[0].error.code : 'SecretDecryptFailed';
    conditions = setCondition(
      conditions,
      decryptable
        ? { type: 'Ready', status: 'True', reason: 'Decrypted', message: `${entries.length} key(s) readable`, observedGeneration: generation }
        : { type: 'Ready', status: 'False', reason, message, observedGeneration: generation },
      now,
    );
    conditions = setCondition(
      conditions,
      decryptable
        ? { type: 'Stalled', status: 'False', reason: 'Decrypted', message: 'no intervention needed', observedGeneration: generation }
        : { type: 'Stalled', status: 'True', reason, message, observedGeneration: generation },
      now,
    );
    if (previous !== undefined && previous.observedGeneration !== generation) {
      ctx.records.event(KIND, name, 'Normal', 'Updated', `values changed (generation ${generation}); ${usedBy.length} dependant(s) to roll`);
    }
    if (!decryptable && previous?.decryptable !== false) ctx.records.event(KIND, name, 'Warning', reason, message);
    const status: SecretStatus = {
      observedGeneration: generation,
      phase: decryptable ? 'Ready' : 'DecryptFailed',
      conditions,
      keys: Object.keys(forms),
      forms,
      decryptable,
      usedBy,
      ...(decryptable ? {} : { message }),
    };
    await ctx.records.setStatus(KIND, name, withRevision(status, entry.revision));
    return {};
  }
}
