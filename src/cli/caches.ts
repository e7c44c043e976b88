/**
 * The caches a command acts on: built from the user's configuration, each failure turned into one
 * line naming the alias and where its entries live (never a password).
 */
import { resolve } from 'node:path';
import type { BaseCache } from '../cache/base-cache.js';
import { DatabaseCache } from '../backends/database/database.js';
import { describePostgresUrl } from '../backends/database/postgres.js';
import { sqlitePath } from '../backends/database/sqlite.js';
import { caches, type CacheConfig, type CachesConfig, configureCaches } from '../config/cache-registry.js';
import { closestName, didYouMean } from '../options/option-rules.js';
import { printable, UserError } from './io.js';

export async function configure(config: CachesConfig): Promise<void> {
  try {
    await configureCaches(config);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

/** Builds the alias's cache; a backend that cannot be built (a bad option, a missing client) is a user error. */
export function build(alias: string): BaseCache {
  try {
    return caches.get(alias);
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

export function checkAlias(config: CachesConfig, alias: string): void {
  if (!Object.hasOwn(config, alias)) {
    const configured = Object.keys(config);
    throw new UserError(
      `the cache alias '${printable(alias)}' is not configured${didYouMean(closestName(alias, configured))} (configured: ${configured.join(', ')})`,
    );
  }
}

export function outOfReach(alias: string, what: string): string {
  return `cache '${alias}' is a locmem cache: it lives inside each application process and cannot be ${what} from this command`;
}

/**
 * Runs `action` on one cache. A failure, thrown or reported as an `error` event (a `failOpen`
 * cache turns a dead server into a quiet no-op), comes back as one line naming alias and server.
 */
export async function attempt<T>(alias: string, entry: CacheConfig, cache: BaseCache, action: () => Promise<T>): Promise<{ value?: T; failed?: string }> {
  const heard: Error[] = [];
  const listener = (error: Error) => heard.push(error);
  cache.on('error', listener);
  try {
    const value = await action();
    if (heard.length === 0) return { value };
  } catch (error) {
    heard.unshift(error as Error);
  } finally {
    cache.off('error', listener);
  }
  const message = String(heard[0]?.message ?? heard[0]).replace(new RegExp(`^cache '${escapeRegExp(alias)}': `), '');
  return { failed: `cache '${alias}' (${where(entry, cache)}): ${message}` };
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Names an alias's backend and where it keeps its entries, without a password. */
export function where(entry: CacheConfig, cache?: BaseCache): string {
  const backend = entry.backend;
  if (typeof backend !== 'string') return `backend ${backend?.name || 'class'}${locationOf(entry)}`;
  if (backend === 'database') {
    const connection = entry.options?.connection;
    const server =
      cache instanceof DatabaseCache ? cache.server : typeof connection === 'string' ? describeConnection(connection) : 'a client from the configuration';
    return `database, table '${Array.isArray(entry.location) ? entry.location[0] : entry.location}' on ${server}`;
  }
  if (backend === 'filebased') return `filebased, ${resolve(String(Array.isArray(entry.location) ? entry.location[0] : entry.location))}`;
  return `${backend}${locationOf(entry)}`;
}

function locationOf(entry: CacheConfig): string {
  const location = entry.location;
  if (location === undefined || location === '' || (Array.isArray(location) && location.length === 0)) return '';
  const list = Array.isArray(location) ? location : location.split(/[;,]/);
  return ` at ${list.map((item) => item.trim().replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')).join(', ')}`;
}

function describeConnection(url: string): string {
  if (url.startsWith('sqlite:')) {
    try {
      return `sqlite:${sqlitePath(url)}`;
    } catch {
      return url;
    }
  }
  return /^postgres(ql)?:\/\//.test(url) ? describePostgresUrl(url) : url;
}

export function dialectOf(connection: unknown): 'sqlite' | 'postgres' | undefined {
  if (typeof connection !== 'string') return undefined;
  if (connection.startsWith('sqlite:')) return 'sqlite';
  return /^postgres(ql)?:\/\//.test(connection) ? 'postgres' : undefined;
}

/** Built-in non-database backends are skipped without being built (building one may connect). */
export function mayBeDatabase(entry: CacheConfig): boolean {
  const backend = entry?.backend;
  return backend === 'database' || typeof backend === 'function' || (typeof backend === 'string' && backend.includes('#'));
}
