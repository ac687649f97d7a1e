import { describe, expect, it } from 'vitest';
import { vaultFileOf } from '../../src/server/user-credentials.js';

describe('the embedded vault file', () => {
  it('is one per audit file, so two gateways (which never share an audit) never share a vault', () => {
    expect(vaultFileOf('/s/openapi-1/audit.jsonl')).toBe('/s/openapi-1/vault.json');
    expect(vaultFileOf('/s/openapi-1/audit-2.jsonl')).toBe('/s/openapi-1/vault-2.json');
    expect(vaultFileOf('/var/log/shop.jsonl')).toBe('/var/log/shop.vault.json');
    expect(vaultFileOf('/var/log/audit-trail.jsonl')).toBe('/var/log/audit-trail.vault.json');
  });
});
