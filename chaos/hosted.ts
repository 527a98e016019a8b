/**
 * A hosted MCP server for the fault harness (spec.remote): the MCP SDK's own
 * server over Streamable HTTP, in the harness's process, answering only the
 * bearer key the manifest's header carries from a secret.
 */
import { createServer, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface Hosted {
  url: string;
  /** The key it accepts; the harness changes it with the secret. */
  key: string;
  close(): Promise<void>;
}

export async function startHosted(key: string): Promise<Hosted> {
  const hosted: Hosted = { url: '', key, close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${hosted.key}`) return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"unauthorized"}');
    const mcp = new McpServer({ name: 'hosted', version: '1.0.0' });
    mcp.registerTool('noop', { description: 'Does nothing' }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hosted.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
  hosted.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return hosted;
}

/** The hosted server's manifest: its Authorization header from secret hosted/key, through $(HOSTED_KEY) (tests pass other header values). */
export function hostedYaml(url: string, header = 'Bearer $(HOSTED_KEY)'): string {
  return `apiVersion: apiary.dev/v1alpha1
kind: MCPServer
metadata:
  name: hosted
spec:
  remote:
    url: ${url}
    headers:
      - name: Authorization
        value: ${JSON.stringify(header)}
  env:
    - name: HOSTED_KEY
      valueFrom:
        secretKeyRef: { name: hosted, key: key }
`;
}
