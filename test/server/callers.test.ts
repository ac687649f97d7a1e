import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { httpStatus } from '../../src/errors/index.js';
import { parsePolicy } from '../../src/policy/load.js';
import {
  type AuthOutcome,
  Callers,
  hashKey,
  idPart,
  MAX_ID_PART,
  newApiKey,
  principalIds,
} from '../../src/server/callers.js';
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
      principal: { id: 'jwt:https://idp.test/#svc-7', scopes: ['tools:read', 'orders'], via: 'jwt' },
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
        principal: { id: 'key:a' },
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
      expect(r).toMatchObject({ ok: true, principal: { id: 'key:b', scopes: ['x'] } });
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

  it('answers anonymous and API-key callers synchronously, each request judged on its own credential', () => {
    const k = newApiKey();
    const c = callersFrom(
      `version: 1\ncallers:\n  apiKeys:\n    - { id: a, hash: "${k.hash}", scopes: [tools:read] }\n    - { id: b, hash: "${newApiKey().hash}", scopes: [x] }\n  requiredScopes: [tools:read]\n  anonymous:\n    scopes: [tools:read]\n    reason: a local benchmark needs no credential\n`,
    );
    // No promise: the HTTP path awaits only a JWT's verification (issue 22).
    const anonymous = c.authenticate({});
    expect(anonymous).not.toBeInstanceOf(Promise);
    expect(anonymous).toEqual({
      ok: true,
      principal: { id: 'anonymous', scopes: ['tools:read'], via: 'anonymous' },
    });
    const key = c.authenticate({ 'x-api-key': k.key });
    expect(key).not.toBeInstanceOf(Promise);
    expect(key).toMatchObject({ ok: true, principal: { id: 'key:a', via: 'api-key' } });
    // After an accepted anonymous or key caller, an unknown key is still refused, at once.
    const unknown = c.authenticate({ authorization: `Bearer ${newApiKey().key}` });
    expect(unknown).not.toBeInstanceOf(Promise);
    expect(statusOf(unknown as AuthOutcome)).toBe(401);
  });
});

/** The inverse of `idPart` for an uncut part: proves the escaping loses nothing. */
const unescapePart = (part: string) =>
  part.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_m, u: string | undefined, x: string | undefined) =>
    String.fromCharCode(Number.parseInt((u ?? x)!, 16)),
  );
