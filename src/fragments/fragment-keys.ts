/**
 * Template fragment keys, Django's `make_template_fragment_key`: the same name and vary-on
 * values give the same key in every engine, so code can invalidate a fragment wherever it was rendered.
 * Each value is hashed as a netstring (`<byte length>:<bytes>,`, Django 6.1's format), so no two lists of
 * values spell the same input: ['a:b'] and ['a', 'b'] give different keys. A template digest
 * follows them in the hashed text as `#<digest>`, which no netstring begins with.
 */
import type { BaseCache, HeldString } from '../cache/base-cache.js';
import { integrationOf } from '../cache/integration.js';
import { md5 } from '../common/hash.js';
import { BoundedMemo } from '../common/bounded-memo.js';
import { framedValues } from '../cacheability/contexts.js';

/** Keys made recently, by their exact md5 input: a page's fragments repeat on every render. */
const recent = new BoundedMemo<string>();

/**
 * Keys made recently for vary-on values that are all primitives, found by the name and then by each
 * value itself, so that a repeated fragment builds no text to look its key up: a node per value. A
 * node also keeps the key as the last cache to read it stores it, so a hit looks nothing up for that.
 */
export interface KeyNode {
  key?: string;
  next?: Map<unknown, KeyNode>;
  /** The next nodes of small non-negative integers (ids, counters), found by index. */
  nextByIndex?: KeyNode[];
  stored?: string;
  storedBy?: BaseCache;
  /** The fragment as `storedBy` last answered it from memory, kept to answer it again (see `BaseCache.holdFresh`). */
  held?: HeldString;
  /** Whether the held fragment holds holes' placeholders: a render it goes into has holes to deliver. */
  heldHoles?: boolean;
}

/** A fragment's key, with room for the key as a cache stores it (see `storedFragmentKey`). */
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

  clear(): void {
    this.byName.clear();
    this.lastName = this.lastNameNode = undefined;
  }
}

/** The keys of fragments whose template has no digest. */
export const UNDIGESTED = new KeyRoot(undefined);
/** The roots of digested keys, by digest. */
const digested = new Map<string, KeyRoot>();
/** The root `keyRoot` answered last. */
let lastRoot: KeyRoot | undefined;
let keyNodes = 0;
const KEY_NODE_LIMIT = 10_000;

/** The root of the keys of fragments in templates with this digest. */
export function keyRoot(digest: string): KeyRoot {
  // A page's renders all ask for the root of its template's digest.
  if (lastRoot?.digest === digest) return lastRoot;
  let root = digested.get(digest);
  if (root === undefined) {
    // A root counts as a node: the memo stays bounded however many digests come and go.
    countNode();
    digested.set(digest, (root = new KeyRoot(digest)));
  }
  return (lastRoot = root);
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
  if (contextValues === undefined) return fragmentKey(name, varyOn, digest === undefined ? UNDIGESTED : keyRoot(digest)).key;
  const names = Object.keys(contextValues).sort();
  return keyByText(name, varyOn, framedValues(names.map((context) => [context, contextValues[context]])), digest);
}

/**
 * The key of a fragment that varies on contexts, whose request's values are `framed` (see
 * `framedContextValues`), in a template with `digest` if any.
 */
export function fragmentKeyInContexts(name: string, varyOn: readonly unknown[] | null | undefined, framed: string, digest?: string): FragmentKey {
  return { ...emptyNode(), key: keyByText(name, varyOn, framed, digest) };
}

/** The fragment's key as a node of the memo (a node of its own when a vary-on value is an object), in `root`'s keys. */
export function fragmentKey(name: string, varyOn?: readonly unknown[] | null, root: KeyRoot = UNDIGESTED): FragmentKey {
  let node = root.byName.get(name);
  if (node === undefined) node = newNode(root.byName, name);
  if (varyOn != null) {
    for (let i = 0; i < varyOn.length; i++) {
      const value = varyOn[i];
      // An object's text can change while it stays the same object: it is looked up by its text.
      if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
        return { ...emptyNode(), key: keyByText(name, varyOn, '', root.digest) };
      }
      if (isSmallIndex(value)) {
        node = (node.nextByIndex ??= [])[value] ?? newIndexNode(node.nextByIndex, value);
      } else {
        node = node.next?.get(value) ?? newNode((node.next ??= new Map()), value);
      }
    }
  }
  node.key ??= keyByText(name, varyOn, '', root.digest);
  return node as FragmentKey;
}

/** The node of a fragment name among `root`'s keys, if a key was made for it; nothing is created. */
export function nameNode(name: string, root: KeyRoot | undefined): KeyNode | undefined {
  if (root === undefined) return undefined;
  if (root.lastName === name) return root.lastNameNode;
  const node = root.byName.get(name);
  if (node !== undefined) {
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

/** The fragment's key as `cache` stores it, remembered for the last cache that asked. */
export function storedFragmentKey(fragment: FragmentKey, cache: BaseCache): string {
  if (fragment.storedBy !== cache) {
    fragment.stored = integrationOf(cache).storedKey(fragment.key);
    fragment.storedBy = cache;
  }
  return fragment.stored!;
}

/** Integers below this are looked up by index; sparse ids above it by the map. */
const SMALL_INDEX = 4096;

function isSmallIndex(value: unknown): value is number {
  // `>>> 0` gives back only a non-negative integer itself (and -0 as 0, whose key is the same).
  return typeof value === 'number' && value >>> 0 === value && value < SMALL_INDEX;
}

function newIndexNode(parent: KeyNode[], index: number): KeyNode {
  const node = newNode(undefined, index);
  parent[index] = node;
  return node;
}

/** Every node has every field from the start: one shape, so that walking the memo stays monomorphic. */
function emptyNode(): KeyNode {
  return { key: undefined, next: undefined, nextByIndex: undefined, stored: undefined, storedBy: undefined, held: undefined, heldHoles: false };
}

function newNode<K>(parent: Map<K, KeyNode> | undefined, value: K): KeyNode {
  countNode();
  const node = emptyNode();
  parent?.set(value, node);
  return node;
}

/** Counts one more node; when full, starts afresh, as BoundedMemo does: the keys still in use come back after one miss each. */
function countNode(): void {
  if (++keyNodes <= KEY_NODE_LIMIT) return;
  UNDIGESTED.clear();
  // A render holding a dropped root still makes right keys with it; the next render asks for a new one.
  digested.clear();
  lastRoot = undefined;
  keyNodes = 1;
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
