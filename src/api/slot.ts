/**
 * Which of a server's processes: the one serving (`current`), a new one
 * started beside it for a rolling update (`next`), or the one it replaced,
 * finishing what it was doing before it stops (`old`). Outside a rollout a
 * server has only a current process.
 */
export type Slot = 'current' | 'next' | 'old';
