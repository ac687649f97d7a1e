import { describe, expect, it } from 'vitest';
import {
  economizeInput,
  MAX_PUBLISHED_ARG_DESCRIPTION,
  MAX_PUBLISHED_ENUM,
} from '../../src/catalog/economy.js';
import { exampleOf } from '../../src/catalog/example.js';
import type { JsonSchemaObject } from '../../src/model/json-schema.js';

/** The published input schema: what costs a model's context without helping a call is trimmed. */
describe('economizeInput (issue 23: lists a model can afford)', () => {
  const k8sLimit =
    'limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.';

  it('keeps the opening sentences of an argument description within the budget', () => {
    const out = economizeInput({
      type: 'object',
      properties: {
        limit: { type: 'integer', description: k8sLimit },
        short: { type: 'string', description: 'A short one.' },
      },
    });
    const props = out.properties as Record<string, JsonSchemaObject>;
    expect(props.limit!.description).toBe(
      'limit is a maximum number of responses to return for a list call.…',
    );
    expect((props.limit!.description as string).length).toBeLessThanOrEqual(MAX_PUBLISHED_ARG_DESCRIPTION);
    expect(props.short!.description).toBe('A short one.');
  });

  it('publishes a long enumeration as a note, keeps a short one', () => {
    const many = Array.from({ length: MAX_PUBLISHED_ENUM + 1 }, (_, i) => `field_${i}`);
    const few = many.slice(0, MAX_PUBLISHED_ENUM);
    const out = economizeInput({
      type: 'object',
      properties: {
        opt_fields: { type: 'array', items: { type: 'string', enum: many }, description: 'Fields.' },
        state: { type: 'string', enum: few },
      },
    });
    const props = out.properties as Record<string, JsonSchemaObject>;
    const items = props.opt_fields!.items as JsonSchemaObject;
    expect(items.enum).toBeUndefined();
    expect(items.description).toBe(
      `One of ${MAX_PUBLISHED_ENUM + 1} values, e.g. "field_0", "field_1", "field_2", "field_3", "field_4" (the full list is checked by the gateway).`,
    );
    expect(props.state!.enum).toEqual(few);
  });

  it('leaves out array keywords said of a value that is not an array, keeps them on arrays', () => {
    const out = economizeInput({
      type: 'object',
      properties: {
        pretty: { type: 'string', uniqueItems: true },
        ids: { type: 'array', items: { type: 'string' }, uniqueItems: true, minItems: 1 },
      },
    });
    const props = out.properties as Record<string, JsonSchemaObject>;
    expect(props.pretty).toEqual({ type: 'string' });
    expect(props.ids).toEqual({ type: 'array', items: { type: 'string' }, uniqueItems: true, minItems: 1 });
  });

  it('never touches a property named description, and never modifies the schema it is given', () => {
    const schema: JsonSchemaObject = {
      type: 'object',
      properties: {
        description: { type: 'string', maxLength: 10, description: k8sLimit },
      },
      required: ['description'],
    };
    const before = JSON.stringify(schema);
    const out = economizeInput(schema);
    expect(JSON.stringify(schema)).toBe(before);
    const p = (out.properties as Record<string, JsonSchemaObject>).description!;
    expect(p.maxLength).toBe(10);
    expect(out.required).toEqual(['description']);
  });

  it('keeps every constraint a call must meet: an example built from it satisfies the full schema', () => {
    const full: JsonSchemaObject = {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 3, description: k8sLimit },
        count: { type: 'integer', minimum: 5, uniqueItems: true },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
      },
      required: ['name', 'count', 'tags'],
      additionalProperties: false,
    };
    const listed = economizeInput(full);
    const example = exampleOf(listed, listed)!.value as Record<string, unknown>;
    expect((example.name as string).length).toBeGreaterThanOrEqual(3);
    expect(example.count).toBeGreaterThanOrEqual(5);
    expect(example.tags).toHaveLength(2);
  });
});
