/**
 * Sees a response's head and body however the view writes them (`writeHead`, `write`, `end`, a
 * piped stream, `res.send`/`res.render` on top of those), and holds them back where asked. The
 * surprise: `teeResponse` learns the head when it passes through this layer's `writeHead`, after
 * every layer added later (decorators, an inner `compression()`) has changed it and before any
 * earlier layer (an outer `compression()`) does.
 */
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { endInParts, lengthOf, responseWriter, type WritesItself } from './body-writer.js';

/**
 * The largest body held back, in bytes, where a caller names no limit: the page cache stores no
 * bigger one, and conditional GET sends a bigger one without an ETag.
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

type Callback = (error?: Error | null) => void;
type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
type End = (chunk?: unknown, encoding?: unknown, callback?: unknown) => ServerResponse;
type WriteHead = (statusCode: number, ...rest: unknown[]) => ServerResponse;

/** What `Watch.keep` answers for a chunk it did not keep: the body outgrew the limit. */
const OUTGROWN = Symbol('outgrown');

/** Common to both ways of watching: the saved functions, the kept chunks and the size limit. */
class Watch {
  readonly writeHead: WriteHead;
  readonly write: Write;
  readonly end: End;
  chunks: Buffer[] | null = [];
  private size = 0;
  wrappers: { writeHead?: unknown; write?: unknown; end?: unknown } = {};

  constructor(
    readonly res: ServerResponse,
    private readonly maxBodyBytes: number,
  ) {
    this.writeHead = res.writeHead as unknown as WriteHead;
    this.write = res.write as unknown as Write;
    this.end = res.end as unknown as End;
  }

  install(wrappers: { writeHead: unknown; write: unknown; end: unknown }): void {
    this.wrappers = wrappers;
    Object.assign(this.res, wrappers);
  }

  /** Puts the saved functions back, unless a later layer has wrapped ours (then ours pass through). */
  uninstall(): void {
    const res = this.res as unknown as Record<string, unknown>;
    if (res.writeHead === this.wrappers.writeHead) res.writeHead = this.writeHead;
    if (res.write === this.wrappers.write) res.write = this.write;
    if (res.end === this.wrappers.end) res.end = this.end;
    this.chunks = null;
  }

  /**
   * Keeps the chunk's bytes: a string encoded once, bytes copied from a `write` (a stream may fill
   * its buffer again once the write is done) and taken as they are from the `end`. Answers the chunk
   * to send on (the bytes kept, so that Node does not encode a string again), or `OUTGROWN`, keeping
   * nothing from then on, once the body outgrows the limit.
   */
  keep(chunk: unknown, encoding: unknown, last: boolean): unknown {
    if (this.chunks === null) return OUTGROWN;
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return chunk;
    const bytes = bytesOf(chunk, encoding, !last);
    this.size += bytes.length;
    if (this.size > this.maxBodyBytes) {
      this.chunks = null;
      return OUTGROWN;
    }
    this.chunks.push(bytes);
    return bytes;
  }

