/**
 * Template fragment keys, Django's `make_template_fragment_key`: the same name and vary-on
 * values give the same key in every engine, so code can invalidate a fragment wherever it was rendered.
 * Each value is hashed as a netstring (`<byte length>:<bytes>,`, Django 6.1's format), so no two lists of
 * values spell the same input: ['a:b'] and ['a', 'b'] give different keys. A template digest
 * follows them in the hashed text as `#<digest>`, which no netstring begins with.
 */
import type { BaseCache, HeldString } from '../cache/base-cache.js';
import { cacheForFragments } from './cache-for-fragments.js';
import { md5 } from '../keys/hash.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import { processMemo } from '../memos/process-memos.js';
import { framedValues } from '../cacheability/contexts.js';

/** Keys made recently, by their exact md5 input: a page's fragments repeat on every render. */
const recent = processMemo('fragment-keys: made keys by md5 input', new BoundedMemo<string>());

/**
 * Keys made recently for vary-on values that are all primitives, found by the name and then by each
 * value itself, so that a repeated fragment builds no text to look its key up: a node per value. A
 * node also keeps the key as its cache stores it, and the fragment as that cache last answered it
 * from memory, so a hit looks nothing up for that.
 */
export interface KeyNode {
  key?: string;
  next?: Map<unknown, KeyNode>;
  /** The next nodes of small non-negative integers (ids, counters), found by index. */
  nextByIndex?: KeyNode[];
  /** The key as the cache whose memo holds the node stores it. */
  stored?: string;
  /** The fragment as that cache last answered it from memory, kept to answer it again (see the integration's `peekFreshToKeep`). */
  held?: HeldString;
  /** Whether the held fragment holds holes' placeholders: a render it goes into has holes to deliver. */
  heldHoles?: boolean;
  /** A name's node: whether a key of the name was asked for since the memo last looked (see `FragmentKeys.evict`). */
  used: boolean;
  /** A name's node: how many nodes the name holds, itself with them. */
  size: number;
}

/** A fragment's key, with room for the key as a cache stores it (see `FragmentKeys.stored`). */
export type FragmentKey = KeyNode & { readonly key: string };

/**
 * The first level of the memo: fragment names, for the keys of the templates that share one digest
 * (or of every template, without digests).
 */
export class KeyRoot {
  readonly byName = new Map<string, KeyNode>();
  /** The node of the last name `nameNode` found: a loop's tags ask for one name again and again. */
  lastName: string | undefined = undefined;
  lastNameNode: KeyNode | undefined = undefined;

  constructor(
    /** The template digest its keys carry; undefined for keys without one (Django's). */
    readonly digest: string | undefined,
  ) {}

  forget(name: string): void {
    this.byName.delete(name);
    if (this.lastName === name) this.lastName = this.lastNameNode = undefined;
  }
}

/** A name the memo holds, and the root it is under. */
interface Place {
  root: KeyRoot;
  name: string;
}

/**
 * The fragment keys of one cache and the hits it answered from memory: owned by the cache (see
 * `fragmentKeysOf`), and gone with it. Bounded: past `limit` nodes, the names no key was asked for
 * since the last look are forgotten, oldest first, each with its nodes (a clock's second chance,
 * which costs a hit one flag); the names still in use stay.
 */
export class FragmentKeys {
  /** The keys of fragments whose template has no digest. */
  readonly undigested = new KeyRoot(undefined);
  /** The roots of digested keys, by digest. */
  private readonly digested = new Map<string, KeyRoot>();
  /** The root `root` answered last. */
  private lastRoot: KeyRoot | undefined;
  /** Every name held, by its node, oldest first: the order the clock looks in. */
  private readonly places = new Map<KeyNode, Place>();
  private nodes = 0;

  constructor(readonly limit = 10_000) {}

  /** How many nodes it holds. */
  get size(): number {
    return this.nodes;
  }

