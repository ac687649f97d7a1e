import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { CappedStdioTransport } from '../../src/server/stdio-frames.js';
import { onJsonLines } from '../support/stdio.js';
import { waitFor } from '../support/wait.js';

/** The transport over in-memory pipes: what it delivered to the SDK, and what it wrote back. */
async function open(caps: { maxFrameBytes?: number; maxJsonDepth?: number } = {}) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const delivered: JSONRPCMessage[] = [];
  const written: Array<Record<string, unknown>> = [];
  const refused: string[] = [];
  onJsonLines(stdout, (m) => written.push(m));
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

  it('runs work after the answers have left: behind a line sent later in the same task, once it is read', async () => {
    const { stdout, t } = over(16);
    await t.start();
    const order: string[] = [];
    let taken = 0;
    // Asked before the answer is sent, as the first tools/list's handler asks (its answer follows).
    t.afterWritten(() => order.push(`after, ${taken} bytes taken`));
    const big: JSONRPCMessage = { jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(100_000) } };
    void t.send(big);
    await new Promise((r) => setTimeout(r, 30));
    // Nobody has read the line: the work still waits.
    expect(order).toEqual([]);
    stdout.on('data', (d: Buffer) => {
      taken += d.length;
    });
    const line = JSON.stringify(big).length + 1;
    await waitFor(() => order.length === 1, { what: 'the work after the line' });
    expect(order).toEqual([`after, ${line} bytes taken`]);
  });

  it('runs work after the answers at once when nothing is pending, and when stdout is gone', async () => {
    const idle = over(1024);
    await idle.t.start();
    let ran = 0;
    idle.t.afterWritten(() => ran++);
    await waitFor(() => ran === 1, { what: 'the work with nothing pending' });
    const gone = over(16);
    await gone.t.start();
    gone.t.onerror = () => {};
    void gone.t.send(answer(1)).catch(() => {});
    gone.stdout.destroy();
    gone.t.afterWritten(() => ran++);
    await waitFor(() => ran === 2, { what: 'the work once stdout is closed' });
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

describe('stdio held until the gateway is ready', () => {
  /** A held transport: `initialize` and `ping` go through, the rest waits. */
  async function held() {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const delivered: JSONRPCMessage[] = [];
    const written: Array<Record<string, unknown>> = [];
    onJsonLines(stdout, (m) => written.push(m));
    const t = new CappedStdioTransport({
      stdin,
      stdout,
      hold: {
        early: (m) => ['initialize', 'ping'].includes((m as { method?: string }).method ?? ''),
      },
    });
    t.onmessage = (m) => delivered.push(m);
    await t.start();
    const send = (m: object) => stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...m })}\n`);
    let closed = false;
    void t.whenClosed.then(() => {
      closed = true;
    });
    return { t, stdin, send, delivered, written, closed: () => closed };
  }
  const reply = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: {} });
  const refusal = (id: string | number) =>
    ({ jsonrpc: '2.0', id, error: { code: -32603, message: 'could not start' } }) as JSONRPCMessage;

  it('lets the opening through at once and the rest, in order, at release', async () => {
    const h = await held();
    h.send({ id: 1, method: 'tools/list' });
    h.send({ id: 2, method: 'initialize', params: {} });
    h.send({ method: 'notifications/cancelled', params: { requestId: 1 } });
    h.send({ id: 3, method: 'tools/call', params: { name: 't' } });
    h.send({ id: 4, method: 'ping' });
    await waitFor(() => h.delivered.length === 2, { what: 'the opening' });
    expect(h.delivered.map((m) => (m as { method: string }).method)).toEqual(['initialize', 'ping']);
    h.t.release();
    expect(h.delivered.map((m) => (m as { method: string }).method)).toEqual([
      'initialize',
      'ping',
      'tools/list',
      'notifications/cancelled',
      'tools/call',
    ]);
    // Once released, everything goes through as it comes.
    h.send({ id: 5, method: 'tools/list' });
    await waitFor(() => h.delivered.length === 6, { what: 'a request after release' });
  });

  it('a failed start answers each held request (none reaches the SDK), or else the next one', async () => {
    const h = await held();
    h.send({ id: 1, method: 'tools/list' });
    h.send({ method: 'notifications/initialized' });
    h.send({ id: 'b', method: 'tools/call', params: { name: 't' } });
    // Read in order: once this ping is through, the frames before it are held.
    h.send({ id: 0, method: 'ping' });
    await waitFor(() => h.delivered.length === 1, { what: 'the frames read' });
    await h.t.fail(refusal, 10_000);
    expect(h.written.map((w) => w.id)).toEqual([1, 'b']);
    expect(h.delivered).toMatchObject([{ id: 0, method: 'ping' }]);

    const next = await held();
    const failing = next.t.fail(refusal, 10_000);
    next.send({ method: 'notifications/initialized' });
    next.send({ id: 9, method: 'initialize', params: {} });
    await failing;
    expect(next.written).toEqual([refusal(9)]);
    expect(next.delivered).toEqual([]);
  });

  it('stdin ending while held: the requests held are still answered, and stdio closes only then', async () => {
    const idle = await held();
    idle.send({ id: 1, method: 'ping' });
    idle.stdin.end();
    await waitFor(() => idle.stdin.readableEnded, { what: 'the end of stdin' });
    // Not closed at the end of stdin: the load goes on (its failure is reported, its success cached).
    await new Promise((r) => setImmediate(r));
    expect(idle.closed()).toBe(false);
    idle.t.release();
    await idle.t.whenClosed;

    const busy = await held();
    busy.send({ id: 1, method: 'tools/list' });
    busy.send({ id: 2, method: 'tools/call', params: { name: 't' } });
    busy.stdin.end();
    await waitFor(() => busy.stdin.readableEnded, { what: 'the end of stdin' });
    busy.t.release();
    expect(busy.delivered).toMatchObject([
      { id: 1, method: 'tools/list' },
      { id: 2, method: 'tools/call' },
    ]);
    // The SDK answers them later (a call waits for its upstream): stdio stays open until both are.
    await busy.t.send(reply(2));
    await new Promise((r) => setImmediate(r));
    expect(busy.closed()).toBe(false);
    await busy.t.send(reply(1));
    await busy.t.whenClosed;
    expect(busy.written.map((w) => w.id)).toEqual([2, 1]);
  });

  it('a client flooding frames while held is pushed back: stdin pauses, and reads again at release', async () => {
    const h = await held();
    for (let i = 0; i < 1100; i++) h.send({ method: 'notifications/cancelled', params: { requestId: i } });
    h.send({ id: 'last', method: 'ping' });
    await waitFor(() => h.stdin.isPaused(), { what: 'stdin paused' });
    // The ping behind the flood is not read while paused (the pipe holds it).
    await new Promise((r) => setImmediate(r));
    expect(h.delivered).toEqual([]);
    h.t.release();
    await waitFor(() => h.delivered.some((m) => (m as { id?: unknown }).id === 'last'), {
      what: 'the ping read after release',
    });
    expect(h.delivered).toHaveLength(1101);
  });
});
