/**
 * Conditional requests (RFC 9110 §13.2.2, Django's `get_conditional_response`): strong
 * ETags over a body, and the status a request's preconditions call for. Dates are HTTP-dates as
 * RFC 9110 §5.6.7 defines them and nothing else: `Date.parse` would read ISO text, bare numbers and
 * dates without a zone (in the server's local time), all of which are invalid here and ignored.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { md5 } from '../keys/hash.js';

/** The headers a 304 keeps from the full response (RFC 9110 §15.4.5), besides Set-Cookie. */
export const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'last-modified', 'vary', 'set-cookie']);

/** A strong ETag for a body: `"<md5 hex>"`. */
export function strongEtag(body: Uint8Array): string {
  return `"${md5(body)}"`;
}

const ENTITY_TAG = /^(?:W\/)?"[^"]*"$/;

/**
 * The entity tags of an If-Match / If-None-Match value, as Django's `parse_etags`: `*` alone, or
 * the well-formed tags (quoted, optionally `W/`) among the comma-separated items; malformed items
 * (an unquoted `abc`) are dropped.
 */
export function parseEtags(value: string): string[] {
  // Most requests carry one of the two headers, or neither: an absent one is asked about too.
  if (value === '') return [];
  const trimmed = value.trim();
  if (trimmed === '*') return ['*'];
  // Most carry the one tag their page was sent with.
  if (!trimmed.includes(',')) return ENTITY_TAG.test(trimmed) ? [trimmed] : [];
  return value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => ENTITY_TAG.test(tag));
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
// Python's \w, as Django's patterns use it: any letter or digit, or an underscore.
const WORD = '[\\p{L}\\p{N}_]';
const MONTH = `(${WORD}{3})`;
const TIME = '([0-9]{2}):([0-9]{2}):([0-9]{2})';
// The three forms of RFC 9110 §5.6.7 as Django's parse_http_date matches them: any word for the
// weekday (it is not checked), a month name in any letter case, and GMT as written.
const IMF_FIXDATE = new RegExp(`^${WORD}{3}, ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME} GMT$`, 'u');
const RFC850_DATE = new RegExp(`^${WORD}{6,9}, ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME} GMT$`, 'u');
const ASCTIME_DATE = new RegExp(`^${WORD}{3} ${MONTH} ([ 0-9][0-9]) ${TIME} ([0-9]{4})$`, 'u');

/**
 * An HTTP-date as epoch seconds, or undefined when the text is not one (the header is then ignored,
 * as RFC 9110 asks). Read as Django reads it: weekday and month names in any letter case, and the
 * weekday not checked against the date. RFC 850's two-digit year is read as the most recent year with those digits
 * that is not more than 50 years in the future (RFC 9110 §5.6.7). `nowSeconds` is for tests.
 */
export function parseHttpDate(value: string | undefined, nowSeconds?: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let parts: { day: string; month: string; year: number; time: string[] };
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(text)) !== null) {
    parts = { day: match[1]!, month: match[2]!, year: Number(match[3]), time: match.slice(4, 7) };
  } else if ((match = RFC850_DATE.exec(text)) !== null) {
    // The clock is read only for this form: a default argument would read it on every call, most with no header to parse.
    const currentYear = new Date(nowSeconds === undefined ? Date.now() : nowSeconds * 1000).getUTCFullYear();
    let year = Math.floor(currentYear / 100) * 100 + Number(match[3]);
    if (year - currentYear > 50) year -= 100;
    parts = { day: match[1]!, month: match[2]!, year, time: match.slice(4, 7) };
  } else if ((match = ASCTIME_DATE.exec(text)) !== null) {
    parts = { day: match[2]!, month: match[1]!, year: Number(match[6]), time: match.slice(3, 6) };
  } else {
    return undefined;
  }
  const day = Number(parts.day);
  const [hour, minute, second] = parts.time.map(Number) as [number, number, number];
  if (day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const month = MONTHS.indexOf(parts.month.toLowerCase());
  if (month === -1) return undefined;
  const time = Date.UTC(parts.year, month, day, hour, minute, second);
  // 31 Feb rolls over into March in Date.UTC; it is no date at all.
  if (new Date(time).getUTCMonth() !== month) return undefined;
  return Math.floor(time / 1000);
}

