/** The conformance kit: timeouts, and touch. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { BaseCache } from '../../../src/index.js';
import type { Kit } from './kit.js';

export function describeExpiry(kit: Kit): void {
  let cache: BaseCache;
  beforeEach(() => {
    cache = kit.cache;
  });
  const { make, advance } = kit;
  describe('timeouts', () => {
    it('expires an entry after its timeout', async () => {
      await cache.set('expire1', 'very quickly', 1);
      await cache.set('expire2', 'very quickly', 1);
      await cache.set('stays', 'here', 60);
      await advance(2);
      expect(await cache.get('expire1')).toBeUndefined();
      expect(await cache.hasKey('expire2')).toBe(false);
      expect(await cache.get('stays')).toBe('here');
    });
    it('uses the cache default when omitted', async () => {
      const short = await make({ timeout: 1 });
      await short.set('k', 'v');
      expect(await short.get('k')).toBe('v');
      await advance(2);
      expect(await short.get('k')).toBeUndefined();
    });
    it('keeps an entry forever with null, including the default', async () => {
      const forever = await make({ timeout: null });
      await cache.set('forever', 'x', null);
      await forever.set('default-forever', 'y');
      await advance(100 * 365 * 86400);
      expect(await cache.get('forever')).toBe('x');
      expect(await forever.get('default-forever')).toBe('y');
    });
    it('accepts timeouts longer than 30 days', async () => {
      const longTimeout = 30 * 86400 + 1;
      await cache.set('long', 'value', longTimeout);
      expect(await cache.get('long')).toBe('value');
      expect(await cache.add('long-add', 'value', longTimeout)).toBe(true);
      expect(await cache.get('long-add')).toBe('value');
      expect(await cache.touch('long', longTimeout)).toBe(true);
      expect(await cache.get('long')).toBe('value');
      await cache.setMany({ 'long-many': 1 }, longTimeout);
      expect(await cache.get('long-many')).toBe(1);
      await advance(longTimeout - 10);
      expect(await cache.get('long')).toBe('value');
      await advance(20);
      expect(await cache.get('long')).toBeUndefined();
    });
    it('honours timeouts of 100 years, 1e10 s and 1e12 s on every write', async () => {
      for (const timeout of [100 * 365 * 86400, 1e10, 1e12]) {
        await cache.set(`far-${timeout}`, 'set');
        await cache.set(`far-${timeout}`, 'set', timeout);
        expect(await cache.get(`far-${timeout}`)).toBe('set');
        expect(await cache.add(`far-add-${timeout}`, 'first', timeout)).toBe(true);
        expect(await cache.add(`far-add-${timeout}`, 'second', timeout)).toBe(false);
        expect(await cache.get(`far-add-${timeout}`)).toBe('first');
        await cache.set(`far-touch-${timeout}`, 'touched', 60);
        expect(await cache.touch(`far-touch-${timeout}`, timeout)).toBe(true);
        expect(await cache.get(`far-touch-${timeout}`)).toBe('touched');
        expect(await cache.setMany({ [`far-many-${timeout}`]: 1 }, timeout)).toEqual([]);
        expect(await cache.incr(`far-many-${timeout}`)).toBe(2);
        expect(await cache.get(`far-many-${timeout}`)).toBe(2);
      }
      await advance(50 * 365 * 86400);
      expect(await cache.get(`far-${100 * 365 * 86400}`)).toBe('set');
      expect(await cache.get(`far-add-${1e12}`)).toBe('first');
    });
    it('keeps nothing with a zero timeout: set stores nothing, add answers true', async () => {
      await cache.set('zero', 'value', 0);
      expect(await cache.get('zero')).toBeUndefined();
      await cache.set('was-here', 'value');
      await cache.set('was-here', 'value', 0);
      expect(await cache.get('was-here')).toBeUndefined();
      expect(await cache.add('zero-add', 'value', 0)).toBe(true);
      expect(await cache.get('zero-add')).toBeUndefined();
      expect(await cache.setMany({ zm: 1 }, 0)).toEqual([]);
      expect(await cache.get('zm')).toBeUndefined();
    });
    it('treats a negative timeout as already expired', async () => {
      await cache.set('neg', 'value', -1);
      expect(await cache.get('neg')).toBeUndefined();
      expect(await cache.add('neg-add', 'value', -5)).toBe(true);
      expect(await cache.hasKey('neg-add')).toBe(false);
    });
    it('accepts float timeouts', async () => {
      await cache.set('float', 'value', 100.2);
      expect(await cache.get('float')).toBe('value');
    });
    it('rejects a timeout that is not a finite number or null, naming it', async () => {
      for (const bad of [Number.NaN, Infinity, '10', true]) {
        await expect(cache.set('t', 1, bad as never)).rejects.toThrow(TypeError);
      }
      await expect(cache.set('t', 1, 'soon' as never)).rejects.toThrow(/timeout.*'soon'/);
      expect(await cache.hasKey('t')).toBe(false);
    });
  });

  describe('touch', () => {
    it('gives a live entry a new timeout and answers true', async () => {
      await cache.set('touched', 'value', 1);
      expect(await cache.touch('touched', 60)).toBe(true);
      await advance(2);
      expect(await cache.get('touched')).toBe('value');
    });
    it('answers false for a missing key', async () => {
      expect(await cache.touch('nope', 10)).toBe(false);
    });
    it('makes an entry permanent with null', async () => {
      await cache.set('persist', 'value', 1);
      expect(await cache.touch('persist', null)).toBe(true);
      await advance(2);
      expect(await cache.get('persist')).toBe('value');
    });
    it('expires an entry with 0', async () => {
      await cache.set('kill', 'value');
      expect(await cache.touch('kill', 0)).toBe(true);
      expect(await cache.get('kill')).toBeUndefined();
    });
    it('uses the default timeout when omitted', async () => {
      const short = await make({ timeout: 1 });
      await short.set('k', 'v', null);
      expect(await short.touch('k')).toBe(true);
      await advance(2);
      expect(await short.get('k')).toBeUndefined();
    });
  });
}
