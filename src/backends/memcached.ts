/**
 * memcached: one or more `host:port` / `unix:/path` servers, keys spread by consistent
 * hashing, one pipelined multi-get per server. Keys memcached refuses throw InvalidCacheKeyError.
 * The surprises: `clear()` is `flush_all` of every server of the cache (memcached cannot list keys),
 * and counters go negative through a gets/cas loop, as memcached's own are unsigned.
 */
import { type CacheParams, type Entry, type WriteFailure } from '../cache/base-cache.js';
import { bytesCodec } from '../encoding/codec.js';
import { groupBy } from '../keys/group.js';
import { CacheServerError, describe, InvalidCacheKeyError } from '../errors/errors.js';
import { MEMCACHED_MAX_KEY_LENGTH, memcachedKeyProblems } from '../keys/cache-keys.js';
import { splitLocation } from '../store/cache-types.js';
import { HashRing, MemcachedReplyError, parseServerAddress, ServerConnection } from './memcached-client.js';
import { MUST_BE, optionShape } from '../options/option-rules.js';
import { SERVER_OPTIONS, ServerCache, type ServerOptions } from './server.js';

export interface MemcachedOptions extends ServerOptions {
  /**
   * After a failed connection attempt, how long commands to that server fail at once before the
   * next attempt, in milliseconds. Keeps a dead server from costing every request a connect.
   * @default 100
   */
  retryDelayMs?: number;
}

/** memcached's own default address, used when the cache has no location. */
const DEFAULT_LOCATION = '127.0.0.1:11211';
/** An expiry longer than this many seconds is sent as an absolute unix time (memcached's rule). */
const MAX_RELATIVE_EXPTIME = 30 * 86400;
/**
 * The latest absolute exptime memcached keeps (January 2038): it reads exptime as a signed 32-bit
 * number, and stores anything later as already expired.
 */
const MAX_ABSOLUTE_EXPTIME = 2 ** 31 - 1;
const DEFAULT_RETRY_DELAY_MS = 100;

export class MemcachedCache extends ServerCache<Buffer> {
  static override readonly optionNames = optionShape<MemcachedOptions>({ ...SERVER_OPTIONS, retryDelayMs: MUST_BE.nonNegativeMilliseconds });
  private readonly servers: ServerConnection[];
  private readonly ring: HashRing | undefined;

  constructor(params: CacheParams<MemcachedOptions> = {}) {
    super(params, bytesCodec);
    const retryDelayMs = (this.options as MemcachedOptions).retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    const locations = this.location.length > 0 ? this.location : [DEFAULT_LOCATION];
    this.servers = locations.map((location) => new ServerConnection(parseServerAddress(location), this.timeoutMs, retryDelayMs));
    this.ring = this.servers.length > 1 ? new HashRing(locations) : undefined;
  }

  /** memcached expires items by its own clock, to the second. */
  protected override get expiresByServerClock(): boolean {
    return true;
  }

  /** Every server of the location as `host:port` or `unix:/path`. */
  static override locationProblem(params: CacheParams<MemcachedOptions>): string | undefined {
    for (const location of splitLocation(params.location)) {
      try {
        parseServerAddress(location);
      } catch (error) {
        return `location ${(error as Error).message}`;
      }
    }
    return undefined;
  }

  /** Throws InvalidCacheKeyError for made keys memcached would refuse, instead of warning. */
  override validateKey(key: string): void {
    const [problem] = memcachedKeyProblems(key);
    if (problem !== undefined) throw new InvalidCacheKeyError(problem, key);
    // The server counts bytes: 250 code points of non-ASCII text can still be too long for it.
    if (key.length > MEMCACHED_MAX_KEY_LENGTH / 3 && Buffer.byteLength(key) > MEMCACHED_MAX_KEY_LENGTH) {
      throw new InvalidCacheKeyError(
        `Cache key will cause errors if used with memcached: '${key}' (longer than ${MEMCACHED_MAX_KEY_LENGTH} bytes in UTF-8)`,
        key,
      );
    }
  }

  protected override readOne(key: string): Promise<Entry<Buffer> | undefined> {
    const server = this.serverOf(key);
    return this.guard(server.name, undefined, async () => {
      const payload = (await server.get([key])).get(key);
      return payload === undefined ? undefined : { payload };
    });
  }

