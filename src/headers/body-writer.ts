/**
 * What a body sent in parts writes through: bytes, a flush where a part must reach the client now,
 * and the end. The one seam between a streamed page and the response: a writer that compresses
 * (each flush a compressed block) stands in for the response's own with the same three calls.
 */
import type { ServerResponse } from 'node:http';

export interface BodyWriter {
  /** Adds bytes to the part being written. */
  write(bytes: Buffer): void;
  /**
   * Adds bytes of the stored page, the same object on each of its responses: a writer may keep what
   * it makes of them (a compressing one, their compressed form) for the next response.
   */
  writeShell(bytes: Buffer): void;
  /** Sends the part written so far to the client now, through whatever compresses it. */
  flush(): void;
  /** Ends the response, flushing what is left. */
  end(): void;
}

/** A body that writes itself through `out`, part by part, once the head has gone out, and ends it. */
export type WritesItself = (out: BodyWriter) => void;

type Write = (chunk: Buffer) => boolean;
type End = (chunk?: Buffer, finished?: () => void) => unknown;

/**
 * A writer onto `res` through `write` and `end` (the response's own by default; a layer that holds
 * the response gives the functions past it). The writes of a part are corked and go out together at
 * its flush; `compression()` in front flushes its stream there too (its `res.flush`), so that a part
 * compressed is sent at once rather than kept for a fuller block. Nothing is written once the client
 * has gone.
 */
export function responseWriter(res: ServerResponse, write: Write = res.write, end: End = res.end): BodyWriter {
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    res.uncork();
  };
  const writeBytes = (bytes: Buffer) => {
    if (res.destroyed || bytes.length === 0) return;
    if (!corked) {
      corked = true;
      res.cork();
    }
    write.call(res, bytes);
  };
  return {
    write: writeBytes,
    writeShell: writeBytes,
    flush() {
      uncork();
      (res as ServerResponse & { flush?: () => void }).flush?.();
    },
    end() {
      uncork();
      end.call(res);
    },
  };
}

/**
 * Ends the response with `parts`, one after the other, through `write` and `end` (the response's
 * own by default; a layer that holds the response gives the functions past it): written corked, they
 * go out in one write with the end. `finished` is the end's callback.
 */
export function endInParts(
  res: ServerResponse,
  parts: readonly Buffer[],
  { write = res.write, end = res.end, finished }: { write?: Write; end?: End; finished?: () => void } = {},
): void {
  const last = parts.at(-1);
  const corked = parts.length > 1;
  if (corked) res.cork();
  for (let i = 0; i < parts.length - 1; i++) write.call(res, parts[i]!);
  end.call(res, last !== undefined && last.length > 0 ? last : undefined, finished);
  if (corked) res.uncork();
}

/** The bytes of `parts` together. */
export function lengthOf(parts: readonly Buffer[]): number {
  let length = 0;
  for (const part of parts) length += part.length;
  return length;
}
