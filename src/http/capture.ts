/**
 * Sees a response's head and body however the view writes them (`writeHead`, `write`, `end`, a
 * piped stream, `res.send`/`res.render` on top of those). The surprise: the head is decided at the
 * first of writeHead/write/end to reach this layer, so outer layers' later changes (an outer
 * `compression()` adding Content-Encoding) never reach what is captured.
 */
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * What to do with the body once the head is known:
 * `tee` sends each chunk on and keeps a copy; `hold` keeps the body back until `release`;
 * `pass` stops watching.
 */
export type CaptureMode = 'tee' | 'hold' | 'pass';

export interface CaptureHooks {
  /** Called once, when the status and headers are final from the view's side; may still change headers. */
  head(): CaptureMode;
  /**
   * Called once the view has ended: with the whole body, or null when it outgrew the limit (then
   * a held body has already been sent on). In `hold` mode, `release` sends the response; the hook may
   * change the status and headers first and send another body (an empty one for a 304).
   */
  done(body: Buffer | null, release: (body?: Buffer) => void): void;
}

type Callback = (error?: Error | null) => void;
const noop = () => undefined;

/** Intercepts `res` for one response; bodies beyond `maxBodyBytes` are never buffered. */
export function captureResponse(res: ServerResponse, maxBodyBytes: number, hooks: CaptureHooks): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  let mode: CaptureMode | undefined;
  let chunks: Buffer[] | null = [];
  let size = 0;
  let pendingCallbacks: Callback[] = [];

  const decide = () => {
    if (mode === undefined) mode = hooks.head();
    if (mode === 'pass') restore();
    return mode;
  };
  const restore = () => {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
    chunks = null;
  };
  const keep = (chunk: unknown, encoding: unknown): boolean => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function' || chunks === null) return chunks !== null;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8') : Buffer.from(chunk as Uint8Array);
    size += bytes.length;
    if (size > maxBodyBytes) {
      overflow();
      return false;
    }
    chunks.push(bytes);
    return true;
  };
  const overflow = () => {
    const held = mode === 'hold' ? chunks : null;
    mode = 'pass';
    restore();
    if (held !== null && held.length > 0) original.write.call(res, Buffer.concat(held), undefined as never, noop);
    for (const callback of pendingCallbacks) process.nextTick(callback);
    pendingCallbacks = [];
    hooks.done(null, () => undefined);
  };

  res.writeHead = function writeHead(this: ServerResponse, statusCode: number, reason?: unknown, headers?: unknown) {
    if (typeof reason !== 'string') {
      headers = reason;
      reason = undefined;
    }
    res.statusCode = statusCode;
    if (typeof reason === 'string') res.statusMessage = reason;
    if (headers !== undefined && headers !== null) applyHeaders(res, headers as OutgoingHttpHeaders | OutgoingHttpHeader[]);
    if (decide() === 'hold') return res;
    return original.writeHead.call(res, res.statusCode);
  } as ServerResponse['writeHead'];

  res.write = function write(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown) {
    const current = decide();
    if (current === 'pass') return original.write.call(res, chunk as never, encoding as never, callback as never);
    const kept = keep(chunk, encoding);
    if (mode === 'hold') {
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') pendingCallbacks.push(done as Callback);
      return true;
    }
    void kept;
    return original.write.call(res, chunk as never, encoding as never, callback as never);
  } as ServerResponse['write'];

  res.end = function end(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown) {
    const current = decide();
    if (current === 'pass') return original.end.call(res, chunk as never, encoding as never, callback as never);
    keep(chunk, encoding);
    const finished = typeof chunk === 'function' ? chunk : typeof encoding === 'function' ? encoding : callback;
    if (mode === 'hold' && chunks !== null) {
      const body = Buffer.concat(chunks);
      const callbacks = pendingCallbacks;
      restore();
      hooks.done(body, (sent = body) => {
        original.end.call(res, sent.length > 0 ? sent : undefined, undefined as never, finished as never);
        for (const callback of callbacks) process.nextTick(callback);
      });
      return res;
    }
    const body = chunks === null ? null : Buffer.concat(chunks);
    const wasCapturing = chunks !== null;
    restore();
    const result = original.end.call(res, chunk as never, encoding as never, callback as never);
    if (wasCapturing) hooks.done(body, () => undefined);
    void finished;
    return result;
  } as ServerResponse['end'];
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
