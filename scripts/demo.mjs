// `npm start`: builds if needed, starts the demo shop API and mcp-warden in front of it over
// Streamable HTTP, and prints how to connect Claude Desktop, Cursor and the MCP Inspector.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startShop } from '../examples/shop/server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}dist/cli/main.js`;
const spec = `${root}examples/shop/openapi.yaml`;
const shopPort = Number(process.env.SHOP_PORT ?? 4010);
const port = Number(process.env.PORT ?? 3333);
const adminPort = Number(process.env.ADMIN_PORT ?? 9090);
// `npm start -- --policy`: the demo policy (writes, a confirmed delete, the admin API).
const withPolicy = process.argv.includes('--policy');
const policy = `${root}examples/shop/warden.yaml`;
const adminToken = process.env.MCP_WARDEN_ADMIN_TOKEN ?? 'demo-admin-token-0123456789';

if (!existsSync(cli)) {
  process.stderr.write('building mcp-warden (first run)…\n');
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const key = process.env.SHOP_KEY ?? 'demo-shop-key-0123456789';
const shop = await startShop({ port: shopPort, key }).catch((e) => {
  // A taken port is the common failure here: name it and the variable that moves it, no stack trace.
  const why =
    e?.code === 'EADDRINUSE'
      ? `port ${shopPort} is already in use (EADDRINUSE): stop the other process or choose another with SHOP_PORT=<n>`
      : e?.code === 'EACCES'
        ? `no permission to listen on port ${shopPort} (EACCES): choose a port above 1023 with SHOP_PORT=<n>`
        : `cannot start the demo shop on port ${shopPort} (${e?.code ?? e?.message ?? 'unknown error'})`;
  process.stderr.write(`error CONFIG_INVALID: ${why}\n`);
  process.exit(2);
});
const warden = spawn(
  process.execPath,
  [
    cli,
    'serve',
    '--spec',
    spec,
    '--base-url',
    shop.url,
    '--port',
    String(port),
    '--audit-file',
    'demo-audit.jsonl',
    ...(withPolicy ? ['--policy', policy, '--admin-port', String(adminPort)] : []),
  ],
  {
    cwd: process.cwd(),
    env: { ...process.env, MCP_WARDEN_CRED_SHOPKEY: key, SHOP_KEY: key, MCP_WARDEN_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);
let started = false;
warden.stderr.on('data', (d) => {
  process.stderr.write(d);
  if (!started && String(d).includes('MCP endpoint')) {
    started = true;
    printHelp();
  }
});
warden.on('exit', async (code) => {
  // mcp-warden names the flag (--port, --admin-port); in the demo those are set by PORT and ADMIN_PORT.
  if (code === 2 && !started)
    process.stderr.write(
      'demo: choose other ports with PORT=<n>, ADMIN_PORT=<n> or SHOP_PORT=<n> (npm start)\n',
    );
  await shop.close();
  process.exit(code ?? 0);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => warden.kill(sig));

function printHelp() {
  const url = `http://127.0.0.1:${port}/mcp`;
  const stdio = {
    mcpServers: {
      'acme-shop': {
        command: process.execPath,
        args: [
          cli,
          'serve',
          '--stdio',
          '--spec',
          spec,
          '--base-url',
          shop.url,
          ...(withPolicy ? ['--policy', policy] : []),
        ],
        env: withPolicy ? { SHOP_KEY: key } : { MCP_WARDEN_CRED_SHOPKEY: key },
      },
    },
  };
  process.stdout.write(`
  Demo shop API      ${shop.url}   (needs X-Shop-Key; only mcp-warden has it)
  mcp-warden (MCP)   ${url}
  Audit log          ./demo-audit.jsonl

  MCP Inspector:   npx @modelcontextprotocol/inspector
                   then Transport "Streamable HTTP", URL ${url}

  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "acme-shop": { "url": "${url}" } } }

  Claude Desktop (claude_desktop_config.json; stdio, keep this demo running for the shop API):
${JSON.stringify(stdio, null, 2).replace(/^/gm, '    ')}

  Try: "find wireless mice in stock", "list the open orders of customer c_1003".
${
  withPolicy
    ? `  Policy ${policy}: placing orders is on; deleting a customer asks you first.
  Dashboard http://127.0.0.1:${adminPort}/ui/ (admin token: ${adminToken})
  Admin API ${`http://127.0.0.1:${adminPort}`}: try
    MCP_WARDEN_ADMIN_TOKEN=${adminToken} MCP_WARDEN_ADMIN_URL=http://127.0.0.1:${adminPort} \\
      node ${cli} tools disable createOrder      (or: mode read-only, tools list)
  Edit the policy file while this runs: valid edits apply at once.`
    : `  Writes, deletes, the CSV export and the admin endpoint are hidden by the read-only defaults.
  npm start -- --policy   serves the demo policy: orders, a confirmed delete, runtime control.`
}
  Ctrl-C stops both.
`);
}
