/**
 * `fn` over every item with at most `limit` calls in flight, results in item
 * order. For many small I/O calls (a stat per manifest file): one after the
 * other they pay a thread-pool round trip each; all at once they flood it.
 */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
