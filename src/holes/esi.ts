/**
 * Holes as ESI includes (Symfony's `render_esi`, its signed `/_fragment`): each placeholder becomes
 * `<esi:include src="/-/cachegrain/hole/<name>?args=…&sig=…"/>`, which a CDN or proxy fetches with the
 * visitor's request, and `holeHandler()` answers. The signature, an HMAC of the name and arguments,
 * is what keeps a visitor from asking a builder for arguments no page gave it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { cutAtHoles, type HoleForm } from './markers.js';
import type { HoleArgument } from './registry.js';

/**
 * Where holes are served: `holeHandler()` answers below it. Away from where a site puts its own
 * private pages (`/_cache`, `/_…`, `/admin`): a guard written as a prefix test for those
 * (`startsWith('/_cache')`) would answer every visitor's holes with its refusal.
 */
export const HOLE_PATH = '/-/cachegrain/hole/';

/** The key of a process whose page caches and hole handlers are given no `secret`: good for that process alone. */
const PROCESS_KEY = randomBytes(32);

/** Signs and checks the URLs of holes with a key: the `secret` given, else this process's own. */
export class HoleSigner {
  private readonly key: Buffer | string;

  constructor(secret?: string) {
    this.key = secret ?? PROCESS_KEY;
  }

  /** The URL of a hole with these arguments (JSON text). */
  url(name: string, argsJson: string): string {
    const args = argsJson === '[]' ? '' : `args=${encodeURIComponent(argsJson)}&`;
    return `${HOLE_PATH}${encodeURIComponent(name)}?${args}sig=${this.signature(name, argsJson)}`;
  }

  /** Whether `signature` is this key's for the hole and arguments (JSON text as the URL carried it). */
  verifies(name: string, argsJson: string, signature: string): boolean {
    const expected = Buffer.from(this.signature(name, argsJson));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private signature(name: string, argsJson: string): string {
    return createHmac('sha256', this.key).update(`${name}\n${argsJson}`).digest('base64url');
  }
}

/** `text` with each placeholder in `form` replaced by an ESI include of its hole's signed URL. */
export function esiIncludes(text: string, form: HoleForm, signer: HoleSigner): string {
  const cut = cutAtHoles(text, form);
  if (cut === undefined) return text;
  const { pieces, calls } = cut;
  for (const [index, { name, args }] of calls) pieces[index] = `<esi:include src="${signer.url(name, JSON.stringify(args))}"/>`;
  return pieces.join('');
}

/** A hole's URL read back: its name, its arguments' JSON text and its signature; undefined when the path is no hole's. */
export function readHoleUrl(pathAndQuery: string): { name: string; argsJson: string; args: HoleArgument[] | undefined; signature: string } | undefined {
  const query = pathAndQuery.indexOf('?');
  const path = query === -1 ? pathAndQuery : pathAndQuery.slice(0, query);
  if (path.includes('/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const params = new URLSearchParams(query === -1 ? '' : pathAndQuery.slice(query + 1));
  const argsJson = params.get('args') ?? '[]';
  return { name, argsJson, args: scalarsOf(argsJson), signature: params.get('sig') ?? '' };
}

function scalarsOf(json: string): HoleArgument[] | undefined {
  try {
    const args: unknown = JSON.parse(json);
    const scalar = (value: unknown) => value === null || ['string', 'number', 'boolean'].includes(typeof value);
    return Array.isArray(args) && args.every(scalar) ? (args as HoleArgument[]) : undefined;
  } catch {
    return undefined;
  }
}
