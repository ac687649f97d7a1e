// `npm run demo:oauth` (or `npm start -- --oauth`): per-user OAuth, end to end on this machine. It
// starts a local authorization server (examples/oauth/auth-server.mjs: any name signs in), the pet
// store in its mode that accepts only that server's tokens and answers as the signed-in user, and
// mcp-warden in front of it with examples/oauth/gateway.yaml (two API-key callers, alice and bob).
// Each caller's first call answers CONNECTION_REQUIRED with a link; once they have signed in and
// allowed access, their calls reach the pet store as themselves.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { startAuthServer } from '../examples/oauth/auth-server.mjs';
import { startPetstore } from '../examples/petstore/server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = `${root}dist/cli/main.js`;
// The demo's own files (audit, vault, a policy copy) go to an ignored folder of the checkout.
const demoDir = join(resolve(process.env.DEMO_DIR ?? join(root, '.demo')), 'oauth');
const audit = join(demoDir, 'audit.jsonl');
const setPolicy = `${root}examples/oauth/gateway.yaml`;
const port = Number(process.env.PORT ?? 3333);
const adminPort = Number(process.env.ADMIN_PORT ?? 9090);
const petsPort = Number(process.env.PETS_PORT ?? 4011);
const authPort = Number(process.env.AUTH_PORT ?? 4012);
const adminToken = process.env.MCP_WARDEN_ADMIN_TOKEN ?? 'demo-admin-token-0123456789';
const vaultKey = process.env.DEMO_VAULT_KEY ?? 'demo-vault-key-not-for-production-0123456789';
// The demo callers' keys; examples/oauth/gateway.yaml holds only their hashes.
const callerKeys = { alice: 'mwk_demo-alice-key-0123456789abcdef', bob: 'mwk_demo-bob-key-0123456789abcdef' };

const fail = (why) => {
  process.stderr.write(`error CONFIG_INVALID: ${why}\n`);
  process.exit(2);
};
// The authorization server must know the gateway's callback before the gateway starts.
if (!Number.isInteger(port) || port < 1 || port > 65535)
  fail(
    `PORT=${process.env.PORT} cannot be used: the OAuth redirect URL names the MCP port, give a fixed one`,
  );

