// The floor: a bare MCP SDK v2 server with one hand-written tool that forwards to the upstream with
// no guards at all (no validation beyond the SDK's, no audit, no scrubbing). Served exactly like
// mcp-warden (serveStdio / createMcpHandler), so the difference between the two is the pipeline.
import { createServer } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { Agent } from 'undici';
import { z } from 'zod';

const [mode, upstream, key, port] = process.argv.slice(2);
const agent = new Agent({ connections: 64 });
const base = new URL(upstream);

function factory() {
  const server = new McpServer({ name: 'floor', version: '1.0.0' });
  server.registerTool(
    'searchProducts',
    {
      description: 'Search products',
      inputSchema: z.object({ q: z.string(), inStock: z.boolean().optional() }),
    },
    async ({ q }) => {
      const res = await agent.request({
        origin: base.origin,
        path: `${base.pathname}/products/search?q=${encodeURIComponent(q)}`,
        method: 'GET',
        headers: { 'x-shop-key': key },
      });
      const text = await res.body.text();
      return { content: [{ type: 'text', text }], structuredContent: { result: JSON.parse(text) } };
    },
  );
  return server;
}

if (mode === 'stdio') serveStdio(factory);
else {
  const handle = toNodeHandler(createMcpHandler(factory));
  createServer((req, res) => handle(req, res)).listen(Number(port), '127.0.0.1', () =>
    process.stderr.write(`floor listening on ${port}\n`),
  );
}
