/**
 * A stored page's holes as a plan: its body cut once at its sealed placeholders into the bytes
 * between them (views of the body, never copied) and the hole each placeholder stands for. A
 * response fills the plan by running its builders and sends the parts with their outputs between
 * them, so that the page around its holes is never read as text, cut or encoded again, nor copied.
 * The filled page's ETag is a hash of the shell's own ETag (the view's, which tells one shell from
 * another) and of the holes' outputs: the bytes sent are a function of both, and neither a miss nor
 * a hit hashes the page around its holes again.
 */
import { Hash64 } from '../keys/hash.js';
import type { MaybePromise } from '../store/maybe-promise.js';
import { buildHole, type HoleReport } from './fill.js';
import { decodeCall, type HoleCall, SEALED_BYTES } from './markers.js';
import type { IncomingMessage } from 'node:http';

const CLOSE_BYTE = 0x03;

const asBytes = (html: string): Buffer => Buffer.from(html);

export class HolePlan {
  /** The length of every part together: the page less its placeholders. */
  readonly partsLength: number;

  private constructor(
    /** The bytes before, between and after the placeholders: one more than `calls`. */
    readonly parts: readonly Buffer[],
    /** The hole of each placeholder, in order. */
    readonly calls: readonly HoleCall[],
  ) {
    let length = 0;
    for (const part of parts) length += part.length;
    this.partsLength = length;
  }

  /** The plan of a body whose placeholders are sealed (as a store keeps it); undefined when it holds none. */
  static of(sealed: Buffer): HolePlan | undefined {
    let at = sealed.indexOf(SEALED_BYTES);
    if (at === -1) return undefined;
    const parts: Buffer[] = [];
    const calls: HoleCall[] = [];
    let from = 0;
    while (at !== -1) {
      const end = sealed.indexOf(CLOSE_BYTE, at + SEALED_BYTES.length);
      if (end === -1) break;
      parts.push(sealed.subarray(from, at));
      // A placeholder's call is URL-encoded JSON: ASCII, read as such.
      calls.push(decodeCall(sealed.toString('latin1', at + SEALED_BYTES.length, end)));
      from = end + 1;
      at = sealed.indexOf(SEALED_BYTES, from);
    }
    parts.push(sealed.subarray(from));
    return new HolePlan(parts, calls);
  }

  /**
   * The holes' HTML for `request`, as bytes, one per call: their builders run at once, each failure
   * reported to `report` with its hole's fallback in its place (see `buildHole`). At once, with no
   * promise made, when every builder answers at once.
   */
  fill(request: IncomingMessage, report: HoleReport): MaybePromise<Buffer[]> {
    const outputs = this.build(request, report);
    const holes = new Array<Buffer>(outputs.length);
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs[i]!;
      if (output instanceof Promise) return Promise.all(outputs).then((built) => built.map(asBytes));
      holes[i] = asBytes(output);
    }
    return holes;
  }

  /**
   * Each hole's HTML for `request`, as its builder answers it: their builders run at once, each
   * answering its own HTML or promise of it, which never rejects (see `buildHole`).
   */
  build(request: IncomingMessage, report: HoleReport): Array<MaybePromise<string>> {
    return this.calls.map((call) => buildHole(call, request, report));
  }

  /** The filled page as the chunks to send: each part, and each hole's bytes after the part before it. */
  chunks(holes: readonly Buffer[]): Buffer[] {
    const chunks: Buffer[] = [this.parts[0]!];
    for (let i = 0; i < holes.length; i++) chunks.push(holes[i]!, this.parts[i + 1]!);
    return chunks;
  }

  /** The length of the page filled with `holes`. */
  filledLength(holes: readonly Buffer[]): number {
    let length = this.partsLength;
    for (const hole of holes) length += hole.length;
    return length;
  }

  /**
   * The ETag of the page filled with `holes`, whose shell (the page with its placeholders) went out
   * under `shellEtag`: a hash of that ETag and of the holes' bytes, each framed by its length (see
   * `Hash64`), so that another shell or other holes give another. As weak as the shell's: a weak one may stand for
   * other bytes of the same meaning, and so may the filled page's.
   */
  filledEtag(shellEtag: string, holes: readonly Buffer[]): string {
    const hash = new Hash64().string(shellEtag);
    for (const hole of holes) hash.number(hole.length).bytes(hole);
    return `${shellEtag.startsWith('W/') ? 'W/' : ''}"${hash.hex()}"`;
  }
}

/** The plan of each sealed body a hit read, by the body: made once for every hit that reads it as it was stored. */
const plans = new WeakMap<Buffer, HolePlan | null>();

/**
 * The plan of a sealed body, made once per body: a page read from a cache in this process is one
 * object for every reader, so its hits cut nothing after the first. With `remember: false` (a miss,
 * whose body may never be read again) the plan is cut for this response alone unless a hit made one:
 * most pages stored by misses are never hit (a long tail of URLs), and a remembered plan, which holds
 * views of its body, keeps the body past young collections, as a WeakMap's value that leads back to
 * its key does.
 */
export function holePlanOf(sealed: Buffer, { remember = true }: { remember?: boolean } = {}): HolePlan | undefined {
  let plan = plans.get(sealed);
  if (plan !== undefined) return plan ?? undefined;
  plan = HolePlan.of(sealed) ?? null;
  if (remember) plans.set(sealed, plan);
  return plan ?? undefined;
}