  /** The body kept, whole: the one chunk as it is when the view wrote one. */
  body(): Buffer {
    const chunks = this.chunks!;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  takeHead(statusCode: number, rest: unknown[]): void {
    applyHead(this.res, statusCode, rest);
  }
}

/**
 * What the head decides of the body. `pass`: sent on, nothing kept. `keep`: sent on, a copy kept for
 * `done`. `replace`: `body` is sent instead of the view's, the hook having set the status and headers
 * to go with it. `hold`: nothing goes out until the view ends, the body is kept whole, and `send`
 * makes what is sent.
 */
export type HeadDecision = { kind: 'pass' } | { kind: 'keep' } | { kind: 'replace'; body: Buffer } | { kind: 'hold' };

/** The decisions that carry nothing, made once: a head decides on every miss. */
export const PASS_BODY: HeadDecision = Object.freeze({ kind: 'pass' });
export const KEEP_BODY: HeadDecision = Object.freeze({ kind: 'keep' });
export const HOLD_BODY: HeadDecision = Object.freeze({ kind: 'hold' });

export interface TeeHooks {
  /** The head is final from the view's side (headers may still be changed): what becomes of the body. */
  head(): HeadDecision;
  /**
   * Whether `head` may answer a replacement or hold: the head is then decided before the body's first
   * bytes, which costs a response its automatic Content-Length (so it is asked only when it may).
   */
  mayReplace?(): boolean;
  /**
   * The view ended: the whole body, or null when it outgrew the limit. Called once if `head` said keep
   * or hold, before the end of the response goes out: a promise holds that end back until it settles.
   */
  done(body: Buffer | null): Promise<void> | void;
  /**
   * After `head` said hold and `done` was called: the body to send for the view's whole body, whole
   * or as parts sent one after the other (the hook may change the status and headers until it
   * resolves; undefined sends none), or a body that writes itself once the head has gone out, its
   * end held until `done` has settled.
   */
  send?(body: Buffer): Promise<Buffer | Buffer[] | undefined | WritesItself>;
}

/**
 * Sends everything on as it comes, keeping a copy of a body up to `maxBodyBytes`; or, when the hooks
 * say hold, sends nothing until the view ends and then what they make of the whole body.
 */
export function teeResponse(res: ServerResponse, maxBodyBytes: number, hooks: TeeHooks): void {
  const watch = new Watch(res, maxBodyBytes);
  let keeping: boolean | undefined;
  let replacement: Buffer | undefined;
  /** While holding: the whole body so far, and the callbacks of the writes it holds. */
  let held: { chunks: Buffer[]; callbacks: Callback[] } | undefined;
  /** Set while the view's end decides the head: it is taken, and goes out with the end. */
  let ending = false;
  const finish = (body: Buffer | null) => {
    keeping = false;
    watch.uninstall();
    return hooks.done(body);
  };
  const decideHeadFirst = () => {
    if (keeping === undefined && !res.headersSent && hooks.mayReplace?.()) (res.writeHead as unknown as WriteHead)(res.statusCode);
  };
  const sendHeld = (finished: unknown) => {
    const chunks = held!.chunks;
    const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const done = finish(whole.length <= maxBodyBytes ? whole : null);
    for (const callback of held!.callbacks) process.nextTick(callback);
    const fail = (error: Error) => res.destroy(error);
    const sendWhole = (body: Buffer | Buffer[] | undefined) => {
      const parts = body === undefined ? [] : Array.isArray(body) ? body : [body];
      if (body !== whole && body !== undefined && res.statusCode !== 304) res.setHeader('Content-Length', lengthOf(parts));
      watch.writeHead.call(res, res.statusCode);
      endInParts(res, parts, { write: watch.write, end: watch.end, finished: finished as () => void });
    };
    // A body that writes itself goes out as it is written, the store running meanwhile: only its end waits for it.
    const endAfterDone = () => {
      const end = () => watch.end.call(res, undefined, undefined, finished);
      if (done === undefined) end();
      else done.then(end, fail);
    };
    hooks.send!(whole)
      .then((body) => {
        if (typeof body !== 'function') return done === undefined ? sendWhole(body) : done.then(() => sendWhole(body));
        watch.writeHead.call(res, res.statusCode);
        body(responseWriter(res, watch.write as (chunk: Buffer) => boolean, endAfterDone));
      }, fail)
      .catch(fail);
  };
  watch.install({
    writeHead(statusCode: number, ...rest: unknown[]) {
      if (keeping === undefined) {
        watch.takeHead(statusCode, rest);
        const decision = hooks.head();
        if (decision.kind === 'hold') {
          keeping = true;
          held = { chunks: [], callbacks: [] };
          return res;
        }
        if (decision.kind === 'replace') {
          replacement = decision.body;
          keeping = false;
        } else keeping = decision.kind === 'keep';
        if (keeping === false && replacement === undefined) watch.uninstall();
        else if (keeping && watch.chunks === null) void finish(null);
        // Decided by the view's end: the end sends it, as the view's own end would (with the length of its body).
        return ending ? res : watch.writeHead.call(res, res.statusCode);
      }
      if (held !== undefined) {
        watch.takeHead(statusCode, rest);
        return res;
      }
      return watch.writeHead.call(res, statusCode, ...rest);
    },
    write(chunk: unknown, encoding?: unknown, callback?: unknown) {
      decideHeadFirst();
      if (held !== undefined) {
        held.chunks.push(bytesOf(chunk, encoding));
        const finished = typeof encoding === 'function' ? encoding : callback;
        if (typeof finished === 'function') held.callbacks.push(finished as Callback);
        return true;
      }
      if (replacement !== undefined) {
        // The view's body is dropped for the replacement; its writes still complete.
        const finished = typeof encoding === 'function' ? encoding : callback;
        if (typeof finished === 'function') process.nextTick(finished as Callback);
        return true;
      }
      // Before the head is known the chunk is kept provisionally: writing it decides the head.
      if (keeping !== false) {
        const kept = watch.keep(chunk, encoding, false);
        if (kept === OUTGROWN && keeping === true) void finish(null);
        else if (typeof chunk === 'string' && kept !== OUTGROWN) return watch.write.call(res, kept, typeof encoding === 'function' ? encoding : callback);
      }
      return watch.write.call(res, chunk, encoding, callback);
    },
    end(chunk?: unknown, encoding?: unknown, callback?: unknown) {
      decideHeadFirst();
      if (keeping === undefined && !res.headersSent) {
        // Judged now, through every layer as the end would send it, so that what the judgement
        // starts (the store) comes before the end; the end then sends it with its body's length.
        ending = true;
        try {
          (res.writeHead as unknown as WriteHead)(res.statusCode);
        } finally {
          ending = false;
        }
      }
      const finished = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : callback;
      if (held !== undefined) {
        if (typeof chunk !== 'function' && chunk !== undefined && chunk !== null) held.chunks.push(bytesOf(chunk, encoding, false));
        sendHeld(finished);
        return res;
      }
      if (replacement !== undefined) {
        const body = replacement;
        watch.uninstall();
        return watch.end.call(res, body, undefined, finished);
      }
      if (keeping !== false && typeof chunk !== 'function') {
        const kept = watch.keep(chunk, encoding, true);
        if (kept === OUTGROWN && keeping === true) void finish(null);
        else if (typeof chunk === 'string' && kept !== OUTGROWN) {
          // Sent as the bytes kept: Node would encode the string again.
          chunk = kept;
          encoding = typeof encoding === 'function' ? encoding : callback;
          callback = undefined;
        }
      }
      const done = keeping === true && watch.chunks !== null ? finish(watch.body()) : undefined;
      if (done === undefined) return watch.end.call(res, chunk, encoding, callback);
      const waiting = endedForNow(res);
      const end = () => waiting.release(() => watch.end.call(res, chunk, encoding, callback));
      done.then(end, end);
      return res;
    },
  });
}

/** The responses whose end waits (see `endedForNow`): they read as ended meanwhile. */
const ENDS_HELD = new WeakSet<object>();

/**
 * A response's `name` (a getter of Node's) as it reads while its end may be held: true while it is,
 * else what Node answers. The same getters for every response, installed once on each that waits
 * and never deleted, so that its shape stays one V8 keeps fast (a deleted property turns a response
 * into a dictionary, and every later read of it, Node's and the framework's, slower).
 */
function endedWhileHeld(name: 'writableEnded' | 'headersSent'): PropertyDescriptor {
  return {
    configurable: true,
    get(this: object) {
      return ENDS_HELD.has(this) || (Reflect.get(Object.getPrototypeOf(this) as object, name, this) as boolean);
    },
  };
}
const ENDED_WHILE_HELD = { writableEnded: endedWhileHeld('writableEnded'), headersSent: endedWhileHeld('headersSent') };

/**
 * Makes a response whose end waits look ended to whoever asks (`writableEnded`, `headersSent`; Node
 * itself reads neither), and keeps the writes and ends made meanwhile for after its end: a framework
 * that answers what its view left unended (Koa, when a view ends Node's response itself) or an error
 * handler meets an ended response, as it would had the view's end gone out at once.
 */
function endedForNow(res: ServerResponse): { release(end: () => void): void } {
  const later: Array<() => void> = [];
  const { write, end } = res as unknown as { write: Write; end: End };
  const keptWrite: Write = (...args) => (later.push(() => write.apply(res, args)), true);
  const keptEnd: End = (...args) => (later.push(() => end.apply(res, args)), res);
  if (!Object.hasOwn(res, 'headersSent')) Object.defineProperties(res, ENDED_WHILE_HELD);
  ENDS_HELD.add(res);
  Object.assign(res, { write: keptWrite, end: keptEnd });
  return {
    release(endNow) {
      ENDS_HELD.delete(res);
      const current = res as unknown as { write: Write; end: End };
      if (current.write === keptWrite) current.write = write;
      if (current.end === keptEnd) current.end = end;
      endNow();
      for (const call of later) call();
    },
  };
}

/** A chunk as `write` and `end` take it, as bytes (nothing for none): a string encoded, bytes copied or, unless `copy`, as they are. */
function bytesOf(chunk: unknown, encoding: unknown, copy = true): Buffer {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return Buffer.alloc(0);
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (copy) return Buffer.from(chunk as Uint8Array);
  const view = chunk as Uint8Array;
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Holds the head and body back until the view ends, then calls `done(body, release)`: the hook may
 * change the status and headers and calls `release(body?)` to send (another body, say an empty one).
 * A body over `maxBodyBytes` is sent on as it stands and `done` is not called.
 */
export function holdResponse(res: ServerResponse, maxBodyBytes: number, done: (body: Buffer, release: (body?: Buffer) => void) => void): void {
  const watch = new Watch(res, maxBodyBytes);
  let callbacks: Callback[] = [];
  let holding = true;
  const flush = () => {
    const held = watch.chunks ?? [];
    holding = false;
    watch.uninstall();
    for (const callback of callbacks) process.nextTick(callback);
    return held;
  };
  watch.install({
    writeHead(statusCode: number, ...rest: unknown[]) {
      if (!holding) return watch.writeHead.call(res, statusCode, ...rest);
      watch.takeHead(statusCode, rest);
      return res;
    },
    write(chunk: unknown, encoding?: unknown, callback?: unknown) {
      if (!holding) return watch.write.call(res, chunk, encoding, callback);
      const held = watch.chunks ?? [];
      if (watch.keep(chunk, encoding, false) === OUTGROWN) {
        flush();
        if (held.length > 0) watch.write.call(res, Buffer.concat(held));
        return watch.write.call(res, chunk, encoding, callback);
      }
      const finished = typeof encoding === 'function' ? encoding : callback;
      if (typeof finished === 'function') callbacks.push(finished as Callback);
      return true;
    },
    end(chunk?: unknown, encoding?: unknown, callback?: unknown) {
      if (!holding) return watch.end.call(res, chunk, encoding, callback);
      const held = watch.chunks ?? [];
      const kept = watch.keep(chunk, encoding, true) !== OUTGROWN;
      const body = Buffer.concat(kept ? (watch.chunks ?? []) : held);
      flush();
      if (!kept) {
        if (held.length > 0) watch.write.call(res, body);
        return watch.end.call(res, chunk, encoding, callback);
      }
      const finished = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : callback;
      done(body, (sent = body) => void watch.end.call(res, sent.length > 0 ? sent : undefined, undefined, finished));
      return res;
    },
  });
}

/**
 * Applies writeHead's arguments (`statusCode[, reason][, headers]`) to the response as the real
 * writeHead would, so that a later `writeHead(res.statusCode)` sends the same head: a layer between
 * the view and the socket then sees, and may change, headers a framework passes to writeHead itself.
 */
export function applyHead(res: ServerResponse, statusCode: number, rest: unknown[]): void {
  let [reason, headers] = rest;
  if (typeof reason !== 'string') {
    headers ??= reason;
    reason = undefined;
  }
  res.statusCode = statusCode;
  if (typeof reason === 'string') res.statusMessage = reason;
  if (headers !== undefined && headers !== null) applyHeaders(res, headers as OutgoingHttpHeaders | OutgoingHttpHeader[]);
}

/** Applies `writeHead`'s headers argument (an object, a flat list, or a list of pairs) with `setHeader`. */
function applyHeaders(res: ServerResponse, headers: OutgoingHttpHeaders | OutgoingHttpHeader[]): void {
  if (!Array.isArray(headers)) {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
    return;
  }
  const collected = new Map<string, { name: string; values: string[] }>();
  const add = (name: unknown, value: unknown) => {
    const lower = String(name).toLowerCase();
    const entry = collected.get(lower) ?? { name: String(name), values: [] };
    entry.values.push(String(value));
    collected.set(lower, entry);
  };
  if (Array.isArray(headers[0])) for (const pair of headers as unknown as unknown[][]) add(pair[0], pair[1]);
  else for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i], headers[i + 1]);
  for (const { name, values } of collected.values()) res.setHeader(name, values.length === 1 ? values[0]! : values);
}