  /** The root of the keys of fragments in templates with this digest. */
  root(digest: string): KeyRoot {
    // A page's renders all ask for the root of its template's digest.
    if (this.lastRoot?.digest === digest) return this.lastRoot;
    let root = this.digested.get(digest);
    if (root === undefined) {
      this.digested.set(digest, (root = new KeyRoot(digest)));
      // A root counts as a node: the memo stays bounded however many digests come and go.
      if (++this.nodes > this.limit) this.evict();
    }
    return (this.lastRoot = root);
  }

  /** The root of a digest's keys if any key was made under it; nothing is created. */
  heldRoot(digest: string): KeyRoot | undefined {
    return this.digested.get(digest);
  }

  /** The fragment's key as a node of the memo (a node of its own when a vary-on value is an object), in `root`'s keys. */
  key(name: string, varyOn: readonly unknown[] | null | undefined, root: KeyRoot): FragmentKey {
    let named = root.byName.get(name);
    // A name counts as used when asked for again, not when made: one asked for once goes first.
    if (named !== undefined) named.used = true;
    else named = this.newName(root, name);
    let node = named;
    let made = 0;
    if (varyOn != null) {
      for (let i = 0; i < varyOn.length; i++) {
        const value = varyOn[i];
        // An object's text can change while it stays the same object: it is looked up by its text.
        if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
          return emptyNode(keyByText(name, varyOn, '', root.digest));
        }
        let next = isSmallIndex(value) ? node.nextByIndex?.[value] : node.next?.get(value);
        if (next === undefined) {
          next = emptyNode();
          if (isSmallIndex(value)) (node.nextByIndex ??= [])[value] = next;
          else (node.next ??= new Map()).set(value, next);
          made++;
        }
        node = next;
      }
    }
    node.key ??= keyByText(name, varyOn, '', root.digest);
    if (made > 0) this.grow(named, made);
    return node as FragmentKey;
  }

  /** The fragment's key as this memo's cache stores it, remembered in its node. */
  stored(fragment: FragmentKey, cache: BaseCache): string {
    return (fragment.stored ??= cacheForFragments(cache).storedKey(fragment.key));
  }

  private newName(root: KeyRoot, name: string): KeyNode {
    const node = emptyNode();
    root.byName.set(name, node);
    this.places.set(node, { root, name });
    this.grow(node, 1);
    return node;
  }

  private grow(named: KeyNode, made: number): void {
    named.size += made;
    this.nodes += made;
    if (this.nodes > this.limit) this.evict();
  }

  /** Forgets the names unused since the clock last passed them, oldest first, until a tenth of the room is free again. */
  private evict(): void {
    const target = this.limit - Math.ceil(this.limit / 10);
    for (const [node, place] of this.places) {
      if (this.nodes <= target) break;
      this.places.delete(node);
      if (node.used) {
        // Its second chance: looked at again once the clock comes round. A root's last name is
        // found without setting the flag, so it is looked up afresh, which sets it if still in use.
        node.used = false;
        if (place.root.lastNameNode === node) place.root.lastName = place.root.lastNameNode = undefined;
        this.places.set(node, place);
        continue;
      }
      place.root.forget(place.name);
      this.nodes -= node.size;
    }
    // The roots left without names go too.
    for (const [digest, root] of this.digested) {
      if (root.byName.size > 0) continue;
      this.digested.delete(digest);
      this.nodes--;
      if (this.lastRoot === root) this.lastRoot = undefined;
    }
  }
}

/** Each cache's fragment memo, made when its first fragment is keyed; it goes when the cache does. */
const memos = new WeakMap<BaseCache, FragmentKeys>();

/** The fragment memo `cache` owns. */
export function fragmentKeysOf(cache: BaseCache): FragmentKeys {
  let keys = memos.get(cache);
  if (keys === undefined) memos.set(cache, (keys = new FragmentKeys()));
  return keys;
}

/**
 * `template.cache.<name>.<md5 hex of each vary-on value's text as a netstring>`. A fragment with
 * `contexts=` varies on the request's values of them too: `contextValues` names each one's value
 * (undefined or absent: the request has none), for its key in one variant. `digest` is the digest
 * of the template that holds the tag, when its engine's installer was given `digests: true`.
 */
