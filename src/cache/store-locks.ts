/**
 * Locks in the store, for every process sharing it (`acquireLock`): an `add` of a token under
 * the lock's key, which expires by itself; releasing removes the key only while it holds this
 * holder's token, never a lock taken after this one expired.
 */
import { randomBytes } from 'node:crypto';
import type { SharedByParts } from './shared-by-parts.js';
import { md5 } from '../keys/hash.js';
import { TAG_KEY_VERSION } from '../store/key-maker.js';
import { cacheTypeError, describe } from '../errors/errors.js';

export class StoreLocks<P> {
  constructor(private readonly shared: SharedByParts<P>) {}

  /** Takes the lock `name` for at most `seconds`: answers its release, or undefined while someone else holds it. */
  async acquire(name: string, seconds: number): Promise<(() => Promise<void>) | undefined> {
    const { alias, primitives, codec, keys, payloads, cache } = this.shared;
    if (typeof name !== 'string' || name === '') throw cacheTypeError(alias, `acquireLock: name must be a non-empty string (got ${describe(name)})`);
    if (typeof seconds !== 'number' || !(seconds > 0) || !Number.isFinite(seconds)) {
      throw cacheTypeError(alias, `acquireLock: seconds must be a positive number (got ${describe(seconds)})`);
    }
    const made = keys.made(`cachegrain.lock.${md5(name)}`, TAG_KEY_VERSION);
    const token = randomBytes(8).toString('hex');
    if (!(await primitives.insert(made, codec.encode(token), cache.now() + seconds))) return undefined;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const held = await primitives.readOne(made);
      if (held !== undefined && payloads.readable(made, held.payload, false) === token) await primitives.remove([made]);
    };
  }
}
