/**
 * redis: a cache on Redis through ioredis: one server, a leader with read replicas, or a
 * Cluster. Integers are stored as decimal text so incr is a server-side INCRBY. The surprise: clear()
 * never flushes; it SCANs for this cache's key pattern, which a custom keyFunction must spell out.
 */
import type { Cluster, ChainableCommander, ClusterOptions, Redis, RedisOptions as IORedisOptions } from 'ioredis';
import type { CacheParams, Entry } from '../cache/base-cache.js';
import { textOrBytesCodec } from '../encoding/codec.js';
import { groupBy } from '../keys/group.js';
import { CacheServerError } from '../errors/errors.js';
import { defaultKeyFunction } from '../keys/cache-keys.js';
import { splitLocation } from '../store/cache-types.js';
import { coalesceWrites, DISCONNECT_TIMEOUT_MS, loadRedisClients, quit } from './ioredis.js';
import type { BusConnections } from '../l1/l1-bus.js';
import type { L1Settings } from '../l1/l1-settings.js';
import { MUST_BE, optionShape, ValueRule } from '../options/option-rules.js';
import { SERVER_FAILED, SERVER_OPTIONS, ServerCache, type ServerOptions } from './server.js';

export interface RedisOptions extends ServerOptions {
  /** Treat the location URLs as seed nodes of a Redis Cluster. @default false */
  cluster?: boolean;
  /**
   * A Redis glob (SCAN MATCH) that matches every key of this cache and nothing else, for `clear()`.
   * Needed only with a custom `keyFunction`: without it, `clear()` on such a cache rejects rather than
   * guess. With the default key function the pattern is `<keyPrefix>:*`, narrowed to `<keyPrefix>:<version>:`.
   * @default derived from keyPrefix
   */
  clearPattern?: string;
  /**
   * Options for ioredis itself (`new Redis(url, client)`, or `new Cluster(nodes, client)` with `cluster`).
   * Defaults that differ from ioredis's, so that a dead server never holds a command: `lazyConnect: true`,
   * `maxRetriesPerRequest: 0`, `connectTimeout: 2000` (ms), and a reconnect every 100 ms growing to 1 s, forever.
   */
  client?: RedisClientOptions;
}

/**
 * Options handed to ioredis as they are: its `RedisOptions` (host, port, username, password, db,
 * tls…), or with `cluster` its `ClusterOptions` (`redisOptions`, `scaleReads`…). Typed loosely, so
 * that the types of this package need no ioredis: an application without the redis backend compiles
 * without it installed.
 */
export type RedisClientOptions = object;

/** A batch read's answer when the server failed (failOpen): every key missing. */
const NO_PAYLOADS: ReadonlyArray<Buffer | undefined> = [];

/** An MGET's reply as `readPayloads` answers it, in place: a missing key's null is undefined (a null payload is a value in memory). */
function missingAsUndefined(reply: Array<Buffer | null | undefined>): Array<Buffer | undefined> {
  for (let i = 0; i < reply.length; i++) if (reply[i] === null) reply[i] = undefined;
  return reply as Array<Buffer | undefined>;
}

const DEFAULT_CLIENT_OPTIONS = {
  lazyConnect: true,
  // Commands in flight when a connection drops fail at once instead of waiting for a reconnect.
  maxRetriesPerRequest: 0,
  connectTimeout: 2000,
  disconnectTimeout: DISCONNECT_TIMEOUT_MS,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
};

/** Atomic only where a script is: missing keys stay missing, persistent keys still count as live. */
const SCRIPTS = {
  cachegrainIncrBy: `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])`,
  cachegrainPersist: `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1`,
  // Flat: value, PTTL, value, PTTL, ... (a nested table would stop at the first missing value).
  cachegrainReadWithExpiry: `local values = redis.call('MGET', unpack(KEYS))
local result = {}
for i, key in ipairs(KEYS) do
  result[2 * i - 1] = values[i]
  result[2 * i] = values[i] and redis.call('PTTL', key) or -2
end
return result`,
};

