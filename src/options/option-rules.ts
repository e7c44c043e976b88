/**
 * Every options object a user passes is checked against the names it takes, and the values of those
 * whose shape states a rule: a misspelt option would otherwise be ignored and its default used without
 * a word (`maxEntires: 5` culling at 300).
 */
import { describe } from '../errors/errors.js';

/**
 * What an option's value must be, worded as its error message ends: `options.lock must be a boolean
 * (got 'yes')`. Undefined always passes: the option then takes its default.
 */
export class ValueRule {
  constructor(
    /** The constraint, as the message words it after "must be" (or after "must" and `verb`). */
    readonly must: string,
    readonly accepts: (value: unknown) => boolean,
    readonly verb = 'be',
    /** The names an accepted value takes when it is an options object itself, checked as options are. */
    readonly fields?: OptionShape,
  ) {}
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** The rules options share; a shape may state its own `new ValueRule(…)` too. */
export const MUST_BE = {
  string: new ValueRule('a string', (value) => typeof value === 'string'),
  boolean: new ValueRule('a boolean', (value) => typeof value === 'boolean'),
  seconds: new ValueRule('a finite number of seconds', isNumber),
  positiveSeconds: new ValueRule('a positive number of seconds', (value) => isNumber(value) && value > 0),
  nonNegativeSeconds: new ValueRule('a non-negative number of seconds', (value) => isNumber(value) && value >= 0),
  nonNegativeNumber: new ValueRule('a non-negative number', (value) => isNumber(value) && value >= 0),
  nonNegativeInteger: new ValueRule('a non-negative integer', (value) => Number.isSafeInteger(value) && (value as number) >= 0),
  positiveInteger: new ValueRule('a positive integer', (value) => Number.isSafeInteger(value) && (value as number) > 0),
  positiveMilliseconds: new ValueRule('a positive number of milliseconds', (value) => isNumber(value) && value > 0),
  nonNegativeMilliseconds: new ValueRule('a non-negative number of milliseconds', (value) => isNumber(value) && value >= 0),
} as const;

/**
 * The names an options object takes: each `true` (any value), a ValueRule its value must keep, or the
 * shape of a nested options object, checked too.
 */
export interface OptionShape {
  readonly [name: string]: true | ValueRule | OptionShape;
}

/** The shape of the options interface `T`: every one of its names, and no other. */
export type OptionShapeOf<T> = { readonly [K in keyof Required<T>]-?: true | ValueRule | OptionShape };

/**
 * The shape of the options interface `T`, written once beside it: TypeScript holds the record to
 * exactly the interface's names, so a name added to one and not the other does not compile.
 */
export function optionShape<T>(shape: OptionShapeOf<T>): OptionShapeOf<T> {
  return shape;
}

/** The error text for `name` (as the message names it) when `value` breaks `rule`, else undefined. */
export function valueMessage(name: string, value: unknown, rule: ValueRule): string | undefined {
  if (value === undefined || rule.accepts(value)) return undefined;
  return `${name} must ${rule.verb} ${rule.must} (got ${describe(value)})`;
}

/** The error text for an option name that is not among `known`, or undefined when it is. */
export function unknownOptionMessage(name: string, known: readonly string[], where: string): string | undefined {
  if (known.includes(name)) return undefined;
  const closest = closestName(name, known);
  return `unknown option '${where}${name}'${didYouMean(closest === undefined ? undefined : where + closest)}; the options are ${known.map((option) => `'${where}${option}'`).join(', ')}`;
}

/**
 * The first message for a name of `options`, or of an options object nested in it, that `known` does
 * not list, or for a value that breaks the rule `known` states for its name: names and values in one
 * pass. A list of names (as a custom backend's `optionNames` may be) checks the top level's names only.
 */
export function checkOptionNames(options: object, known: OptionShape | readonly string[], where = 'options.'): string | undefined {
  const names = Array.isArray(known) ? (known as readonly string[]) : Object.keys(known);
  for (const [name, value] of Object.entries(options)) {
    const message = unknownOptionMessage(name, names, where);
    if (message !== undefined) return message;
    const stated = Array.isArray(known) ? true : (known as OptionShape)[name]!;
    if (stated === true) continue;
    const fields = stated instanceof ValueRule ? stated.fields : stated;
    const problem =
      (stated instanceof ValueRule ? valueMessage(`${where}${name}`, value, stated) : undefined) ??
      (fields !== undefined && isPlainObject(value) ? checkOptionNames(value, fields, `${where}${name}.`) : undefined);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * The first message for a value of `options` that breaks the rule `known` states for its name; names
 * `known` does not list are not looked at (for objects that carry more than the shape, such as a
 * cache's construction parameters).
 */
export function checkOptionValues(options: object, known: OptionShape, where = 'options.'): string | undefined {
  for (const [name, stated] of Object.entries(known)) {
    if (!(stated instanceof ValueRule)) continue;
    const message = valueMessage(`${where}${name}`, (options as Record<string, unknown>)[name], stated);
    if (message !== undefined) return message;
  }
  return undefined;
}

/**
 * Refuses options given to `what` (`cachePage`, `cacheDashboard`…) that are not an object, that hold
 * a name `known` does not list, or a value that breaks its rule, with a TypeError naming it (and for a
 * name, the closest valid one). Undefined is no options at all.
 */
export function checkOptions(options: unknown, known: OptionShape, what: string, where = 'options.'): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${what}: ${where.slice(0, -1)} must be an object (got ${describe(options)})`);
  }
  const message = checkOptionNames(options, known, where);
  if (message !== undefined) throw new TypeError(`${what}: ${message}`);
}

/** Refuses an argument of `what` that breaks `rule`, as `checkOptions` refuses an option's value. */
export function checkValue(value: unknown, rule: ValueRule, what: string, name: string): void {
  const message = valueMessage(name, value, rule);
  if (message !== undefined) throw new TypeError(`${what}: ${message}`);
}

function isPlainObject(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** ` (did you mean '<closest>'?)`, the hint every message naming an unknown name ends with; '' when none is close. */
export function didYouMean(closest: string | undefined): string {
  return closest === undefined ? '' : ` (did you mean '${closest}'?)`;
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
