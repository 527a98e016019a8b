/** A problem found in a manifest, located to its file, line and column. */
export interface ManifestError {
  /** Path as shown to the user (relative to where the directory was named). */
  file: string;
  line: number;
  col: number;
  /** Dotted field path, when the error belongs to a field. */
  field?: string;
  message: string;
  /**
   * PlaintextValues: a warning a caller may word for its own context.
   * Unreadable: the file (or folder) could not be read at all (permissions,
   * I/O): not a statement about its resources, which a controller keeps as they were.
   */
  code?: 'PlaintextValues' | 'Unreadable';
}

export function formatManifestError(e: ManifestError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}