/** The client API this backend uses, with the scripts above defined on it. */
type Client = Redis & {
  cachegrainIncrBy(key: string, delta: number): Promise<number | null>;
  cachegrainPersist(key: string): Promise<number>;
  cachegrainReadWithExpiryBuffer(numberOfKeys: number, ...keys: string[]): Promise<Array<Buffer | number | null>>;
};

export class RedisCache extends ServerCache<Buffer | string> {
  static override readonly optionNames = optionShape<RedisOptions>({
    ...SERVER_OPTIONS,
    cluster: MUST_BE.boolean,
    clearPattern: new ValueRule('a non-empty string', (value) => typeof value === 'string' && value !== ''),
    // ioredis's own options: ioredis takes them as they are, so only their being an object is checked here.
    client: new ValueRule('an object of ioredis options', (value) => value !== null && typeof value === 'object'),
  });
  /** Where every write goes: the single server, the first URL, or the cluster. */
  private readonly leader: Client;
  private readonly leaderName: string;
  /** Read replicas (none on a single server or a cluster): reads go round robin to those that answer. */
  private readonly replicas: Reader[];
  private nextReplica = 0;
  private readonly cluster: boolean;
  private readonly keySlot: (key: string) => number;
  private readonly clearPattern?: string;

  constructor(params: CacheParams<RedisOptions> = {}) {
    super(params, textOrBytesCodec);
    const { cluster = false, clearPattern, client = {} } = (params.options ?? {}) as RedisOptions;
    const clientOptions = client as IORedisOptions & Partial<ClusterOptions>;
    if (clientOptions.keyPrefix !== undefined) {
      throw this.typeError("options.client.keyPrefix is not supported (clear() could not find the keys): use the cache's keyPrefix instead");
    }
    const urls = this.location.map((location) => new URL(location));
    this.cluster = cluster;
    this.clearPattern = clearPattern;
    const { ioredis, keySlot } = loadRedisClients();
    this.keySlot = keySlot;
    if (cluster) {
      const nodes = urls.map((url) => ({ host: url.hostname, port: Number(url.port || 6379) }));
      const { username, password } = urls[0]!;
      const redisOptions = {
        ...(username ? { username: decodeURIComponent(username) } : {}),
        ...(password ? { password: decodeURIComponent(password) } : {}),
        maxRetriesPerRequest: DEFAULT_CLIENT_OPTIONS.maxRetriesPerRequest,
        connectTimeout: DEFAULT_CLIENT_OPTIONS.connectTimeout,
        disconnectTimeout: DEFAULT_CLIENT_OPTIONS.disconnectTimeout,
        ...(clientOptions.redisOptions as object | undefined),
      };
      const clusterOptions = { lazyConnect: true, clusterRetryStrategy: DEFAULT_CLIENT_OPTIONS.retryStrategy, ...clientOptions, redisOptions };
      const client = new ioredis.Cluster(nodes, clusterOptions);
      this.leaderName = `cluster ${this.location.map(redact).join(',')}`;
      this.leader = this.prepare(client as unknown as Redis, this.leaderName);
      this.replicas = [];
    } else {
      const [leader, ...replicas] = this.location.map((location) => {
        const name = redact(location);
        return { client: this.prepare(new ioredis.Redis(location, { ...DEFAULT_CLIENT_OPTIONS, ...clientOptions }), name), name };
      });
      this.leader = leader!.client;
      this.leaderName = leader!.name;
      this.replicas = replicas;
    }
  }

  /** Every URL of the location parsed as ioredis would take it: redis:// or rediss://, with a host, on a Cluster database 0. */
  static override locationProblem(params: CacheParams<RedisOptions>): string | undefined {
    const locations = splitLocation(params.location);
    if (locations.length === 0) return 'the redis backend needs a location: one or more redis:// URLs';
    for (const location of locations) {
      const url = URL.canParse(location) ? new URL(location) : undefined;
      if ((url?.protocol !== 'redis:' && url?.protocol !== 'rediss:') || url.hostname === '') {
        return `location must be redis:// or rediss:// URLs, as redis://127.0.0.1:6379/0 (got '${redact(location)}')`;
      }
      if (params.options?.cluster === true && !/^\/?0?$/.test(url.pathname)) return `a Redis Cluster has only database 0 (got '${redact(location)}')`;
    }
    return undefined;
  }

