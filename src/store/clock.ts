/**
 * The clock expiry is checked against, in epoch seconds. Reading the system clock costs about as
 * much as a whole in-memory cache hit, so one reading serves the rest of the event loop's turn (or
 * 1000 calls, whichever ends first). Nothing expires by a callback: it only forgets the reading.
 *
 * The reading is forgotten by an immediate rather than a timer: a timer armed every millisecond
 * wakes the process by the kernel each time, which on a busy server costs more than every reading
 * it saves; an immediate runs when the turn's I/O is handled, with no wake-up of its own. It is
 * kept referenced so that the loop does not wait for I/O before running it: a callback woken by
 * I/O after an idle spell reads the time afresh.
 */
let reading: number | undefined;
let uses = 0;

const forget = (): void => {
  reading = undefined;
};

export function now(): number {
  if (reading === undefined || ++uses > 1000) {
    // A reading taken again before its immediate ran (after 1000 calls) is forgotten by that one.
    if (reading === undefined) setImmediate(forget);
    reading = Date.now() / 1000;
    uses = 0;
  }
  return reading;
}
