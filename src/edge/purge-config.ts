/**
 * The `purge` option of a cache alias (its shape in `purge-options.ts`): the shared caches in front
 * of the application that every invalidation of the cache also purges. Checked once, with errors
 * naming the alias, the edge and the option, by `configureCaches` before anything is replaced.
 */
import { checkOptionNames, closestName, didYouMean, MUST_BE, type OptionShape, ValueRule } from '../options/option-rules.js';
import { describe } from '../errors/errors.js';
import type { EdgeName, EdgePurgeConfig } from './purge-options.js';

const HTTP_URL = new ValueRule('an http:// or https:// URL', (value) => typeof value === 'string' && /^https?:\/\/[^/]/i.test(value));
const REQUEST_OPTIONS: OptionShape = {
  timeoutMs: new ValueRule('a positive number of milliseconds', (value) => typeof value === 'number' && Number.isFinite(value) && value > 0),
  tries: new ValueRule('a positive integer', (value) => Number.isSafeInteger(value) && (value as number) > 0),
};
const NON_EMPTY = new ValueRule('a non-empty string', (value) => typeof value === 'string' && value !== '');

/** Each edge's options, and those it cannot do without. */
const EDGES: Record<EdgeName, { shape: OptionShape; required: readonly string[]; problem?: (entry: Record<string, unknown>) => string | undefined }> = {
  varnish: {
    shape: {
      edge: true,
      url: HTTP_URL,
      tags: new ValueRule("'ban' or 'xkey'", (value) => value === 'ban' || value === 'xkey'),
      soft: MUST_BE.boolean,
      ...REQUEST_OPTIONS,
    },
    required: ['url', 'tags'],
  },
  nginx: {
    shape: {
      edge: true,
      url: HTTP_URL,
      contexts: new ValueRule("a list of context values such as ['theme=dark', 'theme=light']", (value) => Array.isArray(value)),
      keepTaggedFor: MUST_BE.nonNegativeInteger,
      hosts: new ValueRule(
        "a list of host names such as ['shop.example']",
        (value) => Array.isArray(value) && value.every((host) => typeof host === 'string' && /^[a-z0-9.-]+(:\d+)?$/i.test(host)),
      ),
      ...REQUEST_OPTIONS,
    },
    required: ['url'],
    problem: (entry) => contextsProblem(entry.contexts),
  },
  fastly: {
    shape: { edge: true, serviceId: NON_EMPTY, token: NON_EMPTY, soft: MUST_BE.boolean, apiUrl: HTTP_URL, ...REQUEST_OPTIONS },
    required: ['serviceId', 'token'],
  },
  cloudflare: {
    shape: { edge: true, zoneId: NON_EMPTY, token: NON_EMPTY, siteUrl: HTTP_URL, apiUrl: HTTP_URL, ...REQUEST_OPTIONS },
    required: ['zoneId', 'token'],
  },
  http: {
    shape: {
      edge: true,
      url: HTTP_URL,
      headers: new ValueRule(
        'an object of header names and string values',
        (value) => isRecord(value) && Object.values(value).every((each) => typeof each === 'string'),
      ),
      ...REQUEST_OPTIONS,
    },
    required: ['url'],
  },
};

/**
 * The problem with an alias's `purge` option, worded after `cache '<alias>': `, or undefined when
 * there is none: `purge[0] (varnish): unknown option 'tag' (did you mean 'tags'?)`.
 */
export function purgeConfigProblem(purge: unknown): string | undefined {
  if (purge === undefined) return undefined;
  if (!Array.isArray(purge))
    return `purge must be a list of edges such as [{ edge: 'varnish', url: 'http://127.0.0.1:6081', tags: 'ban' }] (got ${describe(purge)})`;
  for (const [i, entry] of purge.entries()) {
    const problem = edgeProblem(entry);
    if (problem !== undefined) return `purge[${i}]${problem}`;
  }
  return undefined;
}

function edgeProblem(entry: unknown): string | undefined {
  if (!isRecord(entry)) return ` must be an object naming its edge (got ${describe(entry)})`;
  const edge = entry.edge;
  const names = Object.keys(EDGES);
  if (typeof edge !== 'string' || !Object.hasOwn(EDGES, edge)) {
    const closest = typeof edge === 'string' ? closestName(edge, names) : undefined;
    return `.edge must be one of ${names.map((name) => `'${name}'`).join(', ')}${didYouMean(closest)} (got ${describe(edge)})`;
  }
  const { shape, required, problem: edgeOwnProblem } = EDGES[edge as EdgeName];
  const problem =
    checkOptionNames(entry, shape, '') ??
    required.filter((name) => entry[name] === undefined).map((name) => `option '${name}' is required`)[0] ??
    edgeOwnProblem?.(entry);
  return problem === undefined ? undefined : ` (${edge}): ${problem}`;
}

/** One `name=value` of a `Cachegrain-Context`: a cookie's name, and its value without a separator or space. */
const CONTEXT_PAIR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[^\s;,"\\]*$/;

/** The problem with an nginx edge's `contexts`: each a value of `Cachegrain-Context`, listed once. */
function contextsProblem(contexts: unknown): string | undefined {
  if (!Array.isArray(contexts)) return undefined;
  for (const [i, context] of contexts.entries()) {
    if (typeof context !== 'string' || !context.split('; ').every((pair) => CONTEXT_PAIR.test(pair))) {
      return `contexts[${i}] must be a context value as Cachegrain-Context spells it, such as 'theme=dark' or 'theme=dark; lang=en' (got ${describe(context)})`;
    }
    if (contexts.indexOf(context) !== i) return `contexts[${i}] lists ${describe(context)} twice`;
  }
  return undefined;
}

/**
 * How long nginx may keep a page carrying a tag it cannot be purged by, where `edges` names an
 * nginx (the shortest `keepTaggedFor` of those named), else undefined: no nginx to keep it from.
 */
export function nginxKeepsTaggedFor(edges: readonly EdgePurgeConfig[]): number | undefined {
  const seconds = edges.flatMap((edge) => (edge.edge === 'nginx' ? [edge.keepTaggedFor ?? 0] : []));
  return seconds.length === 0 ? undefined : Math.min(...seconds);
}

/**
 * The headers `edges` read a page's tags from, each once, as the shipped VCL and the CDNs'
 * documentation name them: `xkey` for Varnish, `Surrogate-Key` for Fastly, `Cache-Tag` for
 * Cloudflare. nginx and a hook of the site's own read none.
 */
export function tagHeadersReadBy(edges: readonly EdgePurgeConfig[]): string[] {
  return [...new Set(edges.map((edge) => TAG_HEADER_READ[edge.edge]).filter((name) => name !== undefined))];
}

const TAG_HEADER_READ: Record<EdgeName, string | undefined> = {
  varnish: 'xkey',
  fastly: 'Surrogate-Key',
  cloudflare: 'Cache-Tag',
  nginx: undefined,
  http: undefined,
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
