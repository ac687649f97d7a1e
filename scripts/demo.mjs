// `npm start`: builds if needed, starts two demo APIs (a shop and a pet store) and mcp-warden in
// front of both, one endpoint over Streamable HTTP (an API set: tools named shop_… and pets_…), and
// prints how to connect Claude Desktop, Cursor and the MCP Inspector.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { startPetstore } from '../examples/petstore/server.mjs';
import { startShop } from '../examples/shop/server.mjs';

// `npm start -- --oauth`: the per-user OAuth demo instead (scripts/demo-oauth.mjs, `npm run demo:oauth`).
// It runs until it exits by itself (Ctrl-C): this module goes no further.
if (process.argv.includes('--oauth')) {
  await import('./demo-oauth.mjs');
  await new Promise(() => {});
}

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}dist/cli/main.js`;
// The demo's own files (its audit) go to an ignored folder of the checkout: git status stays clean.
const demoDir = resolve(process.env.DEMO_DIR ?? join(root, '.demo'));
const audit = join(demoDir, 'audit.jsonl');
const spec = `${root}examples/shop/openapi.yaml`;
const petsSpec = `${root}examples/petstore/openapi.yaml`;
const shopPort = Number(process.env.SHOP_PORT ?? 4010);
const petsPort = Number(process.env.PETS_PORT ?? 4011);
const port = Number(process.env.PORT ?? 3333);
const adminPort = Number(process.env.ADMIN_PORT ?? 9090);
// `npm start -- --policy`: the demo policy, an `apis:` set (writes, a confirmed delete, the admin API).
const withPolicy = process.argv.includes('--policy');
const setPolicy = `${root}examples/gateway.yaml`;
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
const petsKey = process.env.PETS_KEY ?? 'demo-pets-key-0123456789';
/** A taken port is the common failure here: name it and the variable that moves it, no stack trace. */
const cannotBind = (what, p, variable) => (e) => {
  const why =
    e?.code === 'EADDRINUSE'
      ? `port ${p} is already in use (EADDRINUSE): stop the other process (another \`npm start\`?) or choose another with ${variable}=<n>`
      : e?.code === 'EACCES'
        ? `no permission to listen on port ${p} (EACCES): choose a port above 1023 with ${variable}=<n>`
        : `cannot start the demo ${what} on port ${p} (${e?.code ?? e?.message ?? 'unknown error'})`;
  process.stderr.write(`error CONFIG_INVALID: ${why}\n`);
  process.exit(2);
};
const shop = await startShop({ port: shopPort, key }).catch(cannotBind('shop', shopPort, 'SHOP_PORT'));
const pets = await startPetstore({ port: petsPort, key: petsKey }).catch(async (e) => {
  await shop.close();
  cannotBind('pet store', petsPort, 'PETS_PORT')(e);
});
mkdirSync(demoDir, { recursive: true, mode: 0o700 });
const policy = withPolicy ? policyForThisRun() : undefined;
// Without the policy, the set is given by flags (one --api per API) and each API's credential by
// its variable, MCP_WARDEN_CRED_<API>_<SCHEME>; with it, the policy's apis: says all of that.
const apiArgs = policy
  ? ['--policy', policy, '--admin-port', String(adminPort)]
  : ['--api', `shop=${spec},${shop.url}`, '--api', `pets=${petsSpec},${pets.url}`];
const credEnv = policy
  ? { SHOP_KEY: key, PETS_KEY: petsKey }
  : { MCP_WARDEN_CRED_SHOP_SHOPKEY: key, MCP_WARDEN_CRED_PETS_PETSKEY: petsKey };
const warden = spawn(
  process.execPath,
  [cli, 'serve', ...apiArgs, '--port', String(port), '--audit-file', audit],
  {
    cwd: process.cwd(),
    env: { ...process.env, ...credEnv, MCP_WARDEN_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);

/**
 * examples/gateway.yaml names the APIs at their default ports. On other ports (SHOP_PORT, PETS_PORT)
 * the demo serves a copy in its folder with this run's base URLs, comments kept.
 */
function policyForThisRun() {
  const doc = parseDocument(readFileSync(setPolicy, 'utf8'));
  if (
    doc.getIn(['apis', 'shop', 'baseUrl']) === shop.url &&
    doc.getIn(['apis', 'pets', 'baseUrl']) === pets.url
  )
    return setPolicy;
  const copy = join(demoDir, 'gateway.yaml');
  doc.setIn(['apis', 'shop', 'baseUrl'], shop.url);
  doc.setIn(['apis', 'pets', 'baseUrl'], pets.url);
  // Specs are read relative to the policy file: the copy names them in full.
  for (const api of ['shop', 'pets'])
    doc.setIn(['apis', api, 'spec'], resolve(dirname(setPolicy), doc.getIn(['apis', api, 'spec'])));
  doc.set('$schema', resolve(dirname(setPolicy), doc.get('$schema')));
  writeFileSync(copy, doc.toString(), { mode: 0o600 });
  return copy;
}
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
  await Promise.all([shop.close(), pets.close()]);
  process.exit(code ?? 0);
});

