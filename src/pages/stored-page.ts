/**
 * A page as the page cache stores it: its status, headers and body as its view sent them (its holes'
 * placeholders sealed), what a hit needs to send it again (its lifetime, validators, route), and,
 * with `compress`, its body compressed once.
 */
import type { ContentCoding } from '../headers/content-coding.js';
import type { DeflatedParts } from './gzip-join.js';

/** A stored response, ready to send. */
export interface StoredPage {
  status: number;
  statusMessage: string;
  /** Name, value, name, value… as `writeHead` takes them. */
  headers: string[];
  body: Buffer;
  etag?: string;
  lastModified?: string;
  /** For the Age header: the max-age sent and the Expires time (epoch seconds). */
  maxAge: number | null;
  expires: number | null;
  /** When the server's copy stops being fresh (epoch seconds by the cache's clock). Absent from pages stored by earlier versions. */
  freshUntil?: number;
  /**
   * What `pageStats()` counts its hits under: the route pattern that rendered it (Express
   * `req.route`), else its path. Absent from pages stored by earlier versions.
   */
  route?: string;
  /**
   * The cookies its `Vary: Cookie` stands for alone (its `cookie:<name>` contexts): a request whose
   * `Cachegrain-Context` names them gets `Vary: Cachegrain-Context` instead. Absent: none, or `Cookie` stays.
   */
  contextCookies?: string[];
  /** Whether its body holds holes' placeholders (sealed), filled for each request it is sent to. Absent: none. */
  holes?: true;
  /** Its body compressed once in each coding it is sent in (`compress`), beside the identity `body`. Absent: none. */
  encoded?: Partial<Record<ContentCoding, Buffer>>;
  /** A page with holes compressed (`compress`): its shell's parts each deflated once, which its hits join around their holes as gzip. */
  deflatedParts?: DeflatedParts;
  /** Only on a representation of a page with holes made for a hit, never stored: the coding its filled page is sent in. */
  holesCoding?: 'gzip';
  /**
   * The templates it was rendered from, by engines with digests on, and their digests then (see
   * `src/digests/pages.ts`): a hit where they differ now is a miss. Absent: none.
   */
  templates?: string;
  digests?: string;
}
