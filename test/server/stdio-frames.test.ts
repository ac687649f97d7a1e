import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { CappedStdioTransport } from '../../src/server/stdio-frames.js';
import { waitFor } from '../support/wait.js';

/** The transport over in-memory pipes: what it delivered to the SDK, and what it wrote back. */
async function open(caps: { maxFrameBytes?: number; maxJsonDepth?: number } = {}) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const delivered: JSONRPCMessage[] = [];
  const written: Array<Record<string, unknown>> = [];
  const refused: string[] = [];
  let out = '';
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
      written.push(JSON.parse(out.slice(0, i)));
      out = out.slice(i + 1);
    }
  });
  const t = new CappedStdioTransport({ stdin, stdout, ...caps, onRefused: (code) => refused.push(code) });
  t.onmessage = (m) => delivered.push(m);
  await t.start();
  return { t, stdin, delivered, written, refused };
}

const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const call = (id: number | string, args: unknown) =>
  JSON.stringify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 't', arguments: args }, id });

describe('stdio frames with the HTTP caps', () => {
  it('answers an over-size request by its id (read from the discarded frame) and keeps reading', async () => {
    const { stdin, delivered, written } = await open({ maxFrameBytes: 1000 });
    const big = call(41, { s: 'x'.repeat(5000) });
    // Streamed in small pieces, as a pipe delivers it, followed by a good frame on the same chunk.
    for (let i = 0; i < big.length; i += 333) stdin.write(big.slice(i, i + 333));
    stdin.write(`\n${call(42, { s: 'ok' })}\n`);
    await waitFor(() => delivered.length === 1 && written.length === 1, {
      what: 'the refusal and the next frame',
    });
    expect(written[0]).toEqual({
      jsonrpc: '2.0',
      id: 41,
      error: {
        code: -32000,
        message: 'Frame larger than 1000 bytes.',
        data: { code: 'HTTP_BODY_TOO_LARGE' },
      },
    });
    expect(delivered[0]).toMatchObject({ id: 42, method: 'tools/call' });
  });

  it('passes a frame of exactly the cap, and refuses one byte more', async () => {
    const { stdin, delivered, written } = await open({ maxFrameBytes: 200 });
    const pad = (id: number, n: number) => {
      const base = call(id, { s: '' });
      return call(id, { s: 'y'.repeat(n - base.length) });
    };
    expect(pad(1, 200)).toHaveLength(200);
    stdin.write(`${pad(1, 200)}\n${pad(2, 201)}\n`);
    await waitFor(() => delivered.length + written.length === 2, { what: 'both frames handled' });
    expect(delivered.map((m) => (m as { id: number }).id)).toEqual([1]);
    expect(written.map((m) => m.id)).toEqual([2]);
  });

  it('refuses a frame nested deeper than the cap with -32600 under its id', async () => {
    const { stdin, delivered, written } = await open();
    stdin.write(`${call('deep', nested(70))}\n${call('shallow', nested(10))}\n`);
    await waitFor(() => delivered.length === 1 && written.length === 1, { what: 'refusal and delivery' });
    expect(written[0]).toMatchObject({
      id: 'deep',
      error: { code: -32600, data: { code: 'HTTP_BAD_REQUEST' } },
    });
    expect(delivered[0]).toMatchObject({ id: 'shallow' });
    // The frame is level 0, params 1, arguments 2: the deepest array may sit at level 63, as over HTTP.
    stdin.write(`${call('edge', nested(62))}\n${call('over', nested(63))}\n`);
    await waitFor(() => delivered.length === 2 && written.length === 2, { what: 'the edge cases' });
    expect(delivered[1]).toMatchObject({ id: 'edge' });
    expect(written[1]).toMatchObject({ id: 'over' });
  });

  it("fails an over-cap response to the gateway's own request at once, and answers nothing", async () => {
    const { stdin, delivered, written, refused } = await open({ maxFrameBytes: 300 });
    stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 0, result: { action: 'accept', content: { x: 'z'.repeat(500) } } })}\n`,
    );
    stdin.write(`${JSON.stringify({ jsonrpc: '2.0', result: nested(80), id: 1 })}\n`);
    await waitFor(() => delivered.length === 2, { what: 'two failed responses' });
    expect(delivered).toEqual([
      expect.objectContaining({ id: 0, error: expect.objectContaining({ code: -32000 }) }),
      expect.objectContaining({ id: 1, error: expect.objectContaining({ code: -32600 }) }),
    ]);
    expect(written).toEqual([]);
    expect(refused).toEqual(['HTTP_BODY_TOO_LARGE', 'HTTP_BAD_REQUEST']);
  });

  it('drops over-cap notifications and frames without an id, answering nothing', async () => {
    const { stdin, delivered, written, refused } = await open({ maxFrameBytes: 100 });
    stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/x', params: { s: 'q'.repeat(300) } })}\n`,
    );
    stdin.write(`${'['.repeat(100)}${']'.repeat(100)}\n`);
    stdin.write('{"jsonrpc":"2.0","method":"ping","id":9}\n');
    await waitFor(() => delivered.length === 1, { what: 'the ping' });
    expect(written).toEqual([]);
    expect(refused).toEqual(['HTTP_BODY_TOO_LARGE', 'HTTP_BODY_TOO_LARGE']);
  });

  it('reads CRLF frames, frames split anywhere (a character, the CR), and skips blank lines', async () => {
    const { stdin, delivered, written } = await open();
    const a = Buffer.from(`${call('a', { s: 'ünï €' })}\r\n`);
    // Cut inside the two-byte ü and between the CR and the LF.
    const cut = a.indexOf(0xc3) + 1;
    stdin.write(a.subarray(0, cut));
    stdin.write(a.subarray(cut, a.length - 1));
    stdin.write(a.subarray(a.length - 1));
    stdin.write(` \t\r\n\n\r\n${call('b', {})}\n`);
    await waitFor(() => delivered.length === 2, { what: 'both frames' });
    expect(delivered[0]).toMatchObject({ id: 'a', params: { arguments: { s: 'ünï €' } } });
    expect(delivered[1]).toMatchObject({ id: 'b' });
    expect(written).toEqual([]);
  });
});