  protected override get hasOwnBus(): boolean {
    return true;
  }

  /** Redis expires keys by its own clock. */
  protected override get expiresByServerClock(): boolean {
    return true;
  }

  /** Invalidations go through this cache's own server unless `l1.bus` names another. */
  protected override openL1Bus(settings: L1Settings): BusConnections {
    if (settings.bus !== undefined) return super.openL1Bus(settings);
    const subscriber = this.leader.duplicate() as Redis;
    // The publisher is the cache's own connection: the cache closes it.
    return { publisher: this.leader, subscriber, close: async () => subscriber.disconnect() };
  }

  /** Defines the scripts, and turns client errors into `error` events (an unheard one would throw). */
  private prepare(client: Redis | Cluster, name: string): Client {
    for (const [command, lua] of Object.entries(SCRIPTS))
      client.defineCommand(command, { lua, numberOfKeys: command === 'cachegrainReadWithExpiry' ? undefined : 1 });
    client.on('error', (error: Error) => this.reportServerError(name, this.serverError(name, error)));
    // A Cluster's connections to its nodes are made as it finds them.
    if (this.cluster) (client as Cluster).on('+node', (node: Redis) => coalesceWrites(node));
    else coalesceWrites(client as Redis);
    return client as Client;
  }

  /** The next read replica that answers, round robin; undefined when there is none (reads go to the leader). */
  private replica(): Reader | undefined {
    const replicas = this.replicas;
    for (let tried = 0; tried < replicas.length; tried++) {
      const candidate = replicas[this.nextReplica++ % replicas.length]!;
      if (this.isAvailable(candidate.name)) return candidate;
    }
    return undefined;
  }

  /** A read on a replica; when it fails (reported), or none answers, on the leader. */
  private readFrom<T, R>(fallback: T, command: (client: Client) => Promise<R>, answer: (reply: R) => T): Promise<T> {
    const replica = this.replica();
    if (replica === undefined) return this.guard(this.leaderName, fallback, () => command(this.leader), answer);
    return this.guard<T | typeof SERVER_FAILED, R>(replica.name, SERVER_FAILED, () => command(replica.client), answer).then((result) =>
      result === SERVER_FAILED ? this.guard(this.leaderName, fallback, () => command(this.leader), answer) : result,
    );
  }

  protected override readOne(key: string): Promise<Entry<Buffer> | undefined> {
    if (this.replicas.length === 0) return this.guard(this.leaderName, undefined, () => this.leader.getBuffer(key), toEntry);
    return this.readFrom(undefined, (client) => client.getBuffer(key), toEntry);
  }

  protected override contains(key: string): Promise<boolean> {
    return this.readFrom(false, (client) => client.exists(key), isOne);
  }

  protected read(keys: string[], withExpiry: boolean): Promise<Map<string, Entry<Buffer>>> {
    // With expiry (the L1 filling itself): from the leader, where the TTLs are exact.
    if (withExpiry) return this.guard(this.leaderName, new Map<string, Entry<Buffer>>(), () => this.readWithExpiry(keys));
    if (this.replicas.length === 0 && !this.cluster) {
      // The common case, one MGET, with no promise of its own in between.
      return this.guard(
        this.leaderName,
        new Map(),
        () => this.leader.mgetBuffer(...keys),
        (payloads) => {
          const found = new Map<string, Entry<Buffer>>();
          for (let i = 0; i < keys.length; i++) if (payloads[i] != null) found.set(keys[i]!, { payload: payloads[i]! });
          return found;
        },
      );
    }
    return this.readFrom(new Map<string, Entry<Buffer>>(), (client) => this.readMany(client, keys), same);
  }