  protected read(keys: string[], withExpiry: boolean): Promise<Map<string, Entry<Buffer>>> {
    return this.readEntries(keys, withExpiry, false);
  }

  /** Reads behind incr and incrVersion, which write what they read: never a faked miss. */
  protected override readForUpdate(keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    return this.readEntries(keys, true, true);
  }

  private async readEntries(keys: string[], withExpiry: boolean, strict: boolean): Promise<Map<string, Entry<Buffer>>> {
    const found = new Map<string, Entry<Buffer>>();
    await this.eachServer(
      keys,
      async (server, serverKeys) => {
        if (!withExpiry) {
          for (const [key, payload] of await server.get(serverKeys)) found.set(key, { payload });
          return;
        }
        const now = this.now();
        const entries = await Promise.all(serverKeys.map((key) => server.metaGet(key, 'v t')));
        serverKeys.forEach((key, index) => {
          const entry = entries[index];
          if (entry === undefined) return;
          const ttl = Number(entry.flags.t);
          found.set(key, { payload: entry.value!, expiresAt: ttl < 0 ? null : now + ttl });
        });
      },
      undefined,
      strict,
    );
    return found;
  }

  protected override contains(key: string): Promise<boolean> {
    const server = this.serverOf(key);
    return this.guard(server.name, false, async () => (await server.metaGet(key, '')) !== undefined);
  }

  /**
   * `set` for each entry, pipelined. A value the server refuses (larger than its item size limit)
   * fails with its cause, so that `set` rejects with it, and the key is deleted so that no stale
   * value outlives the write.
   */
  protected async write(entries: Array<[string, Buffer]>, expiresAt: number | null): Promise<WriteFailure[]> {
    const exptime = this.exptime(expiresAt);
    if (entries.length === 1) {
      const [key, payload] = entries[0]!;
      const server = this.serverOf(key);
      return this.guard(server.name, [key], async () => {
        const refusal = await this.store(server, key, payload, exptime);
        return refusal === undefined ? [] : [refusal];
      });
    }
    const payloads = new Map(entries);
    const failed: WriteFailure[] = [];
    await this.eachServer(
      [...payloads.keys()],
      async (server, keys) => {
        const refusals = await Promise.all(keys.map((key) => this.store(server, key, payloads.get(key)!, exptime)));
        for (const refusal of refusals) if (refusal !== undefined) failed.push(refusal);
      },
      (keys) => failed.push(...keys),
    );
    return failed;
  }

  /**
   * `set`; a value the server refuses (larger than its item size limit) deletes the key and answers
   * the failure: with its cause, or with failOpen the key alone, the cause reported as an `error` event.
   */
  private async store(server: ServerConnection, key: string, payload: Buffer, exptime: number): Promise<WriteFailure | undefined> {
    try {
      await server.store('set', key, payload, exptime);
      return undefined;
    } catch (error) {
      if (!(error instanceof MemcachedReplyError)) throw error;
      await server.delete(key);
      const refusal = new CacheServerError(
        `cache '${this.alias}': server ${server.name} refused the value for key '${key}' (${payload.length} bytes): ${error.reply}; the key was deleted`,
        server.name,
      );
      if (!this.failOpen) return { key, error: refusal };
      this.reportError(refusal);
      return key;
    }
  }

  protected async insert(key: string, payload: Buffer, expiresAt: number | null): Promise<boolean> {
    const server = this.serverOf(key);
    return this.guard(server.name, false, async () => (await server.store('add', key, payload, this.exptime(expiresAt))) === 'STORED');
  }

  protected async remove(keys: string[]): Promise<number> {
    let removed = 0;
    await this.eachServer(keys, async (server, serverKeys) => {
      const replies = await Promise.all(serverKeys.map((key) => server.delete(key)));
      removed += replies.filter((reply) => reply === 'DELETED').length;
    });
    return removed;
  }

  protected async retime(key: string, expiresAt: number | null): Promise<boolean> {
    const server = this.serverOf(key);
    return this.guard(server.name, false, async () => (await server.touch(key, this.exptime(expiresAt))) === 'TOUCHED');
  }

  /** `flush_all` on every server of this cache: whatever else those servers hold is flushed too. */
  protected async removeAll(): Promise<void> {
    await Promise.all(this.servers.map((server) => this.guard(server.name, undefined, async () => void (await server.flushAll()))));
  }

