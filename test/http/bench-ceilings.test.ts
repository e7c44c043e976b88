/**
 * The HTTP benchmark's ceilings are honest: each sends what the page cache's hit of its stack sends
 * (status, headers and bytes), so that the ratio between them is the cost of the hit alone. Asked
 * through each framework's own injection, as the in-process rows ask them.
 */
import { describe, expect, it } from 'vitest';
import { type BenchApp, buildApp, fill, KINDS, type Kind, type Reply, STACKS } from '../../bench/http-apps.js';

/** Headers that name the moment of the response rather than the response: compared by name alone. */
const OF_THE_MOMENT = new Set(['date', 'expires', 'age']);
/** Headers a transport adds (a server, not the application), which an injection may or may not show. */
const OF_THE_TRANSPORT = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function comparable(reply: Reply): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.headers)) {
    const lower = name.toLowerCase();
    if (!OF_THE_TRANSPORT.has(lower)) headers[lower] = OF_THE_MOMENT.has(lower) ? '(present)' : value;
  }
  return { status: reply.status, headers, body: reply.body.toString('latin1') };
}

describe.each(STACKS)('the bench ceiling of %s', (stack) => {
  it.each(Object.keys(KINDS) as Kind[])('answers a %s request as the page cache hit does', async (kind) => {
    const ours: BenchApp = await buildApp(stack, 'ours');
    await fill(ours, 'ours');
    const ceiling = await buildApp(stack, 'ceiling');
    const hit = await ours.inject(kind);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.status).toBe(KINDS[kind].status);
    expect(comparable(await ceiling.inject(kind))).toEqual(comparable(hit));
  });
});
