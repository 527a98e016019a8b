import type { MCPServerManifest, SecretManifest } from '../api/manifests.js';

/** Where a document came from. */
export interface SourceRef {
  /** Absolute path of the file. */
  path: string;
  /** Path as shown to the user. */
  file: string;
  /** 0-based index of the document within its file. */
  index: number;
  line: number;
  col: number;
}

export interface MCPServerResource {
  kind: 'MCPServer';
  name: string;
  manifest: MCPServerManifest;
  source: SourceRef;
}

export interface SecretResource {
  kind: 'Secret';
  name: string;
  manifest: SecretManifest;
  source: SourceRef;
}

export type Resource = MCPServerResource | SecretResource;