/** An escaped part: plain characters and whole escapes, optionally cut (`%~` and a 128-bit digest). */
const ESCAPED = /^(?:[^%]|%[0-9A-F]{2}|%u[0-9A-F]{4})*(?:%~[0-9a-f]{32})?$/;
/** What a principal id never holds: controls, format characters, separators, lone surrogates, odd spaces. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

describe('callers: principal ids are namespaced by how the caller authenticated', () => {
  async function keyAndJwt(issuer: string) {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const key = newApiKey();
    const dir = tempTree({ 'key.pem': await exportSPKI(publicKey) });
    const c = callersFrom(
      [
        'version: 1',
        'callers:',
        '  apiKeys:',
        `    - { id: writer, hash: "${key.hash}", scopes: [tools:read] }`,
        '  jwt:',
        `    publicKeyFile: ${join(dir, 'key.pem')}`,
        `    issuer: ${JSON.stringify(issuer)}`,
        '    algorithms: [RS256]',
      ].join('\n'),
    );
    const jwt = (claims: JWTPayload) =>
      new SignJWT({ scope: 'tools:read', ...claims })
        .setProtectedHeader({ alg: 'RS256' })
        .setIssuer(issuer)
        .setAudience(RESOURCE)
        .setExpirationTime('2m')
        .sign(privateKey);
    const idOf = async (authorization: string) => {
      const r = await c.authenticate({ authorization });
      return r.ok ? r.principal.id : r.code;
    };
    return { c, key: key.key, jwt, idOf };
  }

  it('gives an API key and a JWT whose sub is that key id two different principals', async () => {
    const { c, key, jwt, idOf } = await keyAndJwt('https://idp.test/');
    expect(await idOf(`Bearer ${key}`)).toBe('key:writer');
    expect(await idOf(`Bearer ${await jwt({ sub: 'writer' })}`)).toBe('jwt:https://idp.test/#writer');
    // Nor can a sub dress up as a key principal, or as the anonymous one.
    expect(await idOf(`Bearer ${await jwt({ sub: 'key:writer' })}`)).toBe('jwt:https://idp.test/#key:writer');
    expect(await idOf(`Bearer ${await jwt({ sub: 'anonymous' })}`)).toBe('jwt:https://idp.test/#anonymous');
    c.close();
  });

  it('refuses a sub that is not a non-empty string (a list or an object would stringify into another name)', async () => {
    const { c, jwt, idOf } = await keyAndJwt('https://idp.test/');
    for (const sub of [['writer'], { toString: 'writer' }, 42, '', null, true])
      expect(await idOf(`Bearer ${await jwt({ sub } as unknown as JWTPayload)}`)).toBe('AUTH_INVALID');
    c.close();
  });

  it('escapes # and % and keeps : in a hostile issuer and sub, so the split stays unambiguous', async () => {
    const { c, jwt, idOf } = await keyAndJwt('https://idp.test/t#a:b%');
    expect(await idOf(`Bearer ${await jwt({ sub: 'c#d:e' })}`)).toBe(
      'jwt:https://idp.test/t%23a:b%25#c%23d:e',
    );
    // The same characters split differently are another principal.
    expect(principalIds.jwt('a#b', 'c')).not.toBe(principalIds.jwt('a', 'b#c'));
    expect(principalIds.jwt('a', 'b%23c')).not.toBe(principalIds.jwt('a', 'b#c'));
    c.close();
  });

  it('keeps control, bidi and zero-width characters and line breaks out of the id, reversibly', async () => {
    const { c, jwt, idOf } = await keyAndJwt('https://idp.test/');
    const sub = 'admin\n{"principal":"root"}\u202e\u200b\r\u0000\u2028\u00a0x';
    const id = (await idOf(`Bearer ${await jwt({ sub })}`)) as string;
    expect(id).toBe('jwt:https://idp.test/#admin%0A{"principal":"root"}%u202E%u200B%0D%00%u2028%A0x');
    expect(id).not.toMatch(INVISIBLE);
    expect(unescapePart(id.slice(id.indexOf('#') + 1))).toBe(sub);
    expect(principalIds.stdio('local')).toBe('stdio:local');
    expect(principalIds.key('ci\tbot')).toBe('key:ci%09bot');
    c.close();
  });

  it('bounds a very long sub or issuer, and two long ones that share a prefix stay apart', async () => {
    const long = 'https://idp.test/'.padEnd(5000, 'i');
    const { c, jwt, idOf } = await keyAndJwt(long);
    const a = (await idOf(`Bearer ${await jwt({ sub: `${'s'.repeat(10_000)}-a` })}`)) as string;
    const b = (await idOf(`Bearer ${await jwt({ sub: `${'s'.repeat(10_000)}-b` })}`)) as string;
    expect(a).toMatch(/^jwt:/);
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual('jwt:#'.length + 2 * MAX_ID_PART);
    expect(a.split('#')[1]).toMatch(ESCAPED);
    c.close();
  });

  it('never cuts inside an escape or a surrogate pair', () => {
    for (let pad = 0; pad < 8; pad++)
      for (const fill of ['\u0001', '\u200b', '\u{1F600}', '\u{E0041}']) {
        const part = idPart(`${'a'.repeat(pad)}${fill.repeat(200)}`);
        expect(part.length).toBeLessThanOrEqual(MAX_ID_PART);
        expect(part).toMatch(ESCAPED);
        expect(part).not.toMatch(INVISIBLE);
        // One more character past the cut is another id.
        expect(idPart(`${'a'.repeat(pad)}${fill.repeat(201)}`)).not.toBe(part);
      }
  });

  it('maps distinct (issuer, sub) pairs to distinct, printable, bounded ids (property)', () => {
    const hostile = fc.oneof(
      fc.string({ unit: fc.constantFrom('#', '%', ':', 'u', '2', '3', 'A', '~', '\u0000', '\n', '\u202e') }),
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.string({ unit: fc.constantFrom('a', '%', '\u0001'), minLength: 150, maxLength: 400 }),
    );
    fc.assert(
      fc.property(fc.tuple(hostile, hostile), fc.tuple(hostile, hostile), ([i1, s1], [i2, s2]) => {
        const [a, b] = [principalIds.jwt(i1, s1), principalIds.jwt(i2, s2)];
        for (const id of [a, b]) {
          expect(id).not.toMatch(INVISIBLE);
          expect(id.length).toBeLessThanOrEqual('jwt:#'.length + 2 * MAX_ID_PART);
        }
        expect(a === b).toBe(i1 === i2 && s1 === s2);
        if (!idPart(s1).includes('%~')) expect(unescapePart(idPart(s1))).toBe(s1);
      }),
      { numRuns: 2000 },
    );
  });
});
