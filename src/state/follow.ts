/**
 * Following a server's log file as it grows (`logs -f`, the console's live
 * logs): what is appended after `from`, in chunks of at most 1 MiB, and a mark
 * when the file starts over (a new run replaces it, the old one becoming the
 * previous log; a rotation truncates it).
 */
import { open, stat } from 'node:fs/promises';

const CHUNK_BYTES = 1024 * 1024;

export type FollowEvent = { restarted: true } | { text: string };

export async function* followFile(path: string, from: number, options: { pollMs: number; stopped: () => boolean }): AsyncGenerator<FollowEvent> {
  let offset = from;
  let inode = (await stat(path).catch(() => undefined))?.ino;
  while (!options.stopped()) {
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
    const info = await stat(path).catch(() => undefined);
    // Gone for a moment (being replaced): look again at the next poll.
    if (info === undefined) continue;
    if (info.ino !== inode || info.size < offset) {
      inode = info.ino;
      offset = 0;
      yield { restarted: true };
    }
    if (info.size === offset) continue;
    const handle = await open(path, 'r');
    try {
      while (offset < info.size && !options.stopped()) {
        const buffer = Buffer.alloc(Math.min(info.size - offset, CHUNK_BYTES));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        yield { text: buffer.subarray(0, bytesRead).toString('utf8') };
      }
    } finally {
      await handle.close();
    }
  }
}
