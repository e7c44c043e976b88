/**
 * A small memcached client on `node:net` for the memcached backend: the text protocol (with the meta
 * `mg` command where the classic ones cannot tell a value's remaining lifetime), one pipelined
 * connection per server, and a ketama-style hash ring over the servers. The surprise: replies carry no
 * request id, so each connection answers its commands strictly in order from a queue of parsers; and a
 * connection that receives nothing for twice `timeoutMs` while commands wait is taken for dead (a
 * half-open connection would otherwise queue commands until the kernel notices): it is destroyed,
 * everything queued on it rejects, and the next command opens a new one.
 */
import { createHash } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';

/** A reply line the server sent instead of the expected one (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`). */
export class MemcachedReplyError extends Error {
  override name = 'MemcachedReplyError';
  constructor(readonly reply: string) {
    super(`memcached replied ${reply}`);
  }
}

/** What `mg` answers for a present key: the value (when asked for with `v`) and the returned flags by letter. */
export interface MetaEntry {
  value?: Buffer;
  flags: Record<string, string>;
}

const CRLF = Buffer.from('\r\n');
const INCOMPLETE = Symbol('incomplete');
type Parser<T> = (reply: ReplyBuffer) => T | Error | typeof INCOMPLETE;

interface Pending {
  parse: Parser<unknown>;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** The bytes received on one connection and not yet parsed. */
class ReplyBuffer {
  private data: Buffer = Buffer.alloc(0);
  private offset = 0;
  /** How many more bytes the current parser needs before trying again (0: any new bytes). */
  missing = 0;

  append(chunks: Buffer[]): void {
    const rest = this.data.subarray(this.offset);
    this.data = rest.length === 0 && chunks.length === 1 ? chunks[0]! : Buffer.concat([rest, ...chunks]);
    this.offset = 0;
    this.missing = 0;
  }

  /** The next line without its CRLF, or undefined until it has fully arrived. */
  line(): string | undefined {
    const end = this.data.indexOf(CRLF, this.offset);
    if (end < 0) return undefined;
    const text = this.data.toString('utf8', this.offset, end);
    this.offset = end + 2;
    return text;
  }

  /**
   * The next line when it is a value's header, `VALUE <key> <flags> <bytes>`: its key and byte count,
   * read from the bytes, as a multi-get answers one header per value and a line made and split for
   * each cost more than the rest of its parse. Any other line (`END`, an error, a header that is not
   * one) as `line()` gives it; undefined until it has fully arrived.
   */
  valueHeader(): ValueHeader | string | undefined {
    const data = this.data;
    const start = this.offset;
    const end = data.indexOf(CRLF, start);
    if (end < 0) return undefined;
    const keyEnd = startsWith(data, start, VALUE_PREFIX) ? data.indexOf(SPACE, start + VALUE_PREFIX.length) : -1;
    const length = keyEnd < 0 || keyEnd >= end ? -1 : blockLengthOf(data, keyEnd, end);
    if (length < 0) return this.line();
    this.offset = end + 2;
    return { key: data.toString('utf8', start + VALUE_PREFIX.length, keyEnd), length };
  }

  /** A data block of `length` bytes and its trailing CRLF, or undefined until it has fully arrived. */
  block(length: number): Buffer | undefined {
    const available = this.data.length - this.offset;
    if (available < length + 2) {
      this.missing = length + 2 - available;
      return undefined;
    }
    const block = this.data.subarray(this.offset, this.offset + length);
    this.offset += length + 2;
    return block;
  }

