/**
 * What the tests of streamed holes read responses and hold builders with: a response read part by
 * part as it arrives (by Node's client, decompressed as it comes where asked, or by curl), and gates a hole's builder waits on
 * until the test opens them, one call at a time, so that what a client sees is asserted by which
 * gates are open, never by timings.
 */
import { spawn } from 'node:child_process';
import http, { type IncomingHttpHeaders } from 'node:http';
import { createGunzip } from 'node:zlib';
import { findExecutable } from '../setup/process.js';

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

/** A body's text as it arrives, with waits for what it holds. */
class ArrivingText {
  text = '';
  private finished = false;
  private readonly waiters = new Set<() => void>();
  readonly ended: Promise<string>;
  private endWith!: (text: string) => void;
  fail!: (error: Error) => void;

  constructor() {
    this.ended = new Promise((resolve, reject) => {
      this.endWith = resolve;
      this.fail = reject;
    });
    // A body the test stopped reading (it failed before) may fail unawaited.
    this.ended.catch(() => undefined);
  }

  add(chunk: string): void {
    this.text += chunk;
    this.notify();
  }

  end(): void {
    this.finished = true;
    this.notify();
    this.endWith(this.text);
  }

  until(expected: string | RegExp): Promise<string> {
    const holds = () => (typeof expected === 'string' ? this.text.includes(expected) : expected.test(this.text));
    return new Promise((found, missed) => {
      const check = () => {
        if (holds()) {
          this.waiters.delete(check);
          found(this.text);
        } else if (this.finished) {
          this.waiters.delete(check);
          missed(new Error(`the body ended without ${String(expected)}: ${JSON.stringify(this.text)}`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function arrivingOf(status: number, headers: IncomingHttpHeaders, body: ArrivingText): Arriving {
  return { status, headers, text: () => body.text, until: (expected) => body.until(expected), ended: body.ended };
}

/** GETs `path` and answers once its head came; its body is read as it arrives, gunzipped as it comes with `gunzip`. */
export function arriving(base: string, path: string, options: { headers?: Record<string, string>; method?: string; gunzip?: boolean } = {}): Promise<Arriving> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (response) => {
      const text = new ArrivingText();
      const body = options.gunzip === true ? response.pipe(createGunzip()) : response;
      body.setEncoding('utf8');
      body.on('data', (chunk: string) => text.add(chunk));
      body.on('end', () => text.end());
      body.on('error', (error) => text.fail(error));
      resolve(arrivingOf(response.statusCode!, response.headers, text));
    });
    request.on('error', reject);
    request.end();
  });
}

/**
 * GETs `url` with the curl binary (`--no-buffer`: it writes each part as it comes), read from its
 * output as it arrives; answers once the head came. A missing curl fails naming the Debian package.
 */
export function curlArriving(url: string, headers: Record<string, string> = {}): Promise<Arriving> {
  const args = [
    '--no-buffer',
    '--silent',
    '--show-error',
    '--include',
    ...Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    url,
  ];
  const curl = spawn(findExecutable(['curl', '/usr/bin/curl'], 'curl'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const body = new ArrivingText();
    let head: string | undefined = '';
    let errors = '';
    curl.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    curl.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (head === undefined) return body.add(chunk);
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = head.slice(0, end).split('\r\n');
      const parsed: IncomingHttpHeaders = {};
      for (const line of lines) parsed[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      const rest = head.slice(end + 4);
      head = undefined;
      resolve(arrivingOf(Number(statusLine!.split(' ')[1]), parsed, body));
      if (rest !== '') body.add(rest);
    });
    curl.on('close', (code) => {
      const failure = new Error(`curl ${url} exited with ${String(code)}: ${errors}`);
      if (head !== undefined) reject(failure);
      else if (code === 0) body.end();
      else body.fail(failure);
    });
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
