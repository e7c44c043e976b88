/**
 * Conditional requests (SPEC §6, RFC 9110 §13.2.2): strong ETags over a body, and the status a
 * request's preconditions call for. If-Match and If-Unmodified-Since are decided here; If-None-Match
 * and If-Modified-Since on GET/HEAD are `fresh`'s, which also treats a request's `no-cache` as a reload.
 */
import { md5 } from '../hash.js';
import type { IncomingHttpHeaders } from 'node:http';
import fresh from 'fresh';

/** The headers a 304 keeps from the full response (RFC 9110 §15.4.5), besides Set-Cookie. */
export const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'last-modified', 'vary', 'set-cookie']);

/** A strong ETag for a body: `"<md5 hex>"`. */
export function strongEtag(body: Uint8Array): string {
  return `"${md5(body)}"`;
}

/** The entity tags of an If-Match / If-None-Match value: `*` alone, or the well-formed quoted tags. */
export function parseEtags(value: string): string[] {
  if (value.trim() === '*') return ['*'];
  return value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => /^(W\/)?"[^"]*"$/.test(tag));
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

/**
 * The status the preconditions call for: 412, 304, or 200 to send the response as it is. Evaluated
 * in RFC 9110's order: If-Match, else If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
 */
export function preconditionStatus(method: string | undefined, headers: IncomingHttpHeaders, validators: Validators): 200 | 304 | 412 {
  const { etag, lastModified } = validators;
  // 1. If-Match: a strong comparison, so a weak ETag never passes.
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    const tags = parseEtags(ifMatch);
    const passes = etag !== undefined && (tags[0] === '*' || (!etag.startsWith('W/') && tags.includes(etag)));
    if (!passes) return 412;
  } else {
    // 2. If-Unmodified-Since, only without If-Match; an unparseable date is ignored.
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (since !== undefined) {
      const modified = parseHttpDate(lastModified);
      if (modified === undefined || modified > since) return 412;
    }
  }
  const ifNoneMatch = headers['if-none-match'];
  // 3./4. If-None-Match (weak comparison), else If-Modified-Since.
  if (method === 'GET' || method === 'HEAD') {
    const resHeaders: Record<string, string | undefined> = { etag, 'last-modified': lastModified };
    return fresh(headers, resHeaders) ? 304 : 200;
  }
  if (ifNoneMatch !== undefined) {
    const tags = parseEtags(ifNoneMatch);
    const weak = (tag: string) => tag.replace(/^W\//, '');
    if (tags[0] === '*' ? etag !== undefined : etag !== undefined && tags.some((tag) => weak(tag) === weak(etag))) return 412;
  }
  return 200;
}

function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : Math.floor(time / 1000);
}