  reset(): void {
    this.data = Buffer.alloc(0);
    this.offset = 0;
    this.missing = 0;
  }
}

/** A value's header in a multi-get's reply: the key it answers and the length of its block. */
interface ValueHeader {
  key: string;
  length: number;
}

const VALUE_PREFIX = Buffer.from('VALUE ');
const SPACE = 0x20;

/** Whether `data` holds `prefix` at `at`, compared in place (a few bytes: less than a call into Buffer's native compare). */
function startsWith(data: Buffer, at: number, prefix: Buffer): boolean {
  if (data.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

/** The third field of a value's header (`<key> <flags> <bytes>` from `keyEnd`, the space after its key, to `end`): its bytes; -1 when it is not a number. */
function blockLengthOf(data: Buffer, keyEnd: number, end: number): number {
  const flagsEnd = data.indexOf(SPACE, keyEnd + 1);
  if (flagsEnd < 0 || flagsEnd >= end) return -1;
  let value = 0;
  let at = flagsEnd + 1;
  for (; at < end && data[at] !== SPACE; at++) {
    const digit = data[at]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return at === flagsEnd + 1 ? -1 : value;
}

/** An error reply, or undefined for any other line. */
function replyError(line: string): MemcachedReplyError | undefined {
  return line === 'ERROR' || line.startsWith('CLIENT_ERROR') || line.startsWith('SERVER_ERROR') ? new MemcachedReplyError(line) : undefined;
}

const oneLine: Parser<string> = (reply) => {
  const line = reply.line();
  if (line === undefined) return INCOMPLETE;
  return replyError(line) ?? line;
};

/** Parses `VALUE <key> <flags> <bytes>` blocks up to `END`. */
function valuesParser(): Parser<Map<string, Buffer>> {
  const values = new Map<string, Buffer>();
  let header: ValueHeader | undefined;
  return (reply) => {
    for (;;) {
      if (header !== undefined) {
        const block = reply.block(header.length);
        if (block === undefined) return INCOMPLETE;
        values.set(header.key, block);
        header = undefined;
      }
      const next = reply.valueHeader();
      if (next === undefined) return INCOMPLETE;
      if (next === 'END') return values;
      if (typeof next === 'string') return replyError(next) ?? new MemcachedReplyError(next);
      header = next;
    }
  };
}

/** Parses a meta get reply: `EN`, `HD <flags>` or `VA <bytes> <flags>` and its block. */
function metaParser(): Parser<MetaEntry | undefined> {
  let head: { length: number; flags: Record<string, string> } | undefined;
  return (reply) => {
    if (head === undefined) {
      const line = reply.line();
      if (line === undefined) return INCOMPLETE;
      if (line === 'EN') return undefined;
      const parts = line.split(' ');
      if (parts[0] !== 'VA' && parts[0] !== 'HD') return replyError(line) ?? new MemcachedReplyError(line);
      const flags: Record<string, string> = {};
      for (const part of parts.slice(parts[0] === 'VA' ? 2 : 1)) flags[part[0]!] = part.slice(1);
      if (parts[0] === 'HD') return { flags };
      head = { length: Number(parts[1]), flags };
    }
    const value = reply.block(head.length);
    if (value === undefined) return INCOMPLETE;
    return { value, flags: head.flags };
  };
}

/** `host:port`, `[v6]:port` or `unix:/path`, as given and as a connection target. */
export interface ServerAddress {
  name: string;
  host?: string;
  port?: number;
  path?: string;
}

/** Parses one location entry; throws a message-only Error the caller prefixes with its context. */
export function parseServerAddress(location: string): ServerAddress {
  if (location.startsWith('unix:')) {
    const path = location.slice('unix:'.length);
    if (path === '') throw new Error(`'${location}' names no socket path`);
    return { name: location, path };
  }
  // A host holds no slash or space: `memcached//h:11211` is a slip of a URL, not a host.
  const match = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d+)$/.exec(location);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port > 0 && port < 65536)) throw new Error(`'${location}' is not host:port or unix:/path, as 127.0.0.1:11211`);
  return { name: location, host: match[1] ?? match[2], port };
}

/**
 * One server: a lazily opened socket, reopened on the next command after it is lost, or after it was
 * dropped for answering nothing within twice `timeoutMs` while commands waited.
 */
export class ServerConnection {
  readonly name: string;
  private socket: Socket | undefined;
  private readonly queue: Pending[] = [];
  private head = 0;
  private readonly reply = new ReplyBuffer();
  private incoming: Buffer[] = [];
  private incomingBytes = 0;
  private corked = false;
  private retryAt = 0;
  private lastError: Error | undefined;
  private closed = false;
  /** When the connection last showed it is alive while commands waited (Date.now() ms): a reply, or the first command. */
  private aliveAt = 0;
  /** Checks for a silent connection; runs only while commands wait. */
  private silenceTimer: NodeJS.Timeout | undefined;

