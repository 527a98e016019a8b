/**
 * A repository URL as it may be shown. Here, at the bottom, because every
 * layer that names a repository (state paths, status views, file edits' errors,
 * the git source) shows it, and none of them may import the git source.
 */

/** The URL as it may be shown: credentials in an http(s) URL (https://user:token@host) are never printed. */
export function redactUrl(url: string): string {
  return url.replace(/^(https?:\/\/)[^/@]*@/i, (_, scheme: string) => `${scheme}***@`);
}
