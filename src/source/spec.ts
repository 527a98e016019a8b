/**
 * A GitRepository manifest turned into what fetching needs, and the few
 * rules about its words: durations as Flux writes them, revisions as Flux
 * prints them (`main@sha1:<sha>`), and git's messages shown without credentials.
 */
import type { GitRepositoryResource } from '../manifests/resource.js';
import { parseDuration } from '../util/duration.js';
import { redactUrl } from '../util/redact-url.js';

export type GitRef =
  | { kind: 'default' }
  | { kind: 'branch' | 'tag' | 'name'; value: string }
  | { kind: 'commit'; value: string };

export interface GitSourceSpec {
  name: string;
  url: string;
  ref: GitRef;
  /** Folder inside the repository ('' for the top). */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  suspend: boolean;
}

export const DEFAULT_INTERVAL_MS = 60_000;
export const DEFAULT_TIMEOUT_MS = 60_000;

export function sourceSpec(resource: GitRepositoryResource): GitSourceSpec {
  const spec = resource.manifest.spec;
  const r = spec.ref;
  const ref: GitRef =
    r?.commit !== undefined ? { kind: 'commit', value: r.commit }
    : r?.tag !== undefined ? { kind: 'tag', value: r.tag }
    : r?.branch !== undefined ? { kind: 'branch', value: r.branch }
    : r?.name !== undefined ? { kind: 'name', value: r.name }
    : { kind: 'default' };
  return {
    name: resource.name,
    url: spec.url,
    ref,
    path: (spec.path ?? '').replace(/^\.\/?/, '').replace(/\/+$/, ''),
    intervalMs: Math.max(1000, parseDuration(spec.interval ?? '') ?? DEFAULT_INTERVAL_MS),
    timeoutMs: Math.max(1000, parseDuration(spec.timeout ?? '') ?? DEFAULT_TIMEOUT_MS),
    suspend: spec.suspend === true,
  };
}

/** Flux's revision format: `<branch or tag>@sha1:<sha>`, or `sha1:<sha>` for a pinned commit. */
export function formatRevision(refName: string | undefined, sha: string): string {
  return refName !== undefined ? `${refName}@sha1:${sha}` : `sha1:${sha}`;
}

/** The sha in a revision string. */
export function revisionSha(revision: string): string {
  return revision.slice(revision.lastIndexOf(':') + 1);
}

/** A short form for tables: `main@sha1:1a2b3c4d`. */
export function shortRevision(revision: string): string {
  const sha = revisionSha(revision);
  return `${revision.slice(0, revision.length - sha.length)}${sha.slice(0, 12)}`;
}

/** Any text that may quote the URL (git's own errors do): its credentials blanked. */
export function redactText(text: string, url: string): string {
  const shown = redactUrl(url);
  return (shown === url ? text : text.split(url).join(shown)).replace(/(https?:\/\/)[^/@\s]*@/gi, '$1***@');
}

/** Ref name written by `up --ref X`: a full sha pins a commit; anything else is a branch, else a tag. */
export function refFromFlag(text: string): { commit: string } | { name: string } {
  return /^[0-9a-f]{40}$/.test(text) ? { commit: text } : { name: text };
}
