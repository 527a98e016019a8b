/** The name of the tool pins' file at the manifest directory's root (src/manifests/tools-lock.ts reads and writes it; the loader skips it). */
export const TOOLS_LOCK_FILE = 'tools.lock.yaml';
