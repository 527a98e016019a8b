/**
 * A paged MCP list (tools/list with nextCursor) walked to its end by apiary
 * itself, where it judges what a server lists as a whole (the handshake, the
 * probe, a list_changed): a tool on a later page is pinned and judged as one
 * on the first.
 */

/** One page: its items, and the cursor of the next when there is one. */
export interface ListPage<T> {
  items: readonly T[];
  nextCursor?: string;
}

/**
 * Pages a server may make apiary walk for one listing. A server that never
 * stops paging (or hands back a cursor it gave before) ends the walk there,
 * rather than holding its handshake for ever; what was read is kept.
 */
export const MAX_LIST_PAGES = 100;

/** Every item of a paged list: the first page asked without a cursor, each next one with the cursor the last gave. */
export async function allPages<T>(page: (cursor: string | undefined) => Promise<ListPage<T>>): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let n = 0; n < MAX_LIST_PAGES; n++) {
    const got = await page(cursor);
    items.push(...got.items);
    if (got.nextCursor === undefined || seen.has(got.nextCursor)) break;
    seen.add(got.nextCursor);
    cursor = got.nextCursor;
  }
  return items;
}
