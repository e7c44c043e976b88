/**
 * Template fragment keys (SPEC §5), Django's `make_template_fragment_key`: the same name and vary-on
 * values give the same key in every engine, so code can invalidate a fragment wherever it was rendered.
 * Each value is hashed as a netstring (`<byte length>:<bytes>,`, Django 6.1's format), so no two lists of
 * values spell the same input: ['a:b'] and ['a', 'b'] give different keys.
 */
import { md5 } from '../hash.js';
import { BoundedMemo } from '../memo.js';

/** Keys made recently, by their exact md5 input: a page's fragments repeat on every render. */
const recent = new BoundedMemo<string>();

/**
 * Keys made recently for vary-on values that are all primitives, found by the name and then by each
 * value itself, so that a repeated fragment builds no text to look its key up: a node per value.
 */
interface KeyNode {
  key?: string;
  next?: Map<unknown, KeyNode>;
}
const byName = new Map<string, KeyNode>();
let keyNodes = 0;
const KEY_NODE_LIMIT = 10_000;

/** `template.cache.<name>.<md5 hex of each vary-on value's text as a netstring>`. */
export function makeTemplateFragmentKey(name: string, varyOn?: readonly unknown[] | null): string {
  let node = byName.get(name);
  if (node === undefined) node = newNode(byName, name);
  if (varyOn != null) {
    for (let i = 0; i < varyOn.length; i++) {
      const value = varyOn[i];
      // An object's text can change while it stays the same object: it is looked up by its text.
      if (value !== null && (typeof value === 'object' || typeof value === 'function')) return keyByText(name, varyOn);
      node = node.next?.get(value) ?? newNode((node.next ??= new Map()), value);
    }
  }
  return (node.key ??= keyByText(name, varyOn));
}

function newNode<K>(parent: Map<K, KeyNode>, value: K): KeyNode {
  // Starts afresh when full, as BoundedMemo does: the keys still in use come back after one miss each.
  if (++keyNodes > KEY_NODE_LIMIT) {
    byName.clear();
    keyNodes = 1;
  }
  const node: KeyNode = {};
  parent.set(value, node);
  return node;
}

function keyByText(name: string, varyOn?: readonly unknown[] | null): string {
  let input = '';
  if (varyOn != null) {
    for (const value of varyOn) {
      const text = fragmentText(value);
      input += `${Buffer.byteLength(text)}:${text},`;
    }
  }
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