describe('stdio frames: sending', () => {
  const answer = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [] } });
  const over = (highWaterMark: number) => {
    const stdin = new PassThrough();
    // Nothing reads it: once past its high-water mark a write returns false until drained.
    const stdout = new PassThrough({ highWaterMark });
    return { stdin, stdout, t: new CappedStdioTransport({ stdin, stdout }) };
  };

  it('settles once the stream has taken the line, one JSON line per message', async () => {
    const { t, written } = await open();
    await t.send(answer(1));
    await t.send(answer(2));
    await waitFor(() => written.length === 2, { what: 'both lines' });
    expect(written.map((w) => w.id)).toEqual([1, 2]);
  });

  it('under backpressure, settles at the next drain, not before', async () => {
    const { stdout, t } = over(16);
    await t.start();
    let settled = false;
    const sent = t.send(answer(1)).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    stdout.resume();
    await sent;
    expect(settled).toBe(true);
  });

  it('fails a send waiting for a drain when stdout closes, and one sent after it closed', async () => {
    const { stdout, t } = over(16);
    await t.start();
    const errors: Error[] = [];
    t.onerror = (e) => errors.push(e);
    const sent = t.send(answer(1));
    stdout.destroy();
    await expect(sent).rejects.toThrow('stdout is closed');
    await expect(t.send(answer(2))).rejects.toThrow(/closed/);
  });

  it('reports a failed write and closes the transport', async () => {
    const { stdout, t } = over(1024);
    await t.start();
    const errors: Error[] = [];
    let closed = false;
    t.onerror = (e) => errors.push(e);
    t.onclose = () => {
      closed = true;
    };
    await t.send(answer(1));
    stdout.emit('error', new Error('EPIPE'));
    expect(errors.map((e) => e.message)).toEqual(['EPIPE']);
    expect(closed).toBe(true);
    await expect(t.send(answer(2))).rejects.toThrow('stdio transport is closed');
  });
});