  /**
   * Server-side `incr` where memcached's unsigned counters give the right answer; otherwise (a
   * negative delta, or a negative number stored) a gets/cas loop, which is atomic as well.
   */
  protected override incrBy(key: string, delta: number): Promise<number | undefined> {
    const server = this.serverOf(key);
    return this.guardStrict(server.name, async () => {
      if (delta >= 0) {
        try {
          const reply = await server.incr(key, delta);
          return reply === 'NOT_FOUND' ? undefined : Number(reply);
        } catch (error) {
          // "cannot increment or decrement non-numeric value": a negative number or not a number at all.
          if (!(error instanceof MemcachedReplyError && error.reply.startsWith('CLIENT_ERROR'))) throw error;
        }
      }
      for (;;) {
        const entry = await server.metaGet(key, 'v t c');
        if (entry === undefined) return undefined;
        let current: unknown;
        try {
          current = bytesCodec.decode(entry.value!);
        } catch (error) {
          // A TypeError sends the base to read the entry again, and to remove it as every read does.
          throw this.typeError(`cannot incr/decr key '${key}': its value cannot be decoded`, error);
        }
        if (typeof current !== 'number' || !Number.isSafeInteger(current)) {
          throw this.typeError(`cannot incr/decr key '${key}': its value is not an integer (got ${describe(current)})`);
        }
        const ttl = Number(entry.flags.t);
        // The lifetime the server reports left, as it is: it holds the second `exptime` added already.
        const exptime = ttl < 0 ? 0 : serverExptime(Math.max(ttl, 1), this.now() + ttl);
        const reply = await server.storeIfUnchanged(entry.flags.c!, key, bytesCodec.encode(current + delta), exptime);
        if (reply === 'STORED') return current + delta;
        if (reply === 'NOT_FOUND') return undefined;
        // EXISTS: another writer got there first; read again.
      }
    });
  }

  protected override async disconnect(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
  }

  private serverOf(key: string): ServerConnection {
    return this.ring === undefined ? this.servers[0]! : this.servers[this.ring.ownerOf(key)]!;
  }

  /**
   * Runs `command` once per server with that server's keys, servers in parallel, each under its
   * own deadline. When a server fails and failOpen answers for it, `onFallback` gets its keys.
   */
  private async eachServer(
    keys: string[],
    command: (server: ServerConnection, keys: string[]) => Promise<void>,
    onFallback?: (keys: string[]) => void,
    strict = false,
  ): Promise<void> {
    const byServer = groupBy(keys, (key) => this.serverOf(key));
    await Promise.all(
      [...byServer].map(async ([server, serverKeys]) => {
        const run = async () => {
          await command(server, serverKeys);
          return true;
        };
        const done = await (strict ? this.guardStrict(server.name, run) : this.guard(server.name, false, run));
        if (!done) onFallback?.(serverKeys);
      }),
    );
  }

  /**
   * memcached's exptime for an absolute expiry: 0 = never, -1 = already expired, else a second more
   * than asked, rounded up: memcached's clock moves a second at a time, and an item stored for N
   * seconds goes at the N-th tick after it, which may come barely past N - 1 seconds (an item of
   * one second could be gone a moment later). Save at exactly 30 days, the longest relative exptime:
   * the second more would make it an absolute time, which hangs on the server's clock agreeing with
   * this one, for a second that matters only to short entries.
   */
  private exptime(expiresAt: number | null): number {
    if (expiresAt === null) return 0;
    const seconds = Math.ceil(expiresAt - this.now());
    if (seconds <= 0) return -1;
    return seconds === MAX_RELATIVE_EXPTIME ? seconds : serverExptime(seconds + 1, expiresAt + 1);
  }
}

/**
 * The exptime of `seconds` from now, whose absolute time is `at`: up to 30 days a relative number
 * of seconds, beyond that an absolute unix time. A time later than memcached can represent is sent
 * as never: kept as long as the server keeps anything, rather than stored already expired or cut short.
 */
function serverExptime(seconds: number, at: number): number {
  if (seconds <= MAX_RELATIVE_EXPTIME) return seconds;
  const absolute = Math.ceil(at);
  return absolute > MAX_ABSOLUTE_EXPTIME ? 0 : absolute;
}
