import { describe, expect, it } from 'vitest';
import { nearNames } from '../../src/lib/near-names.js';

const TOOLS = [
  'create_webhook',
  'delete_webhook',
  'list_webhooks',
  'get_user',
  'list_users',
  'createInvoice',
];

describe('near names (did you mean)', () => {
  it('finds a typo, a missing letter, a swap and another case', () => {
    expect(nearNames('create_webhok', TOOLS)).toEqual(['create_webhook']);
    expect(nearNames('list_webhook', TOOLS)[0]).toBe('list_webhooks');
    expect(nearNames('get_uesr', TOOLS)).toEqual(['get_user']);
    expect(nearNames('CreateInvoice', TOOLS)).toEqual(['createInvoice']);
  });

  it('suggests nothing for a name close to none, an exact name, an empty or a huge one', () => {
    expect(nearNames('refund_payment', TOOLS)).toEqual([]);
    expect(nearNames('get_user', ['get_user'])).toEqual([]);
    expect(nearNames('', TOOLS)).toEqual([]);
    expect(nearNames('x'.repeat(101), TOOLS)).toEqual([]);
  });

  it('gives at most three, closest first', () => {
    expect(nearNames('item_', ['item_a', 'item_b', 'item_c', 'item_d', 'itemz'])).toHaveLength(3);
    expect(nearNames('itemx', ['item_ab', 'itemzz', 'itemz'])[0]).toBe('itemz');
  });
});