  /**
   * @param timeoutMs how long connecting may take; the connection may stay silent twice as long while
   *   commands wait, so that a caller's own deadline of `timeoutMs` answers first and one late reply
   *   does not cost a reconnect
   * @param retryDelayMs after a failed connection attempt, how long commands fail at once before the next one
   */
  constructor(
    private readonly address: ServerAddress,
    private readonly timeoutMs: number,
    private readonly retryDelayMs: number,
  ) {
    this.name = address.name;
  }

  get(keys: string[]): Promise<Map<string, Buffer>> {
    return this.send([`get ${keys.join(' ')}\r\n`], valuesParser());
  }

  /** `mg <key> <flags>`; flags such as `v` (value), `t` (remaining seconds, -1 = never), `c` (cas id). */
  metaGet(key: string, flags: string): Promise<MetaEntry | undefined> {
    return this.send([flags === '' ? `mg ${key}\r\n` : `mg ${key} ${flags}\r\n`], metaParser());
  }

  /** `set`/`add`: answers `STORED` or `NOT_STORED`. */
  store(verb: 'set' | 'add', key: string, value: Buffer, exptime: number): Promise<string> {
    return this.send([`${verb} ${key} 0 ${exptime} ${value.length}\r\n`, value, CRLF], oneLine);
  }

  /** `cas`, storing only while the entry's cas id is still `casId`: answers `STORED`, `EXISTS` or `NOT_FOUND`. */
  storeIfUnchanged(casId: string, key: string, value: Buffer, exptime: number): Promise<string> {
    return this.send([`cas ${key} 0 ${exptime} ${value.length} ${casId}\r\n`, value, CRLF], oneLine);
  }

  /** Answers `DELETED` or `NOT_FOUND`. */
  delete(key: string): Promise<string> {
    return this.send([`delete ${key}\r\n`], oneLine);
  }

  /** Answers `TOUCHED` or `NOT_FOUND`. */
  touch(key: string, exptime: number): Promise<string> {
    return this.send([`touch ${key} ${exptime}\r\n`], oneLine);
  }

  /** Answers the new value as decimal text, or `NOT_FOUND`. */
  incr(key: string, delta: number): Promise<string> {
    return this.send([`incr ${key} ${delta}\r\n`], oneLine);
  }

  flushAll(): Promise<string> {
    return this.send(['flush_all\r\n'], oneLine);
  }

  /**
   * Ends the socket once the replies already asked for have arrived, waiting no longer than
   * `timeoutMs` for them; no command reconnects afterwards.
   */
  async close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    if (socket === undefined) return;
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.end();
    const timer = setTimeout(() => socket.destroy(), this.timeoutMs);
    await gone;
    clearTimeout(timer);
  }

