/**
 * Every options object a user passes is checked against the names it takes: a misspelt option would
 * otherwise be ignored and its default used without a word (`maxEntires: 5` culling at 300).
 */
import { describe } from './core/keys.js';

/** The names an options object takes: each `true`, or the names of a nested options object, checked too. */
export interface OptionShape {
  readonly [name: string]: true | OptionShape;
}

/** The shape of the options interface `T`: every one of its names, and no other. */
export type OptionShapeOf<T> = { readonly [K in keyof Required<T>]-?: true | OptionShape };

/**
 * The shape of the options interface `T`, written once beside it: TypeScript holds the record to
 * exactly the interface's names, so a name added to one and not the other does not compile.
 */
export function optionShape<T>(shape: OptionShapeOf<T>): OptionShapeOf<T> {
  return shape;
}

/** The error text for an option name that is not among `known`, or undefined when it is. */
export function unknownOptionMessage(name: string, known: readonly string[], where: string): string | undefined {
  if (known.includes(name)) return undefined;
  const closest = closestName(name, known);
  const hint = closest === undefined ? '' : ` (did you mean '${where}${closest}'?)`;
  return `unknown option '${where}${name}'${hint}; the options are ${known.map((option) => `'${where}${option}'`).join(', ')}`;
}

/**
 * The first message for a name of `options`, or of an options object nested in it, that `known` does
 * not list. A list of names (as a custom backend's `optionNames` may be) checks the top level only.
 */
export function checkOptionNames(options: object, known: OptionShape | readonly string[], where = 'options.'): string | undefined {
  const names = Array.isArray(known) ? (known as readonly string[]) : Object.keys(known);
  for (const [name, value] of Object.entries(options)) {
    const message = unknownOptionMessage(name, names, where);
    if (message !== undefined) return message;
    const nested = Array.isArray(known) ? true : (known as OptionShape)[name]!;
    if (nested !== true && isPlainObject(value)) {
      const nestedMessage = checkOptionNames(value, nested, `${where}${name}.`);
      if (nestedMessage !== undefined) return nestedMessage;
    }
  }
  return undefined;
}

/**
 * Refuses options given to `what` (`cachePage`, `cacheDashboard`…) that are not an object, or that
 * hold a name `known` does not list, with a TypeError naming it and the closest valid name.
 * Undefined is no options at all.
 */
export function checkOptions(options: unknown, known: OptionShape, what: string, where = 'options.'): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${what}: ${where.slice(0, -1)} must be an object (got ${describe(options)})`);
  }
  const message = checkOptionNames(options, known, where);
  if (message !== undefined) throw new TypeError(`${what}: ${message}`);
}

function isPlainObject(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** The candidate nearest to `name` by edit distance (case aside), if one is near enough to be a slip. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.ceil(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = distance;
    }
  }
  return rows[a.length]![b.length]!;
}
