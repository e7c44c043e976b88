/**
 * A cache's invalidation count, its generation: every invalidation raises it before it writes its
 * tags' versions, which carry it (`7.` + random). A render reads it when it begins, with the reads it
 * makes then anyway; its write is left out when a tag it carries has a version of a later generation
 * (see `TagVersions.forWrite`). So an invalidation that overtakes a render keeps it out even when the
 * render learns its tags late, and no clock is compared: the count lives on the server.
 */
import type { Codec } from '../encoding/codec.js';
import { CacheServerError } from '../errors/errors.js';
import type { TagHost } from './tag-host.js';
import { throwRefusal } from '../store/backend-primitives.js';
import type { Entry } from '../store/cache-types.js';

/**
 * The generation of the invalidation that wrote `version` last (its soft part's, if it has one); 0
 * for the first version and for one written without a generation (by an older release).
 */
export function generationOf(version: string): number {
  const latest = version.slice(version.lastIndexOf(':') + 1);
  const dot = latest.indexOf('.');
  const generation = dot === -1 ? 0 : Number(latest.slice(0, dot));
  return Number.isSafeInteger(generation) ? generation : 0;
}

/** The generation stored in `entry`: 0 before the first invalidation. */
export function generationIn<P>(codec: Codec<P>, entry: Entry<P> | undefined): number {
  if (entry === undefined) return 0;
  const generation = Number(codec.decode(entry.payload));
  return Number.isSafeInteger(generation) ? generation : 0;
}

/**
 * A cache's generation count kept under `key`, raised by one per invalidation: by the server where it
 * adds atomically; otherwise read and written back, one raise at a time in this process (on a store
 * shared by processes without an atomic add, two invalidations at the same moment may share one).
 */
export class GenerationCount<P> {
  /** The raise in flight where the store cannot add: the next one waits for it. */
  private raising: Promise<number> = Promise.resolve(0);

  constructor(private readonly host: TagHost<P>) {}

  /** Raises the count kept under `key` by one and answers it. */
  async raise(key: string): Promise<number> {
    const { primitives, codec, alias } = this.host;
    if (primitives.incrBy === undefined) {
      const raised = this.raising
        .catch(() => 0)
        .then(async () => {
          const next = generationIn(codec, (await primitives.readForUpdate([key])).get(key)) + 1;
          const failed = await primitives.write([[key, codec.encode(next)]], null);
          throwRefusal(failed);
          if (failed.length > 0) throw new CacheServerError(`cache '${alias}': invalidateTags: the invalidation count '${key}' was not written`, '');
          return next;
        });
      this.raising = raised;
      return raised;
    }
    for (let attempt = 0; attempt < 4; attempt++) {
      const raised = await primitives.incrBy(key, 1);
      if (raised !== undefined) return raised;
      // None yet: the first invalidation creates it, unless another one does so meanwhile.
      if (await primitives.insert(key, codec.encode(1), null)) return 1;
    }
    throw new CacheServerError(`cache '${alias}': invalidateTags: the invalidation count '${key}' could not be raised`, '');
  }
}
