/**
 * The container images apiary writes into spec.image for catalog packages
 * (`apiary install`), so `render` and `up --runtime kubernetes` run them on
 * the first try: the image has the runner, the runner fetches the pinned
 * package, as `npx`/`uvx` do locally. Full version tags, never `latest` or a
 * bare major, so a render today and one next month run the same runtime;
 * upgrading them is a change to this file, reviewed like any other.
 */

/**
 * Node 24, the Active LTS line, on Debian bookworm slim: npx comes with it.
 * Run as the restricted pod's uid with $HOME an emptyDir, so npx's cache
 * (~/.npm) is writable under a read-only root.
 */
export const NODE_IMAGE = 'node:24.11.1-bookworm-slim';

/**
 * uv's own image on python:3.12-slim (bookworm), uv's version pinned in the
 * tag: uvx is in it. python:3.12-slim has no uvx, and installing it when the
 * pod starts would need a writable root and the network before the server
 * runs. uvx keeps its cache and tool environments under $HOME (~/.cache/uv,
 * ~/.local/share/uv), the pod's writable emptyDir.
 */
export const PYTHON_IMAGE = 'ghcr.io/astral-sh/uv:0.12.9-python3.12-bookworm-slim';

/** By the command a catalog install writes (the runner of its registry type). */
export const RUNNER_IMAGES: ReadonlyMap<string, string> = new Map([
  ['npx', NODE_IMAGE],
  ['uvx', PYTHON_IMAGE],
]);
