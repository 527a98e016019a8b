import type { GitRepositoryManifest, MCPServerManifest, SecretManifest } from '../api/manifests.js';

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

/** Where the manifests come from (step 12): declared in a local directory, never in the repository it names. */
export interface GitRepositoryResource {
  kind: 'GitRepository';
  name: string;
  manifest: GitRepositoryManifest;
  source: SourceRef;
}

export type Resource = MCPServerResource | SecretResource | GitRepositoryResource;
