/** `cachegrain inspect`: one entry of a cache, its value previewed safely, its expiry, tags, state and size. */
import { inspect as inspectValue } from 'node:util';
import type { BaseCache, CachedEntry, StoredEntry } from '../cache/base-cache.js';
import { cacheForCli } from './cache-for-cli.js';
import { attempt, build, checkAlias, configure, outOfReach, where } from './caches.js';
import { type IO, type Parsed, printable, UserError } from './io.js';
import { loadConfig } from './load-config.js';

export async function inspectEntry(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const alias = args.alias ?? 'default';
  const key = args.positional[0]!;
  checkAlias(config, alias);
  const entry = config[alias]!;
  if (entry.backend === 'locmem') throw new UserError(outOfReach(alias, 'inspected'));
  if (args.dryRun) {
    io.out.write(`Would read key '${printable(key)}' from cache '${alias}' (${where(entry)}).\n`);
    return 0;
  }
  await configure(config);
  const cache = build(alias);
  const outcome = await attempt(alias, entry, cache, async () => {
    const found = (await cache.getEntries([key])).get(key);
    return { found, stored: found === undefined ? undefined : await cacheForCli(cache).storedEntry(key) };
  });
  if (outcome.failed !== undefined) throw new UserError(outcome.failed);
  const read = outcome.value!;
  const made = printable(cache.makeKey(key));
  if (read.found === undefined) {
    io.err.write(`${io.name}: no entry under key '${printable(key)}' (stored key '${made}') in cache '${alias}' (${where(entry, cache)}).\n`);
    return 1;
  }
  io.out.write(describeEntry(cache, alias, made, { found: read.found, stored: read.stored }));
  return 0;
}

/** An entry as the cache answered it, and as its backend stores it when the backend says. */
interface InspectedEntry {
  found: CachedEntry<unknown>;
  stored: StoredEntry | undefined;
}

/** `made`: the entry's key as the cache made it. */
function describeEntry(cache: BaseCache, alias: string, made: string, { found, stored }: InspectedEntry): string {
  const now = cache.now();
  const state =
    found.state === 'fresh' ? 'fresh' : found.state === 'stale' ? 'stale (served while one refresh runs)' : 'stale (served only if recomputing it fails)';
  const unknown = 'unknown (the backend does not say)';
  const lines: Array<[string, string]> = [
    ['cache', alias],
    ['key', made],
    ['state', state],
  ];
  if (stored?.freshUntil !== undefined) lines.push(['fresh until', when(stored.freshUntil, now)]);
  lines.push(['expires', stored === undefined || stored.expiresAt === undefined ? unknown : when(stored.expiresAt, now)]);
  lines.push(['tags', found.tags.length === 0 ? '(none)' : found.tags.map(printable).join(', ')]);
  lines.push(['size', stored?.bytes === undefined ? unknown : `${stored.bytes} bytes stored`]);
  lines.push(['value', preview(found.value)]);
  return lines.map(([label, value]) => `${`${label}:`.padEnd(13)}${value}\n`).join('');
}

/** An absolute time with how far it is from now. */
function when(epochSeconds: number | null, now: number): string {
  if (epochSeconds === null) return 'never';
  const date = new Date(epochSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const left = epochSeconds - now;
  return left >= 0 ? `${date} (in ${duration(left)})` : `${date} (${duration(-left)} ago)`;
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** At most PREVIEW_CHARACTERS of a value, control characters escaped: binary never reaches the terminal raw. */
const PREVIEW_CHARACTERS = 300;
export function preview(value: unknown): string {
  let text = inspectValue(value, { depth: 2, maxArrayLength: 20, maxStringLength: PREVIEW_CHARACTERS, breakLength: Infinity, colors: false });
  const type =
    value === null
      ? 'null'
      : Buffer.isBuffer(value)
        ? `Buffer, ${value.length} bytes`
        : typeof value === 'string'
          ? `string, ${value.length} characters`
          : undefined;
  text = printable(text);
  if ([...text].length > PREVIEW_CHARACTERS) text = `${[...text].slice(0, PREVIEW_CHARACTERS).join('')}… (truncated)`;
  return type === undefined ? text : `${text}  [${type}]`;
}
