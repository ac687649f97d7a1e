import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ElicitationCompletions } from '../../src/server/elicitation-complete.js';
import { createRedisCompletions } from '../../src/state/redis-completions.js';
import { waitFor } from '../support/wait.js';

const REDIS_URL = process.env.MCP_WARDEN_TEST_REDIS ?? 'redis://127.0.0.1:6379';

describe('notifications/elicitation/complete: which session is told', () => {
  const prefix = `complete-${randomBytes(6).toString('hex')}`;
  let clients: Redis[];
  let holder: ElicitationCompletions;
  let completer: ElicitationCompletions;

  beforeAll(async () => {
    clients = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
    holder = new ElicitationCompletions({
      bus: await createRedisCompletions({ client: clients[0]!, prefix }),
    });
    completer = new ElicitationCompletions({
      bus: await createRedisCompletions({ client: clients[1]!, prefix }),
    });
  });

  afterAll(async () => {
    await holder.close();
    await completer.close();
    for (const c of clients) c.disconnect();
  });

  it('tells the session on this instance at once, once', async () => {
    const local = new ElicitationCompletions();
    const told: string[] = [];
    local.expect('flow-1', 'jwt:i#amy', Date.now() + 60_000, async () => void told.push('flow-1'));
    await local.completed({ id: 'flow-1', principal: 'jwt:i#amy' });
    await local.completed({ id: 'flow-1', principal: 'jwt:i#amy' });
    expect(told).toEqual(['flow-1']);
  });

  it('reaches the instance holding the session through Redis, only for the flow’s own principal', async () => {
    const told: string[] = [];
    holder.expect('flow-a', 'jwt:i#amy', Date.now() + 60_000, async () => void told.push('flow-a'));
    holder.expect('flow-b', 'jwt:i#amy', Date.now() + 60_000, async () => void told.push('flow-b'));
    // Another principal's completion with a known flow id tells nobody; the right one does.
    await completer.completed({ id: 'flow-a', principal: 'jwt:i#bob' });
    await completer.completed({ id: 'flow-b', principal: 'jwt:i#amy' });
    await waitFor(() => told.includes('flow-b'), { what: 'flow-b told through Redis' });
    // One channel, in order: flow-a's (refused) message was handled before flow-b's.
    expect(told).toEqual(['flow-b']);
  });

  it('forgets a session whose link expired', async () => {
    let now = 1_000;
    const local = new ElicitationCompletions({ now: () => now });
    const told: string[] = [];
    local.expect('old', 'p', 2_000, async () => void told.push('old'));
    now = 3_000;
    local.expect('new', 'p', 9_000, async () => void told.push('new'));
    await local.completed({ id: 'old', principal: 'p' });
    expect(told).toEqual([]);
  });
});
