/**
 * The HTTP stacks the page-cache conformance suite runs over: Express 5, Express 4, a bare node:http
 * server, Fastify, Koa and Hono, each with its own adapter. Tests mount layers made by layers.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import { type Build, EXPRESS_READS, failed, type VisitorReads } from './layers.js';
import { FASTIFY_READS, fastifyStack } from './stack-fastify.js';
import { HONO_READS, honoStack } from './stack-hono.js';
import { KOA_READS, koaStack } from './stack-koa.js';

export * from './layers.js';

// The Express 4 alias package ships no types; it has Express 5's shape where these tests touch it.
export const express4 = createRequire(import.meta.url)('express4') as typeof express5;
export { express5 };

export const expressApp =
  (express: typeof express5): Build =>
  (middleware, view, route = []) => {
    const app = express();
    if (middleware.length > 0) app.use(...(middleware as never[]));
    const run = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
      try {
        Promise.resolve(view(req, res)).catch(next);
      } catch (error) {
        next(error);
      }
    };
    // A regular expression: the one path pattern Express 4 and 5 read alike.
    app.all(/.*/, ...(route as never[]), run as never);
    app.use(((error: unknown, _req: IncomingMessage, res: ServerResponse, _next: unknown) => failed(error, res)) as never);
    return app as never;
  };

/** The middleware run one after the other, as Connect would, in front of the view. */
export const bare: Build = (middleware, view, route = []) => {
  const all = [...middleware, ...route];
  return (req, res) => {
    const run = (i: number): void => {
      if (i === all.length) {
        try {
          Promise.resolve(view(req, res)).catch((error: unknown) => failed(error, res));
        } catch (error) {
          failed(error, res);
        }
        return;
      }
      all[i]!(req, res, (error) => (error ? failed(error, res) : run(i + 1)));
    };
    run(0);
  };
};

export const STACKS: Array<[string, Build]> = [
  ['Express 5', expressApp(express5)],
  ['Express 4', expressApp(express4)],
  ['node:http', bare],
  ['Fastify', fastifyStack],
  ['Koa', koaStack],
  ['Hono', honoStack],
];

/** How each stack's cache contexts and holes read the visitor, by the stack's name. */
export const VISITOR_READS: Record<string, VisitorReads> = {
  'Express 5': EXPRESS_READS,
  'Express 4': EXPRESS_READS,
  'node:http': EXPRESS_READS,
  Fastify: FASTIFY_READS,
  Koa: KOA_READS,
  Hono: HONO_READS,
};

/** The stacks' names, for tests that run a site over each in a process of its own (`CACHEGRAIN_TEST_STACK`). */
export const STACK_NAMES = STACKS.map(([name]) => name);

/** A stack's name as it can stand in a cache key prefix. */
export const stackKey = (name: string): string => name.replace(/\W/g, '').toLowerCase();
