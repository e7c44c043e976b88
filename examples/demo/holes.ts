/**
 * The demo's holes: the parts of its pages that are one visitor's (the greeting and the cart), made
 * for each request by a builder, so that the pages around them stay one cached copy for everyone.
 * The visitor signs in by name (a cookie here; a real site reads its session); their cart is a
 * counter in the default cache (level 1), kept per visitor.
 */
import type { IncomingMessage } from 'node:http';
import { cache } from 'cachegrain';
import { defineHole } from 'cachegrain/express';

const MAX_VISITOR_LENGTH = 40;

/** The signed-in visitor's name, or undefined for a guest. */
export function visitorOf(req: IncomingMessage): string | undefined {
  const match = /(?:^|;\s*)visitor=([^;]*)/.exec(req.headers.cookie ?? '');
  if (match === null) return undefined;
  try {
    return decodeURIComponent(match[1]!).trim().slice(0, MAX_VISITOR_LENGTH) || undefined;
  } catch {
    return undefined;
  }
}

/** A name as the visitor typed it, at most as long as a name is kept. */
export function visitorName(typed: unknown): string {
  return String(typed ?? '')
    .trim()
    .slice(0, MAX_VISITOR_LENGTH);
}

const cartKey = (visitor: string) => `cart:${visitor}`;

/** Puts an item in the visitor's cart; answers how many it holds. */
export async function addToCart(visitor: string): Promise<number> {
  await cache.add(cartKey(visitor), 0, null);
  return cache.incr(cartKey(visitor));
}

export function defineDemoHoles(): void {
  defineHole('greeting', (req) => {
    const visitor = visitorOf(req);
    return `<span class="greeting">${visitor === undefined ? 'Hello! Sign in with your name to keep a cart.' : `Hello, ${escapeHtml(visitor)}!`}</span>`;
  });
  // The cart is read from the cache on every page, hit or miss: the page itself is the same for all.
  defineHole('cart', async (req) => {
    const visitor = visitorOf(req);
    if (visitor === undefined) return '<span class="cart">Cart: sign in first</span>';
    const count = (await cache.get<number>(cartKey(visitor))) ?? 0;
    return `<span class="cart">Cart: ${count} item${count === 1 ? '' : 's'}</span>`;
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
