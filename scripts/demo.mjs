// `npm start`: builds if needed, starts the demo shop API and mcp-warden in front of it over
// Streamable HTTP, and prints how to connect Claude Desktop, Cursor and the MCP Inspector.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startShop } from '../examples/shop/server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}dist/cli/main.js`;
// The demo's own files (its audit) go to an ignored folder of the checkout: git status stays clean.
const demoDir = resolve(process.env.DEMO_DIR ?? join(root, '.demo'));
const audit = join(demoDir, 'audit.jsonl');
const spec = `${root}examples/shop/openapi.yaml`;
const shopPort = Number(process.env.SHOP_PORT ?? 4010);
const port = Number(process.env.PORT ?? 3333);
const adminPort = Number(process.env.ADMIN_PORT ?? 9090);
// `npm start -- --policy`: the demo policy (writes, a confirmed delete, the admin API).
const withPolicy = process.argv.includes('--policy');
const policy = `${root}examples/shop/warden.yaml`;
const adminToken = process.env.MCP_WARDEN_ADMIN_TOKEN ?? 'demo-admin-token-0123456789';

// (An older build without the state-dir module is rebuilt too.)
if (!existsSync(cli) || !existsSync(`${root}dist/lib/state-dir.js`)) {
  process.stderr.write('building mcp-warden (first run)…\n');
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// Imported once built: the banner says where the stdio snippet's audit will go, as the CLI decides it.
const { AUDIT_FILE_NAME, specDirName, stateRoots } = await import('../dist/lib/state-dir.js');

const key = process.env.SHOP_KEY ?? 'demo-shop-key-0123456789';
const shop = await startShop({ port: shopPort, key }).catch((e) => {
  // A taken port is the common failure here: name it and the variable that moves it, no stack trace.
  const why =
    e?.code === 'EADDRINUSE'
      ? `port ${shopPort} is already in use (EADDRINUSE): stop the other process (another \`npm start\`?) or choose another with SHOP_PORT=<n>`
      : e?.code === 'EACCES'
        ? `no permission to listen on port ${shopPort} (EACCES): choose a port above 1023 with SHOP_PORT=<n>`
        : `cannot start the demo shop on port ${shopPort} (${e?.code ?? e?.message ?? 'unknown error'})`;
  process.stderr.write(`error CONFIG_INVALID: ${why}\n`);
  process.exit(2);
});
mkdirSync(demoDir, { recursive: true, mode: 0o700 });
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
    audit,
    ...(withPolicy ? ['--policy', policy, '--admin-port', String(adminPort)] : []),
  ],
  {
    cwd: process.cwd(),
    env: { ...process.env, MCP_WARDEN_CRED_SHOPKEY: key, SHOP_KEY: key, MCP_WARDEN_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);
let started = false;
let logged = '';
warden.stderr.on('data', (d) => {
  process.stderr.write(d);
  if (!started) logged += String(d);
  if (!started && logged.includes('MCP endpoint')) {
    started = true;
    printHelp();
  }
});
warden.on('exit', async (code) => {
  // mcp-warden names its flag (--port, --admin-port); in the demo the variable sets it: name that.
  if (code === 2 && !started) process.stderr.write(`${portHint(logged)}\n`);
  await shop.close();
  process.exit(code ?? 0);
});

/** The demo's variable for the port mcp-warden could not bind, and how to move it. */
function portHint(stderr) {
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --admin-port\b/.test(stderr))
    return `demo: the admin port ${adminPort} is ADMIN_PORT: stop the other process (another \`npm start\`?) or run ADMIN_PORT=<n> npm start -- --policy`;
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --port\b/.test(stderr))
    return `demo: the MCP port ${port} is PORT: stop the other process (another \`npm start\`?) or run PORT=<n> npm start`;
  return 'demo: choose other ports with PORT=<n>, ADMIN_PORT=<n> or SHOP_PORT=<n> (npm start)';
}
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
  // Where the stdio snippet's audit goes (no --audit-file: the per-user state directory, docs/files.md);
  // only named here, not created.
  const stateRoot = stateRoots()[0];
  const stdioAudit = stateRoot
    ? join(stateRoot, specDirName(spec), AUDIT_FILE_NAME)
    : 'no state directory (HOME is not set): add "--audit-file", "<path>" to its args';
  process.stdout.write(`
  Demo shop API      ${shop.url}   (needs X-Shop-Key; only mcp-warden has it)
  mcp-warden (MCP)   ${url}
  Audit log          ${audit}
                     check it: node ${cli} audit verify ${audit}

  MCP Inspector:   npx @modelcontextprotocol/inspector
                   then Transport "Streamable HTTP", URL ${url}

  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "acme-shop": { "url": "${url}" } } }

  Claude Desktop (claude_desktop_config.json; stdio, keep this demo running for the shop API):
${JSON.stringify(stdio, null, 2).replace(/^/gm, '    ')}
    (its audit: ${stdioAudit})

  Try: "find wireless mice in stock", "list the open orders of customer c_1003".
${
  withPolicy
    ? `  Policy ${policy}: placing orders is on; deleting a customer needs your approval first:
    a client that can ask you (elicitation) asks in the client; any other (Cursor's URL setup, the
    Inspector, a 2025-11-25 client over HTTP) parks the call until you approve it on the dashboard
    (Approvals) or with: node ${cli} approvals approve <id> --reason "…", then the agent repeats it.
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
