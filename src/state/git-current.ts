/**
 * The `current` link of a followed repository, in the state directory: the
 * git source writes it, readers of status read it. Here with the state
 * directory's layout, so reading it needs no git and no import of the source.
 */
import { readlink } from 'node:fs/promises';

const SHA = /^[0-9a-f]{40}$/;

/** What a `current` link points at: `revisions/<sha>[/<path>]`, read without git. */
export async function currentTarget(link: string): Promise<{ sha: string; path: string } | undefined> {
  const target = await readlink(link).catch(() => undefined);
  const [first, sha, ...rest] = target?.split('/') ?? [];
  if (first !== 'revisions' || sha === undefined || !SHA.test(sha)) return undefined;
  return { sha, path: rest.join('/') };
}