/** The demo's variable for the port mcp-warden could not bind, and how to move it. */
function portHint(stderr) {
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --admin-port\b/.test(stderr))
    return `demo: the admin port ${adminPort} is ADMIN_PORT: stop the other process (another \`npm start\`?) or run ADMIN_PORT=<n> npm start -- --policy`;
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --port\b/.test(stderr))
    return `demo: the MCP port ${port} is PORT: stop the other process (another \`npm start\`?) or run PORT=<n> npm start`;
  return 'demo: choose other ports with PORT=<n>, ADMIN_PORT=<n>, SHOP_PORT=<n> or PETS_PORT=<n> (npm start)';
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => warden.kill(sig));

function printHelp() {
  const url = `http://127.0.0.1:${port}/mcp`;
  const stdio = {
    mcpServers: {
      'warden-demo': {
        command: process.execPath,
        args: [cli, 'serve', '--stdio', ...(policy ? ['--policy', policy] : apiArgs)],
        env: credEnv,
      },
    },
  };
  // Where the stdio snippet's audit goes (no --audit-file: the per-user state directory, docs/files.md);
  // only named here, not created.
  const stateRoot = stateRoots()[0];
  const stdioAudit = stateRoot
    ? join(stateRoot, specDirName(policy ?? spec), AUDIT_FILE_NAME)
    : 'no state directory (HOME is not set): add "--audit-file", "<path>" to its args';
  process.stdout.write(`
  Demo shop API      ${shop.url}   (needs X-Shop-Key; only mcp-warden has it)
  Demo pet store     ${pets.url}   (needs X-Pets-Key; only mcp-warden has it)
  mcp-warden (MCP)   ${url}   one endpoint, both APIs: shop_… and pets_… tools
  Audit log          ${audit}
                     check it: node ${cli} audit verify ${audit}

  MCP Inspector:   npx @modelcontextprotocol/inspector
                   then Transport "Streamable HTTP", URL ${url}

  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "warden-demo": { "url": "${url}" } } }

  Claude Desktop (claude_desktop_config.json; stdio, keep this demo running for the shop API):
${JSON.stringify(stdio, null, 2).replace(/^/gm, '    ')}
    (its audit: ${stdioAudit})

  Try: "find wireless mice in stock", "list the open orders of customer c_1003",
       "which cats are up for adoption?" (the shop's key never reaches the pet store, nor the reverse).
${
  withPolicy
    ? `  Policy ${policy}${policy === setPolicy ? '' : ` (${setPolicy} with this run's ports)`}:
    two APIs under apis:, each with its own credential and rules. Placing orders and adoption
    requests are on; deleting a customer needs your approval first:
    a client that can ask you (elicitation) asks in the client; any other (Cursor's URL setup, the
    Inspector, a 2025-11-25 client over HTTP) parks the call until you approve it on the dashboard
    (Approvals) or with: node ${cli} approvals approve <id> --reason "…", then the agent repeats it.
  Dashboard http://127.0.0.1:${adminPort}/ui/ (admin token: ${adminToken})
  Admin API ${`http://127.0.0.1:${adminPort}`}: try
    MCP_WARDEN_ADMIN_TOKEN=${adminToken} MCP_WARDEN_ADMIN_URL=http://127.0.0.1:${adminPort} \\
      node ${cli} tools disable shop_createOrder      (or: mode read-only, tools list --api pets)
  Edit the policy file while this runs: valid edits apply at once.`
    : `  Writes, deletes, the CSV export and the admin endpoint are hidden by the read-only defaults.
  npm start -- --policy   serves the demo policy (${setPolicy}): orders, adoptions,
                          a confirmed delete, runtime control.`
}
  Ctrl-C stops all three.
`);
}
