/**
 * The request scope's slots: each concern declares what it keeps for a request and reads it back
 * with its own type, made on first use, one per scope; the scope itself names none of them.
 */
import { readFileSync } from 'node:fs';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { openedScope, RequestScope, ScopeSlot } from '../src/cacheability/request-scope.js';
import { addCacheTags, cacheMiddleware } from '../src/frameworks/express.js';
import { LocMemCache } from '../src/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('a slot of the request scope', () => {
  it('holds one value per scope, made on first use and kept for the rest of the request', () => {
    let made = 0;
    const visits = new ScopeSlot(() => ({ made: ++made, pages: [] as string[] }));
    const first = new RequestScope(undefined);
    expect(made).toBe(0);
    first.get(visits).pages.push('/a');
    first.get(visits).pages.push('/b');
    expect(first.get(visits)).toEqual({ made: 1, pages: ['/a', '/b'] });
    const second = new RequestScope(undefined);
    expect(second.get(visits)).toEqual({ made: 2, pages: [] });
    expect(first.get(visits).pages).toEqual(['/a', '/b']);
  });

  it('is read back with the type its concern declared, apart from every other slot', () => {
    const counting = new ScopeSlot(() => ({ counted: false }));
    const lookups = new ScopeSlot<Array<{ key: string }>>(() => []);
    const scope = new RequestScope(undefined);
    scope.get(counting).counted = true;
    scope.get(lookups).push({ key: 'page' });
    expectTypeOf(scope.get(counting)).toEqualTypeOf<{ counted: boolean }>();
    expectTypeOf(scope.get(lookups)).toEqualTypeOf<Array<{ key: string }>>();
    expect(scope.get(counting)).toEqual({ counted: true });
    expect(scope.get(lookups)).toEqual([{ key: 'page' }]);
  });
});

describe('the request scope', () => {
  // What the page cache, holes, fragments and server backends keep for a request is declared, typed,
  // where they are: the scope holds nothing of theirs as a bare object to be narrowed back.
  it('holds the request, its cacheability, the slots and whether the request is over, and no member of any concern above it', () => {
    const source = ts.createSourceFile('request-scope.ts', readFileSync(join(root, 'src/cacheability/request-scope.ts'), 'utf8'), ts.ScriptTarget.Latest, true);
    const scope = source.statements.find((statement) => ts.isClassDeclaration(statement) && statement.name?.text === 'RequestScope') as ts.ClassDeclaration;
    const members = scope.members
      .flatMap((member): ReadonlyArray<ts.ClassElement | ts.ParameterDeclaration> => (ts.isConstructorDeclaration(member) ? member.parameters : [member]))
      .map((member) => member.name!.getText(source));
    expect(members.sort()).toEqual(['cacheability', 'end', 'ended', 'get', 'over', 'request', 'slots']);
  });
});

describe("a response's scope", () => {
  // Kept past its response, the scope (which holds the request and the response) would keep every
  // request's objects past young collections, which keep a WeakMap's entry whose value leads back to its key.
  it('is let go once its response went out whole, closed, and its page was stored behind it with the tags its view added', async () => {
    const cache = new LocMemCache({ location: 'request-scope-let-go' });
    const responses: ServerResponse[] = [];
    let finishRender: (() => void) | undefined;
    const pages = cacheMiddleware({ cache, statusHeader: 'X-Cache' });
    const server = http.createServer((req, res) =>
      pages(req, res, () => {
        responses.push(res);
        addCacheTags(res, 'product:7');
        const send = () => res.setHeader('Content-Type', 'text/html').end(`<p>${req.url}</p>`);
        if (req.url === '/slow') finishRender = send;
        else send();
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = (res: ServerResponse) => new Promise((resolve) => (res.closed ? resolve(undefined) : res.once('close', resolve)));
    const label = async (path: string) => (await fetch(`${origin}${path}`)).headers.get('x-cache');
    try {
      expect(await label('/whole')).toBe('MISS');
      await closed(responses[0]!);
      await cache.settled();
      await vi.waitFor(() => expect(openedScope(responses[0]!)).toBeUndefined());
      expect(await label('/whole')).toBe('HIT');
      await cache.invalidateTags(['product:7']);
      expect(await label('/whole')).toBe('MISS');

      const leaving = new AbortController();
      const left = fetch(`${origin}/slow`, { signal: leaving.signal }).catch(() => 'left');
      await vi.waitFor(() => expect(finishRender).toBeDefined());
      leaving.abort();
      expect(await left).toBe('left');
      await closed(responses[2]!);
      expect(openedScope(responses[2]!)).toBeDefined();
      finishRender!();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