  /** A batch as one MGET answers it, in the keys' order; through `read` where replicas or slots split it. */
  protected override readPayloads(keys: string[]): Promise<ReadonlyArray<Buffer | undefined>> {
    if (this.replicas.length === 0 && !this.cluster) return this.guard(this.leaderName, NO_PAYLOADS, () => this.leader.mgetBuffer(...keys), missingAsUndefined);
    return super.readPayloads(keys) as Promise<ReadonlyArray<Buffer | undefined>>;
  }

  /** Reads behind incr and incrVersion, which write what they read: from the leader, and never a faked miss. */
  protected override readForUpdate(keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    return this.guardStrict(this.leaderName, () => this.readWithExpiry(keys));
  }

  /** One MGET per slot group; on a single server that is one group, one round trip. */
  private async readMany(client: Client, keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    const found = new Map<string, Entry<Buffer>>();
    await Promise.all(
      this.bySlot(keys).map(async (group) => {
        const payloads = await client.mgetBuffer(...group);
        for (let i = 0; i < group.length; i++) if (payloads[i] != null) found.set(group[i]!, { payload: payloads[i]! });
      }),
    );
    return found;
  }

  private async readWithExpiry(keys: string[]): Promise<Map<string, Entry<Buffer>>> {
    const found = new Map<string, Entry<Buffer>>();
    await Promise.all(
      this.bySlot(keys).map(async (group) => {
        const reply = await this.leader.cachegrainReadWithExpiryBuffer(group.length, ...group);
        const now = this.now();
        for (let i = 0; i < group.length; i++) {
          const payload = reply[2 * i] as Buffer | null;
          const ttlMs = reply[2 * i + 1] as number;
          if (payload == null || ttlMs === -2) continue;
          found.set(group[i]!, { payload, expiresAt: ttlMs === -1 ? null : now + ttlMs / 1000 });
        }
      }),
    );
    return found;
  }

  protected write(entries: Array<[string, Buffer | string]>, expiresAt: number | null): Promise<string[]> {
    if (entries.length === 1) {
      const [key, payload] = entries[0]!;
      return this.guard(
        this.leaderName,
        [key],
        () => (expiresAt === null ? this.leader.set(key, payload) : this.leader.set(key, payload, 'PX', this.ttlMs(expiresAt))),
        noFailures,
      );
    }
    const everyKey = entries.map(([key]) => key);
    const ttlMs = expiresAt === null ? undefined : this.ttlMs(expiresAt);
    return this.guard(this.leaderName, everyKey, async () => {
      const groups = this.bySlot(everyKey);
      const payloads = new Map(entries);
      const failed = await Promise.all(
        groups.map(async (group) => {
          const pipeline: ChainableCommander = this.leader.pipeline();
          for (const key of group) {
            if (ttlMs === undefined) pipeline.set(key, payloads.get(key)!);
            else pipeline.set(key, payloads.get(key)!, 'PX', ttlMs);
          }
          const results = (await pipeline.exec()) ?? [];
          return group.filter((_, i) => results[i]?.[0] != null);
        }),
      );
      return failed.flat();
    });
  }

  protected insert(key: string, payload: Buffer | string, expiresAt: number | null): Promise<boolean> {
    return this.guard(this.leaderName, false, async () => {
      const reply = expiresAt === null ? await this.leader.set(key, payload, 'NX') : await this.leader.set(key, payload, 'PX', this.ttlMs(expiresAt), 'NX');
      return reply === 'OK';
    });
  }

  protected remove(keys: string[]): Promise<number> {
    return this.guard(this.leaderName, 0, async () => {
      const counts = await Promise.all(this.bySlot(keys).map((group) => this.leader.del(...group)));
      return counts.reduce((sum, count) => sum + count, 0);
    });
  }

  protected retime(key: string, expiresAt: number | null): Promise<boolean> {
    return this.guard(this.leaderName, false, async () => {
      const changed = expiresAt === null ? await this.leader.cachegrainPersist(key) : await this.leader.pexpire(key, this.ttlMs(expiresAt));
      return changed === 1;
    });
  }