  private send<T>(parts: Array<string | Buffer>, parse: Parser<T>): Promise<T> {
    let socket: Socket;
    try {
      socket = this.open();
    } catch (error) {
      return Promise.reject(error);
    }
    // Commands issued in one tick leave in one write: that is the pipelining.
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    for (const part of parts) socket.write(part);
    if (this.head === this.queue.length) {
      // Nothing was waiting: the silence starts counting with this command.
      this.aliveAt = Date.now();
      if (this.silenceTimer === undefined) this.watchSilence(this.silenceLimitMs);
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ parse, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private watchSilence(delayMs: number): void {
    this.silenceTimer = setTimeout(() => this.checkSilence(), delayMs);
    this.silenceTimer.unref();
  }

  private get silenceLimitMs(): number {
    return 2 * this.timeoutMs;
  }

  /** Destroys a connection that commands wait on and that has received nothing for the silence limit. */
  private checkSilence(): void {
    this.silenceTimer = undefined;
    const socket = this.socket;
    if (socket === undefined || this.head === this.queue.length) return;
    const silentFor = Date.now() - this.aliveAt;
    if (silentFor < this.silenceLimitMs) return this.watchSilence(this.silenceLimitMs - silentFor);
    const waiting = this.queue.length - this.head;
    socket.destroy(new Error(`no reply within ${this.silenceLimitMs} ms with ${waiting} command${waiting === 1 ? '' : 's'} waiting; connection dropped`));
  }

  private open(): Socket {
    if (this.socket !== undefined) return this.socket;
    if (this.closed) throw new Error('the cache was closed');
    if (Date.now() < this.retryAt) {
      throw new Error(`unreachable (${this.lastError?.message ?? 'connection failed'}); next attempt in ${this.retryAt - Date.now()} ms`);
    }
    const { host, port, path } = this.address;
    const socket = path !== undefined ? createConnection(path) : createConnection(port!, host);
    socket.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => socket.destroy(new Error(`could not connect within ${this.timeoutMs} ms`)), this.timeoutMs);
    socket.once('connect', () => {
      connected = true;
      this.lastError = undefined;
      clearTimeout(timer);
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => {
      this.lastError = error;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.socket === socket) this.socket = undefined;
      if (!connected) this.retryAt = Date.now() + this.retryDelayMs;
      this.failPending(new Error(this.lastError?.message ?? 'connection closed'));
    });
    this.socket = socket;
    return socket;
  }

  private receive(chunk: Buffer): void {
    this.aliveAt = Date.now();
    this.incoming.push(chunk);
    this.incomingBytes += chunk.length;
    // A large value arrives in many chunks: join them once, when the waiting block is complete.
    if (this.incomingBytes < this.reply.missing) return;
    this.reply.append(this.incoming);
    this.incoming = [];
    this.incomingBytes = 0;
    while (this.head < this.queue.length) {
      const pending = this.queue[this.head]!;
      let result: unknown;
      try {
        result = pending.parse(this.reply);
      } catch (error) {
        this.socket?.destroy(error as Error);
        return;
      }
      if (result === INCOMPLETE) return;
      this.queue[this.head++] = undefined as never;
      if (result instanceof Error) pending.reject(result);
      else pending.resolve(result);
    }
    this.queue.length = 0;
    this.head = 0;
  }

  private failPending(error: Error): void {
    const pending = this.queue.splice(this.head);
    this.queue.length = 0;
    this.head = 0;
    this.reply.reset();
    this.incoming = [];
    this.incomingBytes = 0;
    for (const { reject } of pending) reject(error);
  }
}

const POINTS_PER_HASH = 4;
const HASHES_PER_SERVER = 40;

/**
 * Consistent hashing as libketama does it: 160 points per server on a 32-bit ring, from md5 of
 * `<server>-<n>`; a key belongs to the first point at or after the md5 of the key. Adding a server
 * moves only the keys its points take over, about 1/n of them.
 */
export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(names: string[]) {
    const points: Array<[number, number]> = [];
    names.forEach((name, owner) => {
      for (let n = 0; n < HASHES_PER_SERVER; n++) {
        const digest = createHash('md5').update(`${name}-${n}`).digest();
        for (let p = 0; p < POINTS_PER_HASH; p++) points.push([digest.readUInt32LE(p * 4), owner]);
      }
    });
    points.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(points, ([point]) => point);
    this.owners = Uint16Array.from(points, ([, owner]) => owner);
  }

  /** The index of the server that owns `key`. */
  ownerOf(key: string): number {
    const hash = createHash('md5').update(key).digest().readUInt32LE(0);
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.points[middle]! < hash) low = middle + 1;
      else high = middle;
    }
    return this.owners[low === this.points.length ? 0 : low]!;
  }
}
