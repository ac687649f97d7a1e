import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { httpStatus } from '../../src/errors/index.js';
import { parsePolicy } from '../../src/policy/load.js';
import { type AuthOutcome, Callers, hashKey, newApiKey } from '../../src/server/callers.js';
import { tempTree } from '../support/helpers.js';

const RESOURCE = 'http://127.0.0.1:3333/mcp';
/** The HTTP status an outcome answers with: the error table's, for a refusal. */
const statusOf = (r: AuthOutcome) => (r.ok ? 200 : httpStatus(r.code));

function callersFrom(yaml: string, environment: 'dev' | 'prod' = 'dev') {
  const doc = parsePolicy(yaml, 'w.yaml').doc;
  return new Callers({
    callers: doc.callers,
    environment,
    resource: RESOURCE,
    loopback: true,
    scopesInUse: () => ['tools:read'],
    warn: () => {},
  });
}

describe('callers: JWT with a local public key', () => {
  it('verifies against a PEM key, reads scopes from a list claim, and refuses other algorithms', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const dir = tempTree({ 'key.pem': await exportSPKI(publicKey) });
    const c = callersFrom(
      `version: 1\ncallers:\n  jwt:\n    publicKeyFile: ${join(dir, 'key.pem')}\n    issuer: https://idp.test/\n    algorithms: [RS256]\n    scopeClaim: scp\n`,
    );
    const token = await new SignJWT({ scp: ['tools:read', 'orders'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://idp.test/')
      .setAudience(RESOURCE)
      .setSubject('svc-7')
      .setExpirationTime('2m')
      .sign(privateKey);
    const ok = await c.authenticate({ authorization: `Bearer ${token}` });
    expect(ok).toEqual({
      ok: true,
      principal: { id: 'svc-7', scopes: ['tools:read', 'orders'], via: 'jwt' },
    });
    // Algorithm confusion: HS256 "signed" with the public key as the HMAC secret.
    const pem = await exportSPKI(publicKey);
    const hs = await new SignJWT({ scp: ['tools:read'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.test/')
      .setAudience(RESOURCE)
      .setSubject('svc-7')
      .setExpirationTime('2m')
      .sign(new TextEncoder().encode(pem));
    const bad = await c.authenticate({ authorization: `Bearer ${hs}` });
    expect(bad).toMatchObject({ ok: false, code: 'AUTH_INVALID' });
    expect(statusOf(bad)).toBe(401);
    // A token without an expiry is refused too.
    const forever = await new SignJWT({ scp: ['tools:read'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://idp.test/')
      .setAudience(RESOURCE)
      .setSubject('svc-7')
      .sign(privateKey);
    expect(await c.authenticate({ authorization: `Bearer ${forever}` })).toMatchObject({
      ok: false,
      code: 'AUTH_INVALID',
    });
    c.close();
  });
});

describe('callers: API keys', () => {
  it('accepts keys from a keys file and picks up a new key without a restart', async () => {
    const first = newApiKey();
    const second = newApiKey();
    const dir = tempTree({
      'keys.yaml': `keys:\n  - { id: a, hash: "${first.hash}", scopes: [tools:read] }\n`,
    });
    const c = callersFrom(`version: 1\ncallers:\n  apiKeysFile: ${join(dir, 'keys.yaml')}\n`);
    try {
      expect(await c.authenticate({ 'x-api-key': first.key })).toMatchObject({
        ok: true,
        principal: { id: 'a' },
      });
      expect(await c.authenticate({ authorization: `Bearer ${second.key}` })).toMatchObject({ ok: false });
      writeFileSync(
        join(dir, 'keys.yaml'),
        `keys:\n  - { id: a, hash: "${first.hash}", scopes: [tools:read] }\n  - { id: b, hash: "${second.hash}", scopes: [x] }\n`,
      );
      const until = Date.now() + 8000;
      let r = await c.authenticate({ authorization: `Bearer ${second.key}` });
      while (!r.ok && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 100));
        r = await c.authenticate({ authorization: `Bearer ${second.key}` });
      }
      expect(r).toMatchObject({ ok: true, principal: { id: 'b', scopes: ['x'] } });
    } finally {
      c.close();
    }
  }, 15_000);

  it('hashes keys with SHA-256 and compares the hash, never the key', () => {
    expect(hashKey('mwk_x')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(newApiKey().key).toMatch(/^mwk_[A-Za-z0-9_-]{43}$/);
  });

  it('treats a malformed Authorization header as an invalid credential, not as anonymous', async () => {
    const k = newApiKey();
    const c = callersFrom(
      `version: 1\ncallers:\n  apiKeys:\n    - { id: a, hash: "${k.hash}", scopes: [tools:read] }\n`,
    );
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', `Bearer ${k.key} extra`, `Token ${k.key}`])
      expect(statusOf(await c.authenticate({ authorization }))).toBe(401);
  });

  it('serves loopback callers anonymously with read scopes only when no caller is configured', async () => {
    const c = callersFrom('version: 1\n');
    expect(await c.authenticate({})).toEqual({
      ok: true,
      principal: { id: 'anonymous', scopes: ['tools:read'], via: 'anonymous' },
    });
  });
});