/** What a representation offers to preconditions: its ETag and its Last-Modified (an HTTP date). */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** Whether the request carries any precondition at all (the cheap test before the full one). */
export function hasPreconditions(headers: IncomingHttpHeaders): boolean {
  return (
    headers['if-none-match'] !== undefined ||
    headers['if-modified-since'] !== undefined ||
    headers['if-match'] !== undefined ||
    headers['if-unmodified-since'] !== undefined
  );
}

const NO_TAGS: readonly string[] = [];
/** The entity tags of a header the request may not carry: most carry one of If-Match and If-None-Match, or neither. */
const etagsIn = (value: string | undefined): readonly string[] => (value === undefined ? NO_TAGS : parseEtags(value));

const withoutWeakness = (tag: string): string => (tag.startsWith('W/') ? tag.slice(2) : tag);

/** Whether `etag` is among `tags` by the weak comparison (RFC 9110 §8.8.3.2): their `W/` set aside. */
function matchesWeakly(tags: readonly string[], etag: string): boolean {
  const opaque = withoutWeakness(etag);
  for (const tag of tags) if (withoutWeakness(tag) === opaque) return true;
  return false;
}

/**
 * The status the preconditions call for: 412, 304, or 200 to send the response as it is. Evaluated
 * in RFC 9110's order, as Django does: 1. If-Match; 2. If-Unmodified-Since, only without If-Match;
 * 3. If-None-Match; 4. If-Modified-Since, only without If-None-Match and only for GET and HEAD.
 * A header whose value does not parse (no well-formed tag, no HTTP-date) is ignored. A request's own
 * `Cache-Control: no-cache` does not suppress a 304 (Django and RFC 9110 agree; only caches reload).
 */
export function preconditionStatus(method: string | undefined, headers: IncomingHttpHeaders, validators: Validators): 200 | 304 | 412 {
  const etag = validators.etag;
  const readOnly = method === 'GET' || method === 'HEAD';
  const ifMatch = etagsIn(headers['if-match']);
  const ifNoneMatch = etagsIn(headers['if-none-match']);

  // 1. If-Match: a strong comparison, so a weak ETag never passes.
  if (ifMatch.length > 0) {
    const passes = etag !== undefined && (ifMatch[0] === '*' || (!etag.startsWith('W/') && ifMatch.includes(etag)));
    if (!passes) return 412;
  } else {
    // 2. If-Unmodified-Since.
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (since !== undefined && !((parseHttpDate(validators.lastModified) ?? Infinity) <= since)) return 412;
  }
  // 3. If-None-Match: a weak comparison.
  if (ifNoneMatch.length > 0) {
    const matches = etag !== undefined && (ifNoneMatch[0] === '*' || matchesWeakly(ifNoneMatch, etag));
    if (matches) return readOnly ? 304 : 412;
    return 200;
  }
  // 4. If-Modified-Since.
  const since = parseHttpDate(headers['if-modified-since']);
  // The page's date is parsed only when there is one to compare it with: a revalidation by ETag never parses it.
  if (readOnly && since !== undefined && (parseHttpDate(validators.lastModified) ?? Infinity) <= since) return 304;
  return 200;
}

/**
 * Makes a framework that answers 304 by itself read the preconditions as `preconditionStatus` does:
 * Express's `res.send` asks `req.fresh`, whose own reading takes any date `Date.parse` takes and
 * unquoted tags, so a page would be 304 on a miss and 200 on the hit that replays it.
 */
export function judgeFreshnessHere(req: IncomingMessage, res: ServerResponse): void {
  // Without either header neither reading answers 304 (the framework's own says not fresh at once),
  // and a request left as its framework made it keeps the shape every other request has.
  if (req.headers['if-none-match'] === undefined && req.headers['if-modified-since'] === undefined) return;
  Object.defineProperty(req, 'fresh', {
    configurable: true,
    enumerable: true,
    get: () => {
      const status = res.statusCode;
      if (!((status >= 200 && status < 300) || status === 304)) return false;
      const etag = res.getHeader('etag');
      const lastModified = res.getHeader('last-modified');
      const validators: Validators = {};
      if (etag !== undefined) validators.etag = String(etag);
      if (lastModified !== undefined) validators.lastModified = String(lastModified);
      return preconditionStatus(req.method, req.headers, validators) === 304;
    },
  });
}
