/**
 * Django's view decorators (`cache_control`, `never_cache`, `vary_on_headers`, `vary_on_cookie`,
 * `condition`'s conditional GET) as changes to a response, each checked once when made and applied
 * to a request's response before its view runs. Every framework's adapter calls them its own way:
 * Express and Connect as middleware, Fastify as a hook, Koa and Hono as middleware of theirs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkOptions, MUST_BE, optionShape } from '../options/option-rules.js';
import { isHeaderName } from './header-values.js';
import {
  addNeverCacheHeaders,
  type CacheControlDirectives,
  directiveValueMessage,
  misspeltDirectiveMessage,
  patchCacheControl,
  patchVaryHeaders,
} from './headers.js';
import { DEFAULT_MAX_BODY_BYTES } from './capture.js';
import { beforeHeaders, conditionalGetResponse } from './response-phase.js';

/** What a decorator does to a request's response, before the view runs. */
export type ResponseDecorator = (req: IncomingMessage, res: ServerResponse) => void;

/** Merges Cache-Control directives into the response (`{ maxAge: 60, public: true }`). */
export function cacheControlDecorator(directives: CacheControlDirectives): ResponseDecorator {
  if (directives === null || typeof directives !== 'object') throw new TypeError('cacheControl: directives must be an object such as { maxAge: 60 }');
  for (const [name, value] of Object.entries(directives)) {
    const misspelt = misspeltDirectiveMessage(name);
    if (misspelt !== undefined) throw new TypeError(`cacheControl: ${misspelt}`);
    const problem = directiveValueMessage(name, value);
    if (problem !== undefined) throw new TypeError(`cacheControl: ${problem}`);
  }
  const fixed = { ...directives };
  return (_req, res) => beforeHeaders(res, (response) => patchCacheControl(response, fixed));
}

/** Marks the response as never to be cached by anyone. */
export const neverCacheDecorator: ResponseDecorator = (_req, res) => beforeHeaders(res, addNeverCacheHeaders);

/** Adds header names to the response's Vary. */
export function varyOnHeadersDecorator(names: string[]): ResponseDecorator {
  for (const name of names) {
    if (typeof name !== 'string' || !isHeaderName(name.trim())) {
      throw new TypeError(`varyOnHeaders: ${JSON.stringify(name)} is not a header name`);
    }
  }
  const fixed = [...names];
  return (_req, res) => beforeHeaders(res, (response) => patchVaryHeaders(response, fixed));
}

/** Adds `Cookie` to the response's Vary. */
export const varyOnCookieDecorator: ResponseDecorator = (_req, res) => beforeHeaders(res, (response) => patchVaryHeaders(response, ['Cookie']));

/** Options of `conditionalGet`. */
export interface ConditionalGetOptions {
  /** Bodies larger than this many bytes are sent without an ETag (never held back). @default 1048576 */
  maxBodyBytes?: number;
}

const CONDITIONAL_GET_OPTIONS = optionShape<ConditionalGetOptions>({ maxBodyBytes: MUST_BE.nonNegativeInteger });

/** Gives GET responses a strong ETag and answers 304/412 to conditional requests. */
export function conditionalGetDecorator(options: ConditionalGetOptions = {}): ResponseDecorator {
  checkOptions(options, CONDITIONAL_GET_OPTIONS, 'conditionalGet');
  const { maxBodyBytes = DEFAULT_MAX_BODY_BYTES } = options;
  return (req, res) => conditionalGetResponse(req, res, maxBodyBytes);
}
