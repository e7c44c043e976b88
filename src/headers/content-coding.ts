/**
 * Content codings (RFC 9110 §8.4 and RFC 9110 §12.5.3): which of the codings a page is stored in a request
 * accepts best, by the q-values of its `Accept-Encoding`, and which responses may be compressed at
 * all. Pure functions over header values, as `vary` and `fresh` are written.
 */
import { BoundedMemo } from '../memos/bounded-memo.js';
import { processMemo } from '../memos/process-memos.js';
import { splitHeaderValue } from './header-values.js';

/** The codings a page is compressed in, the smallest first: the order that breaks a tie between equal q-values. */
export const CONTENT_CODINGS = ['br', 'gzip'] as const;
export type ContentCoding = (typeof CONTENT_CODINGS)[number];

/** How much a request accepts each coding and the identity, by its q-values (0: not at all). */
interface Acceptance {
  br: number;
  gzip: number;
  identity: number;
}

/**
 * A request with no Accept-Encoding: RFC 9110 lets a server send it any coding, but a client that
 * says nothing (curl, a crawler, a proxy that gunzips nothing) reads the identity, and nothing else
 * is sent to it, as nginx, Varnish and compression() do.
 */
const IDENTITY_ONLY: Acceptance = Object.freeze({ br: 0, gzip: 0, identity: 1 });

/** What each Accept-Encoding value accepts, remembered: a site's clients send a few dozen values. */
const acceptances = processMemo('content-coding: acceptance by Accept-Encoding', new BoundedMemo<Acceptance>(1000));

/**
 * The coding among `stored` to send to a request with this Accept-Encoding: the one it accepts with
 * the highest q-value, the smallest on a tie, else the identity, also when it refuses the identity
 * and all the page is stored in (RFC 9110 §12.5.3 leaves that to the server; the page is sent).
 */
export function negotiatedCoding(acceptEncoding: string | undefined, stored: readonly ContentCoding[]): ContentCoding | 'identity' {
  if (acceptEncoding === undefined || stored.length === 0) return 'identity';
  const acceptance = acceptances.remember(acceptEncoding, acceptanceOf);
  let best: ContentCoding | 'identity' = 'identity';
  let bestQ = acceptance.identity;
  for (const coding of CONTENT_CODINGS) {
    const q = acceptance[coding];
    // The smallest first: a later coding wins only with a higher q-value.
    if (q > 0 && (q > bestQ || (q === bestQ && best === 'identity')) && stored.includes(coding)) [best, bestQ] = [coding, q];
  }
  return best;
}

/**
 * The q-value of each coding in an Accept-Encoding value: listed (`x-gzip` being gzip, as
 * RFC 9110 §8.4.1.3 has it), else as `*` says, else 0; a q-value that is none refuses its coding. The identity is
 * acceptable unless refused (`identity;q=0`, or `*;q=0` without an entry of its own), and, not
 * listed, is the least wanted: its q-value is the lowest the value gives a coding it accepts, as
 * `negotiator` (compression()'s) reads it. An empty value asks for the identity alone.
 */
function acceptanceOf(value: string): Acceptance {
  const listed = new Map<string, number>();
  for (const item of splitHeaderValue(value)) {
    const [coding, ...parameters] = item.split(';').map((part) => part.trim().toLowerCase());
    let q = 1;
    for (const parameter of parameters) {
      const [name, given] = parameter.split('=').map((part) => part.trim());
      if (name === 'q') q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(given ?? '') ? Number(given) : 0;
    }
    const name = coding === 'x-gzip' ? 'gzip' : coding!;
    // Listed twice, the better entry counts.
    if (name !== '') listed.set(name, Math.max(q, listed.get(name) ?? 0));
  }
  if (listed.size === 0) return IDENTITY_ONLY;
  const any = listed.get('*');
  const qOf = (coding: ContentCoding) => listed.get(coding) ?? any ?? 0;
  let lowest = 1;
  for (const q of listed.values()) if (q > 0 && q < lowest) lowest = q;
  return { br: qOf('br'), gzip: qOf('gzip'), identity: listed.get('identity') ?? any ?? lowest };
}

/** Media types worth compressing: text, and the structured text formats (JSON, XML, JavaScript, SVG). */
const COMPRESSIBLE_TYPE =
  /^\s*(?:text\/|application\/(?:json|javascript|ecmascript|xml|xhtml\+xml|rss\+xml|atom\+xml|x-javascript)\b|image\/svg\+xml\b|[\w.+-]+\/[\w.-]+\+(?:json|xml)\b)/i;

/**
 * Why a response with these headers is sent as the view made it, never compressed, or undefined
 * when it may be: it is encoded already (a view's own compression), it says `no-transform`
 * (RFC 9111 §5.2.2.6), or its type is none of text (an image, an archive, or no type given).
 */
export function uncompressibleReason(header: (name: string) => string | undefined): string | undefined {
  const encoding = header('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return `Content-Encoding: ${encoding}`;
  if (splitHeaderValue(header('cache-control')).some((directive) => directive.toLowerCase() === 'no-transform')) return 'Cache-Control: no-transform';
  const type = header('content-type');
  if (type === undefined || !COMPRESSIBLE_TYPE.test(type)) return `Content-Type: ${type ?? '(none)'}`;
  return undefined;
}

/** A page's ETag for its representation in `coding`: the coding's name within its quotes (`"abc-br"`, `W/"abc-gzip"`), so that each coding has its own. */
export function codedEtag(etag: string, coding: ContentCoding): string {
  return `${etag.slice(0, -1)}-${coding}"`;
}

/** The page's own ETag of its representation's `codedEtag(etag, coding)`; `etag` itself when it is not one. */
export function uncodedEtag(etag: string, coding: ContentCoding): string {
  const suffix = `-${coding}"`;
  return etag.endsWith(suffix) ? `${etag.slice(0, -suffix.length)}"` : etag;
}
