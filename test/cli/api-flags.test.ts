import { describe, expect, it } from 'vitest';
import { apiNameFromTitle, parseApiFlag } from '../../src/cli/api-flags.js';

describe('--api name=spec[,base-url]', () => {
  it('splits the name, the spec and a trailing http(s) base URL', () => {
    expect(parseApiFlag('crm=specs/crm.yaml')).toEqual({ name: 'crm', spec: 'specs/crm.yaml' });
    expect(parseApiFlag('crm=specs/crm.yaml,https://crm.internal/v2')).toEqual({
      name: 'crm',
      spec: 'specs/crm.yaml',
      baseUrl: 'https://crm.internal/v2',
    });
    // A comma that does not start a URL belongs to the spec; a URL spec stays whole.
    expect(parseApiFlag('a=odd,name.yaml')).toEqual({ name: 'a', spec: 'odd,name.yaml' });
    expect(parseApiFlag('gh=https://x.test/openapi.json')).toEqual({
      name: 'gh',
      spec: 'https://x.test/openapi.json',
    });
  });

  it('names a spec given without a name from its title, skipping words that say nothing', () => {
    const none = new Set<string>();
    expect(apiNameFromTitle('Acme Shop API', none)).toBe('acme-shop');
    expect(apiNameFromTitle('Swagger Petstore', none)).toBe('petstore');
    expect(apiNameFromTitle('GitHub v3 REST API', none)).toBe('github');
    expect(apiNameFromTitle('Stripe API', none)).toBe('stripe');
    expect(apiNameFromTitle('API', none)).toBe('api');
    expect(apiNameFromTitle('42', none)).toBe('api');
    expect(apiNameFromTitle('Swagger Petstore', new Set(['petstore', 'petstore-2']))).toBe('petstore-3');
    expect(apiNameFromTitle('x'.repeat(80), none)).toHaveLength(29);
  });
});
