/**
 * node:fs/promises as the start-up snapshot's get and validate see it
 * (scripts/bundle.mjs puts this module in its place in their bundle only):
 * the calls that read (readdir, readFile, stat, lstat, readlink, realpath)
 * are made blocking, each wrapped in an async function, so a caller still
 * gets a promise and a failure still comes as its rejection, with the same
 * error (code, syscall, path, message). Everything else is node's own.
 *
 * Why: a one-shot verb reads a few small files, and each promise call is a
 * trip to libuv's thread pool and back (its four threads started by the
 * first one) and a turn of the event loop; a blocking read is a system call.
 * Measured: a snapshot that only makes a get's dozen reads, 3.6 ms of wall
 * time as promises, 0.4-1.5 ms blocking; apiary's own get, 1.1 ms less a
 * start with them blocking. A `get --watch`, which runs for long,
 * reads the same few files each time, so blocking costs it nothing either.
 */
import * as fs from 'node:fs';

export * from 'node:fs/promises';

type Args<F> = F extends (...args: infer A) => unknown ? A : never;

export async function readdir(...args: Args<typeof fs.readdirSync>): Promise<ReturnType<typeof fs.readdirSync>> {
  return fs.readdirSync(...args);
}

export async function readFile(...args: Args<typeof fs.readFileSync>): Promise<ReturnType<typeof fs.readFileSync>> {
  return fs.readFileSync(...args);
}

export async function stat(...args: Args<typeof fs.statSync>): Promise<ReturnType<typeof fs.statSync>> {
  return fs.statSync(...args);
}

export async function lstat(...args: Args<typeof fs.lstatSync>): Promise<ReturnType<typeof fs.lstatSync>> {
  return fs.lstatSync(...args);
}

export async function readlink(...args: Args<typeof fs.readlinkSync>): Promise<ReturnType<typeof fs.readlinkSync>> {
  return fs.readlinkSync(...args);
}

/** The promise realpath is the system's realpath(3), as realpathSync.native is (realpathSync is a JavaScript walk). */
export async function realpath(...args: Args<typeof fs.realpathSync.native>): Promise<ReturnType<typeof fs.realpathSync.native>> {
  return fs.realpathSync.native(...args);
}
