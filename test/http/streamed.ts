/**
 * What the tests of streamed holes read responses and hold builders with: a response read part by
 * part as it arrives (decompressed as it comes, where asked), and gates a hole's builder waits on
 * until the test opens them, one call at a time, so that what a client sees is asserted by which
 * gates are open, never by timings.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { createGunzip } from 'node:zlib';

/** A response as it arrives: its head at once, its text as far as it came. */
export interface Arriving {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body's text so far. */
  text(): string;
  /** Resolves with the text so far once it holds `expected` (a string or a pattern); rejects, naming what came, if the body ends first. */
  until(expected: string | RegExp): Promise<string>;
  /** The whole body's text, once it ended. */
  ended: Promise<string>;
}

/** GETs `path` and answers once its head came; its body is read as it arrives, gunzipped as it comes with `gunzip`. */
export function arriving(base: string, path: string, options: { headers?: Record<string, string>; method?: string; gunzip?: boolean } = {}): Promise<Arriving> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (response) => {
      let text = '';
      let finished = false;
      const waiters = new Set<() => void>();
      const notify = () => {
        for (const waiter of [...waiters]) waiter();
      };
      const body = options.gunzip === true ? response.pipe(createGunzip()) : response;
      body.setEncoding('utf8');
      body.on('data', (chunk: string) => {
        text += chunk;
        notify();
      });
      const ended = new Promise<string>((done, failed) => {
        body.on('end', () => {
          finished = true;
          notify();
          done(text);
        });
        body.on('error', failed);
      });
      const holds = (expected: string | RegExp) => (typeof expected === 'string' ? text.includes(expected) : expected.test(text));
      resolve({
        status: response.statusCode!,
        headers: response.headers,
        text: () => text,
        ended,
        until: (expected) =>
          new Promise((found, missed) => {
            const check = () => {
              if (holds(expected)) {
                waiters.delete(check);
                found(text);
              } else if (finished) {
                waiters.delete(check);
                missed(new Error(`the body ended without ${String(expected)}: ${JSON.stringify(text)}`));
              }
            };
            waiters.add(check);
            check();
          }),
      });
    });
    request.on('error', reject);
    request.end();
  });
}

/** Gates the builders of holes wait on, by hole: each call of a builder holds one, opened by the test in turn. */
export class HoleGates {
  private readonly held = new Map<string, Array<() => void>>();
  private readonly arrivals = new Map<string, Array<() => void>>();
  /** How often each hole's builder was called. */
  readonly calls = new Map<string, number>();

  /** What a builder of hole `name` awaits: the test opening its gate. */
  hold(name: string): Promise<void> {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    return new Promise((open) => {
      this.queue(this.held, name).push(open);
      this.queue(this.arrivals, name).shift()?.();
    });
  }

  /** Opens the gate of the earliest call of hole `name` still held, once a call holds one. */
  async open(name: string): Promise<void> {
    if (this.queue(this.held, name).length === 0) await new Promise<void>((arrived) => this.queue(this.arrivals, name).push(arrived));
    this.queue(this.held, name).shift()!();
  }

  private queue(of: Map<string, Array<() => void>>, name: string): Array<() => void> {
    let queue = of.get(name);
    if (queue === undefined) of.set(name, (queue = []));
    return queue;
  }
}
