/** The three stacks the page cache runs on in tests: Express 5, Express 4 and a bare node:http server. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import express5 from 'express';
import type { Middleware } from '../../adapters/express.js';

// The Express 4 alias package ships no types; it has Express 5's shape where these tests touch it.
export const express4 = createRequire(import.meta.url)('express4') as typeof express5;
export { express5 };

export type View = (req: IncomingMessage, res: ServerResponse) => void;
export type Build = (middleware: Middleware[], view: View) => (req: IncomingMessage, res: ServerResponse) => void;

export const expressApp =
  (express: typeof express5): Build =>
  (middleware, view) => {
    const app = express();
    app.use(...(middleware as never[]), view as never);
    return app as never;
  };

/** The middleware run one after the other, as Connect would, in front of the view. */
export const bare: Build = (middleware, view) => (req, res) => {
  const run = (i: number) => {
    if (i === middleware.length) return view(req, res);
    middleware[i]!(req, res, (error) => {
      if (error) {
        res.statusCode = 500;
        res.end(String(error));
      } else run(i + 1);
    });
  };
  run(0);
};

export const STACKS: Array<[string, Build]> = [
  ['Express 5', expressApp(express5)],
  ['Express 4', expressApp(express4)],
  ['node:http', bare],
];
