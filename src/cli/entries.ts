/** `cachegrain clear` and `cachegrain invalidate-tags`: every named (or configured) cache out of the application's processes, one after another. */
import { attempt, build, checkAlias, configure, outOfReach, where } from './caches.js';
import { type IO, type Parsed, printable } from './io.js';
import { loadConfig } from './load-config.js';

/**
 * How long `clear` and `invalidate-tags` wait for the edges in front (the `purge` option) to take their
 * purges: the command exits once they are done, and fails naming an edge that refused one or had not answered.
 */
export const EDGE_PURGE_WAIT_SECONDS = 30;

export async function clear(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const named = args.positional.length > 0;
  const aliases = named ? [...new Set(args.positional)] : Object.keys(config);
  for (const alias of aliases) checkAlias(config, alias);
  if (!args.dryRun) await configure(config);
  let status = 0;
  for (const alias of aliases) {
    const entry = config[alias]!;
    if (entry.backend === 'locmem') {
      if (named) {
        io.err.write(`${io.name}: ${outOfReach(alias, 'cleared')}\n`);
        status = 1;
      } else io.out.write(`Skipped cache '${alias}' (locmem): it lives inside each application process, out of this command's reach.\n`);
      continue;
    }
    if (args.dryRun) {
      io.out.write(`Would clear cache '${alias}' (${where(entry)}).\n`);
      continue;
    }
    const cache = build(alias);
    const outcome = await attempt(alias, entry, cache, () => cache.clear({ waitForEdges: EDGE_PURGE_WAIT_SECONDS }));
    if (outcome.failed !== undefined) {
      io.err.write(`${io.name}: ${outcome.failed}\n`);
      status = 1;
    } else io.out.write(`Cleared cache '${alias}' (${where(entry, cache)}).\n`);
  }
  return status;
}

export async function invalidate(args: Parsed, io: IO): Promise<number> {
  const config = await loadConfig(args.config);
  const tags = [...new Set(args.positional)];
  const list = tags.map((tag) => `'${printable(tag)}'`).join(', ');
  const how = args.soft ? 'Softly invalidated' : 'Invalidated';
  if (!args.dryRun) await configure(config);
  let status = 0;
  // One cache after another rather than config's invalidateTags: a failure is then told apart
  // (alias and server), and the other caches are still invalidated.
  for (const [alias, entry] of Object.entries(config)) {
    if (entry.backend === 'locmem') {
      io.out.write(`Skipped cache '${alias}' (locmem): it lives inside each application process, out of this command's reach.\n`);
      continue;
    }
    if (args.dryRun) {
      io.out.write(`Would ${args.soft ? 'softly ' : ''}invalidate ${list} in cache '${alias}' (${where(entry)}).\n`);
      continue;
    }
    const cache = build(alias);
    const outcome = await attempt(alias, entry, cache, () => cache.invalidateTags(tags, { soft: args.soft, waitForEdges: EDGE_PURGE_WAIT_SECONDS }));
    if (outcome.failed !== undefined) {
      io.err.write(`${io.name}: ${outcome.failed}\n`);
      status = 1;
    } else io.out.write(`${how} ${list} in cache '${alias}' (${where(entry, cache)}).\n`);
  }
  return status;
}
