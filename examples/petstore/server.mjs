// The demo's second upstream: a small pet store on node:http, no dependencies. Beside the shop, it
// shows an API set: two APIs, each with its own key, behind one mcp-warden endpoint (`npm start`).
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
 */
export async function startPetstore({ port = 0, host = '127.0.0.1', key = 'demo-pets-key-0123456789' } = {}) {
  const pets = PETS.map(([name, species, age], i) => ({ id: `p_${101 + i}`, name, species, age, status: 'available' }));
  const adoptions = [];
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.headers['x-pets-key'] !== key) return json(res, 401, { error: 'missing or wrong X-Pets-Key' });
      const url = new URL(req.url, 'http://pets.invalid');
      const [v, a, b] = url.pathname.split('/').slice(1).map((p) => decodeURIComponent(p));
      if (v !== 'v1') return json(res, 404, { error: 'not found' });
      if (req.method === 'GET' && a === 'pets' && b === undefined) {
        const species = url.searchParams.get('species');
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), 50);
        return json(res, 200, pets.filter((p) => !species || p.species === species).slice(0, limit));
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
        const adoption = { id: `a_${1 + adoptions.length}`, petId: pet.id, status: 'pending' };
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

// `node examples/petstore/server.mjs [port]` runs it on its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const pets = await startPetstore({ port: Number(process.argv[2] ?? 4011), key: process.env.PETS_KEY });
  process.stderr.write(`pet store API at ${pets.url} (X-Pets-Key: ${pets.key})\n`);
}
