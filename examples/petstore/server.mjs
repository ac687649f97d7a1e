// The demo's second upstream: a small pet store on node:http, no dependencies (jose in its OAuth
// mode only). Beside the shop, it shows an API set: two APIs, each with its own key, behind one
// mcp-warden endpoint (`npm start`); `npm run demo:oauth` serves it per user (see startPetstore).
import { createServer } from 'node:http';

const PETS = [
  ['Miso', 'cat', 2],
  ['Biscuit', 'dog', 4],
  ['Clover', 'rabbit', 1],
  ['Pixel', 'cat', 7],
  ['Juniper', 'dog', 1],
  ['Pepper', 'cat', 3],
];

const json = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

/**
 * Starts the pet store. `key` is the API key it demands in `X-Pets-Key`. Every request is recorded
 * in `requests` (method, raw URL, headers): tests see that only this API's key ever arrives here.
 *
 * With `oauth: { issuer, audience }` (the per-user OAuth demo, `npm run demo:oauth`) it accepts only
 * that issuer's JWT access tokens for `audience` instead of the key (`pets:read` to read, `pets:write`
 * to ask for an adoption) and answers as the token's user: the pet list says who is signed in, an
 * adoption request is made by that user.
 */
export async function startPetstore({
  port = 0,
  host = '127.0.0.1',
  key = 'demo-pets-key-0123456789',
  oauth,
} = {}) {
  const pets = PETS.map(([name, species, age], i) => ({ id: `p_${101 + i}`, name, species, age, status: 'available' }));
  const adoptions = [];
  const requests = [];
  const verify = oauth ? await bearerVerifier(oauth) : undefined;
  const server = createServer((req, res) => {
    const record = { method: req.method, url: req.url, headers: { ...req.headers } };
    requests.push(record);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let user;
      if (verify) {
        const who = await verify(req);
        if (who.error) return json(res, who.status, { error: who.error });
        user = who;
        const need = req.method === 'GET' ? 'pets:read' : 'pets:write';
        if (!user.scopes.includes(need))
          return json(res, 403, { error: `insufficient_scope: this needs ${need}` });
        record.actedAs = user.sub;
      } else if (req.headers['x-pets-key'] !== key)
        return json(res, 401, { error: 'missing or wrong X-Pets-Key' });
      const url = new URL(req.url, 'http://pets.invalid');
      const [v, a, b] = url.pathname.split('/').slice(1).map((p) => decodeURIComponent(p));
      if (v !== 'v1') return json(res, 404, { error: 'not found' });
      if (req.method === 'GET' && a === 'pets' && b === undefined) {
        const species = url.searchParams.get('species');
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), 50);
        const found = pets.filter((p) => !species || p.species === species).slice(0, limit);
        return json(res, 200, user ? { signedInAs: user.sub, pets: found } : found);
      }
      if (req.method === 'GET' && a === 'pets' && b !== undefined) {
        const pet = pets.find((p) => p.id === b);
        return pet ? json(res, 200, pet) : json(res, 404, { error: `no pet ${b}` });
      }
      if (req.method === 'POST' && a === 'adoptions' && b === undefined) {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        const pet = pets.find((p) => p.id === body.petId);
        if (!pet) return json(res, 404, { error: `no pet ${body.petId}` });
        pet.status = 'pending';
        const adoption = {
          id: `a_${1 + adoptions.length}`,
          petId: pet.id,
          status: 'pending',
          ...(user ? { adopter: user.sub } : {}),
        };
        adoptions.push(adoption);
        return json(res, 201, adoption);
      }
      return json(res, 404, { error: 'not found' });
    });
  });
  // A bind failure (port taken) rejects, so the caller can say which port instead of crashing.
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}/v1`,
    port: addr.port,
    key,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Checks `Authorization: Bearer <JWT>` against the issuer's published keys (jose, loaded only in this
 * mode, so the key mode needs no dependency): the issuer, the audience, the expiry and the signature.
 */
async function bearerVerifier({ issuer, audience }) {
  const { createRemoteJWKSet, jwtVerify } = await import('jose');
  const keys = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  return async (req) => {
    const token = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return { status: 401, error: 'invalid_token: a token of the demo authorization server' };
    try {
      const { payload } = await jwtVerify(token, keys, { issuer, audience });
      return { sub: String(payload.sub), scopes: String(payload.scope ?? '').split(' ').filter(Boolean) };
    } catch {
      return { status: 401, error: 'invalid_token' };
    }
  };
}

// `node examples/petstore/server.mjs [port]` runs it on its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const pets = await startPetstore({ port: Number(process.argv[2] ?? 4011), key: process.env.PETS_KEY });
  process.stderr.write(`pet store API at ${pets.url} (X-Pets-Key: ${pets.key})\n`);
}