export function makeTemplateFragmentKey(
  name: string,
  varyOn?: readonly unknown[] | null,
  contextValues?: Readonly<Record<string, string | undefined>>,
  digest?: string,
): string {
  if (contextValues === undefined) return keyByText(name, varyOn, '', digest);
  const names = Object.keys(contextValues).sort();
  return keyByText(name, varyOn, framedValues(names.map((context) => [context, contextValues[context]])), digest);
}

/**
 * The key of a fragment that varies on contexts, whose request's values are `framed` (see
 * `framedContextValues`), in a template with `digest` if any.
 */
export function fragmentKeyInContexts(name: string, varyOn: readonly unknown[] | null | undefined, framed: string, digest?: string): FragmentKey {
  return emptyNode(keyByText(name, varyOn, framed, digest));
}

/** The node of a fragment name among `root`'s keys, if a key was made for it; nothing is created. */
export function nameNode(name: string, root: KeyRoot | undefined): KeyNode | undefined {
  if (root === undefined) return undefined;
  if (root.lastName === name) return root.lastNameNode;
  const node = root.byName.get(name);
  if (node !== undefined) {
    node.used = true;
    root.lastName = name;
    root.lastNameNode = node;
  }
  return node;
}

/**
 * The node after `node` for one more vary-on value, if a key was made through it; nothing is
 * created, and an object finds none (objects are looked up by their text).
 */
export function nodeAfter(node: KeyNode | undefined, value: unknown): KeyNode | undefined {
  if (node === undefined) return undefined;
  if (isSmallIndex(value)) return node.nextByIndex?.[value];
  return node.next?.get(value);
}

/** Integers below this are looked up by index; sparse ids above it by the map. */
const SMALL_INDEX = 4096;

function isSmallIndex(value: unknown): value is number {
  // `>>> 0` gives back only a non-negative integer itself (and -0 as 0, whose key is the same).
  return typeof value === 'number' && value >>> 0 === value && value < SMALL_INDEX;
}

/** Every node has every field from the start (its key, where it is made for that alone): one shape, so that walking the memo stays monomorphic. */
function emptyNode(): KeyNode;
function emptyNode(key: string): KeyNode & FragmentKey;
function emptyNode(key?: string): KeyNode {
  return { key, next: undefined, nextByIndex: undefined, stored: undefined, held: undefined, heldHoles: false, used: false, size: 0 };
}

function keyByText(name: string, varyOn?: readonly unknown[] | null, framedContexts = '', digest?: string): string {
  let input = '';
  if (varyOn != null) {
    for (const value of varyOn) {
      const text = fragmentText(value);
      input += `${Buffer.byteLength(text)}:${text},`;
    }
  }
  // Neither begins with a digit, so no list of vary-on values spells them; a digest is 32 hex digits
  // and framed contexts begin with '|', so neither runs into the other.
  if (digest !== undefined) input += `#${digest}`;
  input += framedContexts;
  // The name's length first, so that no other name and input spell the same memo key.
  const memo = `${name.length}:${name}${input}`;
  return recent.get(memo) ?? recent.set(memo, `template.cache.${name}.${md5(input)}`);
}

/** A vary-on value as hashed text: String() for primitives, ISO text for dates, stable JSON else. */
function fragmentText(value: unknown): string {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return String(value);
  if (value instanceof Date) return value.toISOString();
  // Engines hand over their own safe-string wrappers; what counts is the text they stand for.
  if (typeof (value as { toHTML?: unknown }).toHTML === 'function' || value instanceof String) return String(value);
  return stableJson(value);
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    if (inner instanceof Map) return Object.fromEntries([...inner].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)));
    if (inner instanceof Set) return [...inner];
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(inner).sort()) sorted[key] = (inner as Record<string, unknown>)[key];
    return sorted;
  });
}