  /** PEXPIRE … GT, which never shortens an expiry and counts none as the latest; PERSIST for never. */
  protected override extendExpiry(keys: string[], expiresAt: number | null): Promise<void> {
    return this.guard(this.leaderName, undefined, async () => {
      await Promise.all(
        this.bySlot(keys).map(async (group) => {
          const pipeline: ChainableCommander = this.leader.pipeline();
          for (const key of group) {
            if (expiresAt === null) pipeline.persist(key);
            else pipeline.pexpire(key, this.ttlMs(expiresAt), 'GT');
          }
          await pipeline.exec();
        }),
      );
    });
  }

  protected override incrBy(key: string, delta: number): Promise<number | undefined> {
    return this.guardStrict(this.leaderName, async () => {
      try {
        return (await this.leader.cachegrainIncrBy(key, delta)) ?? undefined;
      } catch (error) {
        if (/not an integer|out of range/.test((error as Error).message)) {
          throw this.typeError(`cannot incr/decr key '${key}': its value is not an integer, or the result would overflow`, error);
        }
        throw error;
      }
    });
  }

  /** SCANs every master for this cache's pattern and deletes what it finds, batch by batch. */
  protected async removeAll(): Promise<void> {
    const pattern = this.keyPattern();
    const owns = this.clearPattern === undefined ? ownKeyTest(this.keyPrefix) : () => true;
    for (const node of await this.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await this.guard(this.leaderName, ['0', []] as [string, string[]], () => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
        cursor = next;
        const own = keys.filter(owns);
        if (own.length > 0) await this.remove(own);
      } while (cursor !== '0');
    }
  }

  protected override async disconnect(): Promise<void> {
    const all = [this.leader, ...this.replicas.map((replica) => replica.client)];
    await Promise.all(all.map((client) => quit(client, this.timeoutMs)));
  }

  private async masters(): Promise<Redis[]> {
    if (!this.cluster) return [this.leader];
    const cluster = this.leader as unknown as Cluster;
    // The node list is known only once the cluster is connected (connections are lazy).
    if (cluster.status !== 'ready') await this.guard(this.leaderName, undefined, () => cluster.ping());
    return cluster.nodes('master');
  }

  private keyPattern(): string {
    if (this.clearPattern !== undefined) return this.clearPattern;
    if (this.keyFunction !== defaultKeyFunction) {
      throw this.typeError(
        'clear() cannot tell which keys a custom keyFunction made: set options.clearPattern to a Redis glob matching them (clear never flushes the database)',
      );
    }
    return `${this.keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  }

  /** Keys grouped by cluster slot, in order; one group when not on a cluster. */
  private bySlot(keys: string[]): string[][] {
    if (!this.cluster || keys.length === 1) return [keys];
    return [...groupBy(keys, this.keySlot).values()];
  }

  /** Milliseconds until an absolute expiry by this cache's clock; at least 1, as PX 0 is an error. */
  private ttlMs(expiresAt: number): number {
    return Math.max(1, Math.round((expiresAt - this.now()) * 1000));
  }

  private serverError(name: string, error: Error): CacheServerError {
    return new CacheServerError(`cache '${this.alias}': server ${name}: ${error.message}`, name, error);
  }
}

interface Reader {
  client: Client;
  name: string;
}

function isOne(reply: number): boolean {
  return reply === 1;
}

function same<T>(value: T): T {
  return value;
}

function toEntry(payload: Buffer | null): Entry<Buffer> | undefined {
  return payload === null ? undefined : { payload };
}

function noFailures(): string[] {
  return [];
}

/** The URL without its password, for messages. */
function redact(location: string): string {
  return location.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Whether a key matched by `<prefix>:*` has exactly this prefix, not a longer one with a colon in it. */
function ownKeyTest(keyPrefix: string): (key: string) => boolean {
  const own = new RegExp(`^${keyPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:-?\\d+:`);
  return (key) => own.test(key);
}
