/**
 * An edge's purge API played by a local server: it records each request it receives and answers as
 * the test says, so a test checks the documented request (method, path, authentication, body) and
 * plays an edge that fails, answers late or never.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from '../http/client.js';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** How the edge answers one request: a status (200 by default), one once the promise settles, or `hang` to keep it waiting. */
export type Answer = number | Promise<number> | 'hang';

export interface RecordingEdge {
  url: string;
  received: Received[];
  /** The answers to the next requests, in order; 200 once they are used up. */
  answers: Answer[];
  /** Settles when the edge has received `count` requests in all. */
  receivedCount(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function recordingEdge(): Promise<RecordingEdge> {
  const received: Received[] = [];
  const answers: Answer[] = [];
  const waiting: { count: number; resolve: () => void }[] = [];
  const hanging: ServerResponse[] = [];
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      for (const wait of waiting.filter((each) => received.length >= each.count)) wait.resolve();
      const answer = answers.shift() ?? 200;
      if (answer === 'hang') return void hanging.push(res);
      const respond = (status: number) =>
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(status < 300 ? '{"success":true}' : '{"success":false}');
      if (typeof answer === 'number') respond(answer);
      else void answer.then(respond);
    });
  });
  return {
    url: server.url,
    received,
    answers,
    receivedCount: (count) => (received.length >= count ? Promise.resolve() : new Promise((resolve) => waiting.push({ count, resolve }))),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.server.closeAllConnections();
      await server.close();
    },
  };
}
