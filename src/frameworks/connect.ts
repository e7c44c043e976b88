/**
 * Connect middleware (`(req, res, next)`) run for a framework that sends responses itself (Fastify,
 * Koa, Hono): the framework must learn whether the middleware passed the request on or answered it,
 * so that it goes on, or stands aside and sends nothing of its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type ConnectMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * Runs `middleware` over the request: resolves true once it calls `next()`, false once it has
 * answered (its response finished or the connection closed), and rejects with what it passed to `next`.
 */
export function passesOn(middleware: ConnectMiddleware, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const answered = () => resolve(false);
    res.once('finish', answered).once('close', answered);
    try {
      middleware(req, res, (error) => {
        res.off('finish', answered).off('close', answered);
        if (error !== undefined && error !== null) reject(error);
        else resolve(true);
      });
    } catch (error) {
      reject(error);
    }
  });
}
