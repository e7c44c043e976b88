/**
 * The holes an application names (Drupal's lazy builders): `defineHole(name, builder, { fallback, timeout })`.
 * A builder makes a part of a page that is never cached, for the request at hand, from the scalar
 * arguments the page's template gave the hole. Here too the checks of a hole's use in a template:
 * its name must be defined, its arguments scalars, each error naming the template and line.
 */
import type { IncomingMessage } from 'node:http';
import { checkOptions, closestName, MUST_BE, optionShape } from '../options/option-rules.js';
import { describe } from '../errors/errors.js';

/** What a hole's arguments may be: they are stored with the page, as text. */
export type HoleArgument = string | number | boolean | null;

/**
 * Makes a hole's HTML for `req`, the request being answered (the visitor comes from it), from the
 * arguments the template gave the hole. `req` is the request a user of the framework reads the
 * visitor from: Express's `req`, Fastify's `request`, Koa's `ctx`, Hono's `c`. Its answer goes into
 * the page as it is (not escaped); nothing or null puts nothing.
 */
export type HoleBuilder<Req extends object = IncomingMessage> = (req: Req, ...args: any[]) => unknown;

/** `defineHole` for the request of one framework: its builders are typed with it (Fastify's `FastifyRequest`). */
export type DefineHole<Req extends object> = (name: string, builder: HoleBuilder<Req>, options?: HoleOptions) => void;

export interface HoleOptions {
  /** The HTML put in the hole when its builder fails or passes its deadline (reported): a visitor never sees an error in its place. @default '' (nothing) */
  fallback?: string;
  /**
   * Seconds a builder has to answer: one that has not answered by then gets the fallback in its
   * place, reported once, and its late answer is dropped, so that a stalled service never holds a
   * page (nor a streamed one's end) for longer. @default 10
   */
  timeout?: number;
}

/** The seconds a builder has to answer when its hole names none. */
export const DEFAULT_HOLE_TIMEOUT = 10;

const HOLE_OPTIONS = optionShape<HoleOptions>({ fallback: MUST_BE.string, timeout: MUST_BE.positiveSeconds });
const HOLE_NAME = /^[A-Za-z0-9_.:-]+$/;

/** Where a hole stands in a template, for its errors. */
export interface HoleSite {
  template: string;
  /** 1-based; 0 when the engine cannot tell. */
  line: number;
}

/** A hole misused (an unknown name, an argument that is not a scalar) or failing, naming the hole and where it stands. */
export class HoleError extends Error {
  override name = 'HoleError';

  constructor(
    message: string,
    /** The hole at fault. */
    readonly hole: string,
    readonly site?: HoleSite,
    options?: { cause?: unknown },
  ) {
    super(site === undefined ? message : `${message} (${site.template}${site.line > 0 ? `, line ${site.line}` : ''})`, options);
  }
}

export interface DefinedHole {
  readonly name: string;
  readonly builder: HoleBuilder<any>;
  readonly fallback: string;
  /** Seconds its builder has to answer. */
  readonly timeout: number;
}

const defined = new Map<string, DefinedHole>();

/**
 * Names a hole: `builder(req, ...args)` makes its HTML on every render of a page that holds it, hit
 * or miss; `fallback` (nothing by default) is put in its place when the builder fails or has not
 * answered within `timeout` seconds. Defining a name again replaces it.
 */
export function defineHole<Req extends object = IncomingMessage>(name: string, builder: HoleBuilder<Req>, options: HoleOptions = {}): void {
  if (typeof name !== 'string' || !HOLE_NAME.test(name)) {
    throw new TypeError(`defineHole: the name must be letters, digits and . _ : - such as 'cart' (got ${describe(name)})`);
  }
  if (typeof builder !== 'function') throw new TypeError(`defineHole('${name}'): the builder must be a function of the request (got ${describe(builder)})`);
  checkOptions(options, HOLE_OPTIONS, `defineHole('${name}')`);
  defined.set(name, { name, builder, fallback: options.fallback ?? '', timeout: options.timeout ?? DEFAULT_HOLE_TIMEOUT });
}

/** Forgets a hole (for tests and reloads); answers whether there was one. */
export function forgetHole(name: string): boolean {
  return defined.delete(name);
}

/** The hole defined under `name`, or undefined. */
export function definedHole(name: string): DefinedHole | undefined {
  return defined.get(name);
}

/** The hole a template names, checked: a defined name. */
export function holeNamed(name: unknown, site?: HoleSite): DefinedHole {
  if (typeof name !== 'string' && !(name instanceof String)) {
    throw new HoleError(`a hole's name must be a string, as in hole "cart" (got ${describe(name)})`, String(name), site);
  }
  const hole = defined.get(String(name));
  if (hole !== undefined) return hole;
  const closest = closestName(String(name), [...defined.keys()]);
  const hint = closest === undefined ? '' : ` (did you mean '${closest}'?)`;
  const known = defined.size === 0 ? 'no hole is defined yet' : `the holes are ${[...defined.keys()].map((known) => `'${known}'`).join(', ')}`;
  throw new HoleError(`unknown hole '${String(name)}'${hint}: defineHole(name, builder) names a hole, and ${known}`, String(name), site);
}

/**
 * The arguments a template gave hole `name`, checked: strings, finite numbers, booleans or null,
 * as they are stored with the page. Anything else (an object, a list, a function, undefined) is an
 * error naming the hole and the argument.
 */
export function holeArguments(name: string, args: readonly unknown[], site?: HoleSite): HoleArgument[] {
  const checked: HoleArgument[] = [];
  for (let i = 0; i < args.length; i++) {
    const value = args[i];
    if (value === null || typeof value === 'string' || typeof value === 'boolean') checked.push(value);
    else if (typeof value === 'number' && Number.isFinite(value)) checked.push(value);
    else if (value instanceof String) checked.push(String(value));
    else {
      throw new HoleError(
        `hole '${name}' got ${describe(value)} as its argument ${i + 1}: a hole's arguments are stored with the page, so they must be ` +
          'strings, numbers, booleans or null (pass an id, never an object, and read the visitor from the request)',
        name,
        site,
      );
    }
  }
  return checked;
}
