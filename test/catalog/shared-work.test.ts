import { describe, expect, it } from 'vitest';
import { isSafeRegExp, isUsableRegExp } from '../../src/catalog/schema.js';
import { classifyResponseFields } from '../../src/classify/data-classes.js';
import { catalogOf, jsonOk, minimalSpec } from '../support/helpers.js';

// Work shared between tools (issue 22): the `$defs` closure of equal references, the data-class walk
// of equal response roots and pattern checks are done once. Each tool must still see exactly what it
// saw when everything was built per tool.

const Customer = {
  type: 'object',
  properties: {
    id: { type: 'string', pattern: '^cus_[a-z0-9]+$' },
    email: { type: 'string', format: 'email' },
    address: { $ref: '#/components/schemas/Address' },
    friend: { $ref: '#/components/schemas/Customer' },
  },
};
const Address = {
  type: 'object',
  properties: { line1: { type: 'string' }, postal_code: { type: 'string' } },
};
const Order = {
  type: 'object',
  properties: { id: { type: 'string' }, customer: { $ref: '#/components/schemas/Customer' } },
};
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const spec = minimalSpec(
  {
    '/customers/me': {
      get: { operationId: 'getCustomer', responses: jsonOk(ref('Customer')) },
      post: {
        operationId: 'updateCustomer',
        requestBody: { content: { 'application/json': { schema: ref('Customer') } } },
        responses: jsonOk(ref('Customer')),
      },
    },
    '/orders/last': { get: { operationId: 'getOrder', responses: jsonOk(ref('Order')) } },
    '/orders': {
      get: {
        operationId: 'listOrders',
        responses: jsonOk({ type: 'object', properties: { data: { type: 'array', items: ref('Order') } } }),
      },
    },
  },
  { components: { schemas: { Customer, Address, Order } } },
);

describe('work shared between tools', () => {
  it('tools with the same references share one $defs object, equal to a closure built alone', async () => {
    const cat = await catalogOf(spec);
    const [getCustomer, updateCustomer, getOrder, listOrders] = cat.tools;
    expect(getCustomer!.outputSchema!.$defs).toBe(updateCustomer!.outputSchema!.$defs);
    expect(getOrder!.outputSchema!.$defs).toBe(listOrders!.outputSchema!.$defs);
    expect(getCustomer!.outputSchema!.$defs).not.toBe(getOrder!.outputSchema!.$defs);
    // Input and output closures are converted per mode: never the same object.
    expect(updateCustomer!.inputSchema.$defs).not.toBe(updateCustomer!.outputSchema!.$defs);
    // The same text, key order included, as a catalogue holding only that tool builds.
    const alone = await catalogOf(
      minimalSpec(
        { '/orders': spec.paths ? (spec.paths as Record<string, unknown>)['/orders'] : {} },
        { components: { schemas: { Customer, Address, Order } } },
      ),
    );
    expect(JSON.stringify(listOrders!.outputSchema)).toBe(JSON.stringify(alone.tools[0]!.outputSchema));
    expect(Object.keys(listOrders!.outputSchema!.$defs!)).toEqual(['Order', 'Customer', 'Address']);
  });

  it('equal response roots get equal data classes, each tool its own array', async () => {
    const cat = await catalogOf(spec);
    const [getCustomer, updateCustomer, , listOrders] = cat.tools;
    expect(getCustomer!.dataClasses).toEqual(updateCustomer!.dataClasses);
    expect(getCustomer!.dataClasses).not.toBe(updateCustomer!.dataClasses);
    // What a fresh classifier finds for the same schema.
    const fresh = classifyResponseFields(
      { $ref: '#/$defs/Customer' },
      getCustomer!.outputSchema!.$defs as Record<string, never>,
    );
    expect(getCustomer!.dataClasses).toEqual(fresh.fields);
    expect(getCustomer!.dataClasses.map((f) => f.path)).toContain('$.email');
    expect(listOrders!.dataClasses.map((f) => f.path)).toContain('$.data[*].customer.email');
  });

  it('pattern checks answer the same the second time', () => {
    for (const p of ['^cus_[a-z0-9]+$', '(?=a)b', '[', '(a)\\1']) {
      const first = [isUsableRegExp(p), isSafeRegExp(p)];
      expect([isUsableRegExp(p), isSafeRegExp(p)]).toEqual(first);
    }
    expect([isUsableRegExp('['), isSafeRegExp('(?=a)b'), isSafeRegExp('^a+$')]).toEqual([false, false, true]);
  });
});
