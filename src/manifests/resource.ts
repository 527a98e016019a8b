import type { AccessPolicyManifest, GatewayManifest, GitRepositoryManifest, MCPServerManifest, SecretManifest } from '../api/manifests.js';

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

/** How apiary's endpoints authenticate, audit and limit (step 17): one per directory, named default. */
export interface GatewayResource {
  kind: 'Gateway';
  name: string;
  manifest: GatewayManifest;
  source: SourceRef;
  /** Where each spec.rateLimits.perTool rule is written, so a warning names the place to edit. */
  perToolAt?: { line: number; col: number }[];
}

/** Who may use what (step 17). `ruleLines`: the line of each rule, so a decision names the place to edit. */
export interface AccessPolicyResource {
  kind: 'AccessPolicy';
  name: string;
  manifest: AccessPolicyManifest;
  source: SourceRef;
  ruleLines: number[];
}

export type Resource = MCPServerResource | SecretResource | GitRepositoryResource | GatewayResource | AccessPolicyResource;