if (!existsSync(cli) || !existsSync(`${root}dist/lib/state-dir.js`)) {
  process.stderr.write('building mcp-warden (first run)…\n');
  const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

/** A taken port is the common failure here: name it and the variable that moves it, no stack trace. */
const cannotBind = (what, p, variable) => (e) =>
  fail(
    e?.code === 'EADDRINUSE'
      ? `port ${p} is already in use (EADDRINUSE): stop the other process (another demo?) or choose another with ${variable}=<n>`
      : e?.code === 'EACCES'
        ? `no permission to listen on port ${p} (EACCES): choose a port above 1023 with ${variable}=<n>`
        : `cannot start the demo ${what} on port ${p} (${e?.code ?? e?.message ?? 'unknown error'})`,
  );
const redirect = `http://127.0.0.1:${port}/oauth/callback`;
const auth = await startAuthServer({ port: authPort, redirectUris: [redirect] }).catch(
  cannotBind('authorization server', authPort, 'AUTH_PORT'),
);
const pets = await startPetstore({
  port: petsPort,
  oauth: { issuer: auth.issuer, audience: auth.resource },
}).catch(async (e) => {
  await auth.close();
  cannotBind('pet store', petsPort, 'PETS_PORT')(e);
});
mkdirSync(demoDir, { recursive: true, mode: 0o700 });
// A new authorization server each run (its keys and grants live in memory): connections of an
// earlier run could not be used or refreshed, so the vault starts empty too.
rmSync(join(demoDir, 'vault.json'), { force: true });
const policy = policyForThisRun();
const warden = spawn(
  process.execPath,
  [
    cli,
    'serve',
    '--policy',
    policy,
    '--port',
    String(port),
    '--admin-port',
    String(adminPort),
    '--audit-file',
    audit,
  ],
  {
    cwd: process.cwd(),
    env: {
      ...process.env,
      MCP_WARDEN_ADMIN_TOKEN: adminToken,
      DEMO_VAULT_KEY: vaultKey,
      DEMO_OAUTH_CLIENT_ID: auth.clientId,
      DEMO_OAUTH_CLIENT_SECRET: auth.clientSecret,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);

/**
 * examples/oauth/gateway.yaml names the default ports. On other ports the demo serves a copy in its
 * folder with this run's URLs (pet store, authorization server, callback), comments kept.
 */
function policyForThisRun() {
  const doc = parseDocument(readFileSync(setPolicy, 'utf8'));
  const source = ['apis', 'pets', 'credentials', 'pets', 'dev', 'userOAuth'];
  if (
    doc.getIn(['apis', 'pets', 'baseUrl']) === pets.url &&
    doc.getIn([...source, 'issuer']) === auth.issuer &&
    doc.getIn([...source, 'redirectUrl']) === redirect
  )
    return setPolicy;
  doc.setIn(['apis', 'pets', 'baseUrl'], pets.url);
  doc.setIn([...source, 'issuer'], auth.issuer);
  doc.setIn([...source, 'redirectUrl'], redirect);
  // Specs are read relative to the policy file: the copy names it in full.
  doc.setIn(['apis', 'pets', 'spec'], resolve(dirname(setPolicy), doc.getIn(['apis', 'pets', 'spec'])));
  doc.set('$schema', resolve(dirname(setPolicy), doc.get('$schema')));
  const copy = join(demoDir, 'gateway.yaml');
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
  await Promise.all([auth.close(), pets.close()]);
  process.exit(code ?? 0);
});

/** The demo's variable for the port mcp-warden could not bind, and how to move it. */
function portHint(stderr) {
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --admin-port\b/.test(stderr))
    return `demo: the admin port ${adminPort} is ADMIN_PORT: stop the other process (another demo?) or run ADMIN_PORT=<n> npm run demo:oauth`;
  if (/EADDRINUSE|EACCES/.test(stderr) && /with --port\b/.test(stderr))
    return `demo: the MCP port ${port} is PORT: stop the other process (another demo?) or run PORT=<n> npm run demo:oauth`;
  return 'demo: choose other ports with PORT=<n>, ADMIN_PORT=<n>, PETS_PORT=<n> or AUTH_PORT=<n> (npm run demo:oauth)';
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => warden.kill(sig));

function printHelp() {
  const url = `http://127.0.0.1:${port}/mcp`;
  const admin = `http://127.0.0.1:${adminPort}`;
  const adminEnv = `MCP_WARDEN_ADMIN_TOKEN=${adminToken} MCP_WARDEN_ADMIN_URL=${admin}`;
  const cursor = {
    mcpServers: { 'warden-oauth-demo': { url, headers: { Authorization: `Bearer ${callerKeys.alice}` } } },
  };
  process.stdout.write(`
  Per-user OAuth demo: mcp-warden calls the pet store as each caller's own account there.

  Authorization server ${auth.issuer}   (local; any name signs in, no password)
  Pet store API        ${pets.url}   (accepts only that server's tokens; answers as their user)
  mcp-warden (MCP)     ${url}
  Callers (send one as the header  Authorization: Bearer <key>):
    alice  ${callerKeys.alice}
    bob    ${callerKeys.bob}
  Policy ${policy}${policy === setPolicy ? '' : ` (${setPolicy} with this run's ports)`}
  Audit log ${audit}   (the token vault beside it: vault.json, encrypted)

  MCP Inspector:   npx @modelcontextprotocol/inspector
                   then Transport "Streamable HTTP", URL ${url},
                   Authentication: header Authorization, value Bearer ${callerKeys.alice}
  Claude Code:     claude mcp add --transport http warden-oauth-demo ${url} \\
                     --header "Authorization: Bearer ${callerKeys.alice}"
  Cursor (~/.cursor/mcp.json):
    ${JSON.stringify(cursor)}

  Try it:
    1. Call a tool: ask "which cats are up for adoption?" (pets_listPets). Nothing reaches the pet
       store yet: the answer is CONNECTION_REQUIRED with a link.
    2. Open the link in your browser: mcp-warden's page says which caller asks, for which scopes.
       Approve it.
    3. Sign in as anyone (a name, no password) and allow pets:read.
    4. Call again: the pet store answers "signedInAs": "<that name>", it now acts as you.
       As bob (his key), the same tool asks bob to connect, separately. Asking to adopt a pet
       (pets_requestAdoption) needs pets:write: that call asks once more, for that scope only.
  See the connections (or the dashboard ${admin}/ui/, Connections; admin token ${adminToken}):
    ${adminEnv} node ${cli} connections list
  Revoke one: the next call of that caller asks again, and only theirs:
    ${adminEnv} node ${cli} connections revoke <id>

  Ctrl-C stops all three.
`);
}
